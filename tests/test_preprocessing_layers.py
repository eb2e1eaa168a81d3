"""The image preprocessing and augmentation layers: values on small images
worked out by hand (and against PyTorch's interpolation where it computes the
same thing), Keras' fill modes, training vs inference, seeds, input
gradients by central differences, configs, and models that train, predict
deterministically, save, load and clone."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastconv
from fastconv import layers, models
from fastconv.testing import check_gradients
from fastconv.runtime import random as _random

F64 = "float64"


def uniform_draws(seed, low, high, n):
    """The per-image uniform numbers a layer seeded with ``seed`` draws for
    a batch of ``n`` (by batch chunks, fastconv.runtime.random)."""
    return _random.LayerDraws(np.random.default_rng(seed), n).per_row(
        lambda g, shape: g.uniform(low, high, shape), (n,))


def batch_draws(seed, draw):
    """The numbers drawn once per batch by a layer seeded with ``seed``."""
    return _random.LayerDraws(np.random.default_rng(seed), 1).whole(
        lambda g: np.asarray(draw(g)))


def ramp(h: int, w: int, c: int = 1, n: int = 1) -> np.ndarray:
    """x[n, i, j, k] = 100 n + 10 i + j + 0.1 k: bilinear interpolation of it is exact."""
    n_, i, j, k = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), np.arange(c),
                              indexing="ij")
    return (100.0 * n_ + 10.0 * i + j + 0.1 * k).astype(np.float32)


def finite_difference_check(layer, x, training=True, h=1e-6):
    """dL/dx from backward against central differences, L = sum(y * r)."""
    x = np.asarray(x, np.float64)
    layer.ensure_built(x.shape)

    def run(xv):
        fastconv.utils.set_random_seed(7)
        layer.restart_random_state()
        return layer.forward(xv, training=training)

    y, ctx = run(x)
    r = np.random.default_rng(0).standard_normal(y.shape)
    dx = layer.backward(ctx, r.copy())
    assert dx.shape == x.shape
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (np.sum(run(up)[0] * r) - np.sum(run(down)[0] * r)) / (2 * h)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-7)


def round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone, config


# ----------------------------------------------------------------------------
# Rescaling and Normalization


def test_rescaling_values_dtype_and_gradient():
    layer = layers.Rescaling(1 / 127.5, offset=-1)
    x = np.array([[0, 127, 255]], np.uint8)
    np.testing.assert_allclose(layer(x), [[-1.0, 127 / 127.5 - 1, 1.0]], atol=1e-6)
    assert layer(x).dtype == np.float32
    per_channel = layers.Rescaling([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(per_channel(np.ones((1, 2, 2, 3))), np.ones((1, 2, 2, 3))
                                  * [1, 2, 3])
    clone, config = round_trip(per_channel)
    assert config["scale"]["class_name"] == "__numpy__"
    np.testing.assert_array_equal(clone(np.ones((1, 3))), [[1.0, 2.0, 3.0]])
    assert round_trip(layer)[1]["scale"] == pytest.approx(1 / 127.5)
    finite_difference_check(layers.Rescaling(0.5, 2.0, dtype=F64), np.ones((2, 3)))
    with pytest.raises(ValueError, match="`scale`"):
        layers.Rescaling("big")


def test_normalization_adapt_array_and_batches_agree_with_numpy():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((40, 3)) * [1.0, 5.0, 0.1] + [3.0, -2.0, 7.0]
    layer = layers.Normalization()
    layer.adapt(data)
    assert [w.name.split("/")[-1] for w in layer.weights] == ["mean", "variance", "count"]
    assert not layer.trainable_weights
    np.testing.assert_allclose(layer.get_weights()[0], data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(layer.get_weights()[1], data.var(0), rtol=1e-5)
    y = layer(data)
    np.testing.assert_allclose(y, (data - data.mean(0)) / data.std(0), rtol=1e-4, atol=1e-5)
    batched = layers.Normalization()
    batched.adapt([data[:7], data[7:30], data[30:]])
    np.testing.assert_allclose(batched.get_weights()[0], data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(batched.get_weights()[1], data.var(0), rtol=1e-5)


def test_normalization_fixed_statistics_axes_and_invert():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    layer = layers.Normalization(axis=None, mean=2.0, variance=4.0)
    np.testing.assert_allclose(layer(x), (x - 2) / 2)
    inverse = layers.Normalization(axis=None, mean=2.0, variance=4.0, invert=True)
    np.testing.assert_allclose(inverse(layer(x)), x, rtol=1e-6)
    per_row = layers.Normalization(axis=1, mean=[0.0, 1.0, 2.0], variance=[1.0, 4.0, 16.0])
    np.testing.assert_allclose(per_row(x), (x - [[[0], [1], [2]]]) / [[[1], [2], [4]]])
    over = layers.Normalization(axis=(1, 2))
    over.adapt(x)
    np.testing.assert_allclose(over.get_weights()[0], x.mean(0))
    tiny = layers.Normalization(axis=None, mean=0.0, variance=0.0)
    np.testing.assert_allclose(tiny(np.ones((1, 2))), 1e7)  # divides by Keras' epsilon
    clone, config = round_trip(per_row)
    assert config["axis"] == [1] and config["mean"] == [0.0, 1.0, 2.0]
    np.testing.assert_allclose(clone(x), per_row(x))
    finite_difference_check(layers.Normalization(axis=-1, mean=[1.0, 2.0], variance=[4.0, 9.0],
                                                 dtype=F64), np.ones((2, 2)))


def test_normalization_bad_arguments():
    with pytest.raises(ValueError, match="both or neither"):
        layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="same shape"):
        layers.Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="`axis`"):
        layers.Normalization(axis="x")
    layer = layers.Normalization()
    layer.adapt(np.ones((4, 3)))
    with pytest.raises(ValueError, match="built for"):
        layer.adapt(np.ones((4, 2)))
    with pytest.raises(ValueError, match="adapt"):
        layers.Normalization(mean=0.0, variance=1.0).adapt(np.ones((2, 2)))


# ----------------------------------------------------------------------------
# Resizing and CenterCrop


def test_bilinear_resize_by_hand():
    # TensorFlow's half-pixel centers: 2 -> 4 samples at -0.25, 0.25, 0.75, 1.25,
    # clamped at the border: [a, .75a + .25b, .25a + .75b, b].
    x = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32).reshape(1, 2, 2, 1)
    y = layers.Resizing(4, 4)(x)[0, :, :, 0]
    row = np.array([0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(y, 2 * row[:, None] + row[None, :], rtol=1e-6)
    down = layers.Resizing(2, 2)(ramp(4, 4))[0, :, :, 0]  # samples at 0.5 and 2.5
    np.testing.assert_allclose(down, [[5.5, 7.5], [25.5, 27.5]], rtol=1e-6)


def test_nearest_resize_by_hand():
    x = ramp(3, 3)
    up = layers.Resizing(6, 4, interpolation="nearest")(x)[0, :, :, 0]
    rows = [0, 0, 1, 1, 2, 2]  # floor((o + 0.5) * 3 / 6)
    cols = [0, 1, 1, 2]        # floor((o + 0.5) * 3 / 4)
    np.testing.assert_array_equal(up, x[0, :, :, 0][np.ix_(rows, cols)])


@pytest.mark.parametrize("size", [(7, 5), (3, 2), (4, 9)])
def test_resize_matches_torch(size):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 3))
    t = torch.tensor(x.transpose(0, 3, 1, 2))
    for mode, interpolation in (("bilinear", "bilinear"), ("nearest-exact", "nearest")):
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        expected = torch.nn.functional.interpolate(t, size=size, mode=mode, **kwargs)
        got = layers.Resizing(*size, interpolation=interpolation, dtype=F64)(x)
        np.testing.assert_allclose(got, expected.numpy().transpose(0, 2, 3, 1), atol=1e-12)


def test_resizing_crop_to_aspect_ratio_and_channels_first():
    x = ramp(4, 8)
    # Target 2x2 (square): the centered 4x4 window, columns 2..5, then 4 -> 2.
    y = layers.Resizing(2, 2, crop_to_aspect_ratio=True)(x)[0, :, :, 0]
    np.testing.assert_allclose(y, [[5.5 + 2, 7.5 + 2], [25.5 + 2, 27.5 + 2]], rtol=1e-6)
    cf = layers.Resizing(3, 5, data_format="channels_first")
    xc = np.random.default_rng(1).standard_normal((2, 3, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(cf(xc), layers.Resizing(3, 5)(xc.transpose(0, 2, 3, 1))
                               .transpose(0, 3, 1, 2), rtol=1e-6)
    assert cf.compute_output_shape((None, 3, 4, 6)) == (None, 3, 3, 5)


def test_center_crop_crops_or_resizes_small_images():
    x = ramp(5, 6)
    np.testing.assert_array_equal(layers.CenterCrop(3, 2)(x), x[:, 1:4, 2:4])
    # 6 rows from 5: the window of aspect 6:2, crop_w = int(5 * 2 / 6) = 1 column
    # starting at int((6 - 1) / 2) = 2, resized to 6x2.
    y = layers.CenterCrop(6, 2)(x)
    expected = layers.Resizing(6, 2)(x[:, :, 2:3])
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert y.shape == (1, 6, 2, 1)


@pytest.mark.parametrize("make, shape", [
    (lambda: layers.Resizing(3, 5, dtype=F64), (1, 4, 3, 2)),
    (lambda: layers.Resizing(2, 2, interpolation="nearest", crop_to_aspect_ratio=True,
                             dtype=F64), (1, 3, 5, 1)),
    (lambda: layers.CenterCrop(2, 3, dtype=F64), (2, 4, 4, 1)),
    (lambda: layers.CenterCrop(5, 2, dtype=F64), (1, 3, 4, 1)),
])
def test_resize_and_crop_gradients(make, shape):
    finite_difference_check(make(), np.random.default_rng(0).standard_normal(shape))


def test_resizing_bad_arguments():
    with pytest.raises(ValueError, match="`height`"):
        layers.Resizing(0, 3)
    with pytest.raises(ValueError, match="`interpolation`"):
        layers.Resizing(3, 3, interpolation="bicubic")
    with pytest.raises(ValueError, match="`pad_to_aspect_ratio`"):
        layers.Resizing(3, 3, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="`antialias`"):
        layers.Resizing(3, 3, antialias=True)
    with pytest.raises(ValueError, match="`width`"):
        layers.CenterCrop(2, -1)
    with pytest.raises(ValueError, match="ndim=4"):
        layers.CenterCrop(2, 2)(np.ones((3, 3, 1)))


# ----------------------------------------------------------------------------
# the augmentations: hand-computed warps and fill modes


def shift(fill_mode, dx, interpolation="bilinear", fill_value=0.0):
    """RandomTranslation by exactly ``dx`` pixels of a 1x4 image [1, 2, 3, 4]."""
    layer = layers.RandomTranslation(0.0, (dx / 4, dx / 4), fill_mode=fill_mode,
                                     interpolation=interpolation, fill_value=fill_value)
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 1, 4, 1)
    return layer(x, training=True)[0, 0, :, 0]


@pytest.mark.parametrize("fill_mode, right, left", [
    # Output j reads input j - dx; Keras' extensions of (a b c d) = (1 2 3 4):
    ("reflect", [2, 1, 1, 2], [3, 4, 4, 3]),    # d c b a | a b c d | d c b a
    ("wrap", [3, 4, 1, 2], [3, 4, 1, 2]),       # a b c d | a b c d | a b c d
    ("nearest", [1, 1, 1, 2], [3, 4, 4, 4]),    # a a a a | a b c d | d d d d
    ("constant", [9, 9, 1, 2], [3, 4, 9, 9]),   # k k k k | a b c d | k k k k
])
def test_fill_modes_by_hand(fill_mode, right, left):
    np.testing.assert_allclose(shift(fill_mode, 2.0, fill_value=9.0), right, atol=1e-6)
    np.testing.assert_allclose(shift(fill_mode, -2.0, fill_value=9.0), left, atol=1e-6)
    np.testing.assert_allclose(shift(fill_mode, 2.0, "nearest", 9.0), right, atol=1e-6)


def test_half_pixel_shift_interpolates_the_extended_image():
    # j reads j - 0.5: the mean of neighbours, the left one from the extension.
    np.testing.assert_allclose(shift("reflect", 0.5), [1.0, 1.5, 2.5, 3.5], atol=1e-6)
    np.testing.assert_allclose(shift("constant", 0.5), [0.5, 1.5, 2.5, 3.5], atol=1e-6)
    np.testing.assert_allclose(shift("wrap", 0.5), [2.5, 1.5, 2.5, 3.5], atol=1e-6)
    # nearest interpolation rounds the half away from zero: j - 0.5 -> j (j > 0), -1 for j=0
    np.testing.assert_allclose(shift("constant", 0.5, "nearest", 9.0), [9, 2, 3, 4])


def test_rotation_by_quarter_and_half_turns():
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2)).astype(np.float32)
    quarter = layers.RandomRotation((0.25, 0.25), fill_mode="constant")
    np.testing.assert_allclose(quarter(x, training=True), np.rot90(x, 1, axes=(1, 2)),
                               atol=1e-5)
    y = np.random.default_rng(1).standard_normal((1, 3, 6, 1)).astype(np.float32)
    half = layers.RandomRotation((-0.5, -0.5), interpolation="nearest")
    np.testing.assert_allclose(half(y, training=True), y[:, ::-1, ::-1], atol=1e-6)


def test_rotation_samples_the_keras_rotation_matrix():
    layer = layers.RandomRotation(0.1, seed=3, fill_mode="constant", fill_value=-1.0)
    x = ramp(7, 9)
    y = layer(x, training=True)[0, :, :, 0]
    angle = np.deg2rad(uniform_draws(3, -36.0, 36.0, 1)[0])
    cx, cy = 4.0, 3.0
    for i in range(7):
        for j in range(9):
            xi = np.cos(angle) * (j - cx) - np.sin(angle) * (i - cy) + cx
            yi = np.sin(angle) * (j - cx) + np.cos(angle) * (i - cy) + cy
            if 0 <= xi <= 8 and 0 <= yi <= 6:  # inside: bilinear of a ramp is exact
                assert y[i, j] == pytest.approx(10 * yi + xi, abs=1e-4)
            elif xi < -1 or xi > 9 or yi < -1 or yi > 7:
                assert y[i, j] == -1.0


def test_zoom_samples_the_keras_zoom_matrix():
    layer = layers.RandomZoom((-0.5, -0.5), fill_mode="nearest")  # zoom 0.5: a 2x zoom in
    y = layer(ramp(5, 5), training=True)[0, :, :, 0]
    coords = 0.5 * np.arange(5) + 1.0  # z j + (W - 1) (1 - z) / 2
    np.testing.assert_allclose(y, 10 * coords[:, None] + coords[None, :], atol=1e-5)
    wide = layers.RandomZoom((0.0, 0.0), width_factor=(1.0, 1.0), fill_mode="constant")
    y = wide(ramp(1, 5), training=True)[0, 0, :, 0]  # zx = 2 reads 2 j - 2
    np.testing.assert_allclose(y, [0.0, 0.0, 2.0, 4.0, 0.0], atol=1e-6)


def test_flip_modes():
    x = np.random.default_rng(0).standard_normal((16, 3, 4, 2)).astype(np.float32)
    for mode, flipped in (("horizontal", x[:, :, ::-1]), ("vertical", x[:, ::-1]),
                          ("horizontal_and_vertical", x[:, ::-1, ::-1])):
        y = layers.RandomFlip(mode, seed=5)(x, training=True)
        same = np.all(y == x, axis=(1, 2, 3))
        turned = np.all(y == flipped, axis=(1, 2, 3))
        assert np.all(same | turned) and same.any() and turned.any()
        expected = uniform_draws(5, 0, 1, 16) <= 0.5
        np.testing.assert_array_equal(turned & ~same, expected & ~same)


def test_random_crop_training_window_and_inference_resize():
    x = ramp(6, 7, n=3)
    layer = layers.RandomCrop(3, 4, seed=2)
    y = layer(x, training=True)
    window = batch_draws(2, lambda g: (g.uniform(0, 4), g.uniform(0, 4)))
    top, left = int(window[0]), int(window[1])
    np.testing.assert_array_equal(y, x[:, top:top + 3, left:left + 4])  # one window per batch
    # Inference: the centered window of aspect 3:4, crop_h = min(6, int(7 * 3 / 4)) = 5
    # rows from int((6 - 5) / 2) = 0, crop_w = min(7, int(6 * 4 / 3)) = 7 columns,
    # resized to 3x4.
    inference = layer(x)
    np.testing.assert_allclose(inference, layers.Resizing(3, 4)(x[:, 0:5]), rtol=1e-6)
    small = layers.RandomCrop(8, 8)
    assert small(x, training=True).shape == (3, 8, 8, 1)
    assert small.compute_output_shape((None, 6, 7, 1)) == (None, 8, 8, 1)


def test_contrast_and_brightness_follow_keras_formulas():
    x = np.random.default_rng(0).uniform(50, 200, (3, 4, 5, 2)).astype(np.float32)
    contrast = layers.RandomContrast(0.5, seed=4)
    y = contrast(x, training=True)
    f = uniform_draws(4, 0.5, 1.5, 3)[:, None, None, None]
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, np.clip((x - mean) * f + mean, 0, 255), rtol=1e-5)
    bright = layers.RandomBrightness((-0.2, 0.4), value_range=(0, 255), seed=6)
    delta = uniform_draws(6, -0.2, 0.4, 3)[:, None, None, None] * 255
    np.testing.assert_allclose(bright(x, training=True), np.clip(x + delta, 0, 255),
                               rtol=1e-5)
    assert layers.RandomBrightness(0.3).factor == (-0.3, 0.3)
    assert layers.RandomContrast(0.3).factor == (0.3, 0.3)


AUGMENTATIONS = [
    lambda **k: layers.RandomFlip(**k),
    lambda **k: layers.RandomFlip("vertical", **k),
    lambda **k: layers.RandomRotation(0.2, **k),
    lambda **k: layers.RandomRotation((-0.3, 0.1), fill_mode="wrap", interpolation="nearest",
                                      **k),
    lambda **k: layers.RandomZoom(0.4, (-0.3, 0.2), fill_mode="constant", fill_value=0.5, **k),
    lambda **k: layers.RandomTranslation(0.3, 0.4, fill_mode="nearest", **k),
    lambda **k: layers.RandomContrast((0.2, 0.6), value_range=(-100, 100), **k),
    lambda **k: layers.RandomBrightness(0.1, value_range=(-100, 100), **k),
]


@pytest.mark.parametrize("make", AUGMENTATIONS)
def test_augmentations_identity_at_inference_random_in_training(make):
    x = np.random.default_rng(1).standard_normal((6, 5, 4, 2)).astype(np.float32)
    layer = make(seed=11)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    first = layer(x, training=True)
    assert not np.array_equal(first, x)
    again = make(seed=11)(x, training=True)
    np.testing.assert_array_equal(again, first)  # the seed fixes the draws
    fastconv.utils.set_random_seed(3)
    a = make()(x, training=True)
    fastconv.utils.set_random_seed(3)
    np.testing.assert_array_equal(make()(x, training=True), a)  # so does set_random_seed
    clone, _ = round_trip(layer)
    assert clone.compute_output_shape((None, 5, 4, 2)) == (None, 5, 4, 2)


@pytest.mark.parametrize("make", [*AUGMENTATIONS, lambda **k: layers.RandomCrop(3, 2, **k),
                                  lambda **k: layers.RandomCrop(5, 5, **k)])
def test_augmentation_input_gradients(make):
    x = np.random.default_rng(2).standard_normal((2, 4, 4, 2))
    finite_difference_check(make(seed=1, dtype=F64), x, training=True)
    finite_difference_check(make(seed=1, dtype=F64), x, training=False)


def test_channels_first_augmentation_equals_channels_last():
    x = np.random.default_rng(3).standard_normal((3, 5, 6, 2)).astype(np.float32)
    last = layers.RandomRotation(0.3, seed=2)(x, training=True)
    first = layers.RandomRotation(0.3, seed=2, data_format="channels_first")(
        x.transpose(0, 3, 1, 2), training=True)
    np.testing.assert_allclose(first.transpose(0, 2, 3, 1), last, rtol=1e-6)


@pytest.mark.parametrize("make, name", [
    (lambda: layers.RandomFlip("diagonal"), "mode"),
    (lambda: layers.RandomRotation(1.5), "factor"),
    (lambda: layers.RandomRotation(0.1, fill_mode="mirror"), "fill_mode"),
    (lambda: layers.RandomRotation(0.1, interpolation="bicubic"), "interpolation"),
    (lambda: layers.RandomRotation(0.1, seed="a"), "seed"),
    (lambda: layers.RandomZoom(-1.0), "height_factor"),
    (lambda: layers.RandomZoom(0.2, (0.1, 0.2, 0.3)), "width_factor"),
    (lambda: layers.RandomTranslation(0.1, 2.0), "width_factor"),
    (lambda: layers.RandomCrop(0, 2), "height"),
    (lambda: layers.RandomContrast(-0.1), "factor"),
    (lambda: layers.RandomBrightness(0.1, value_range=(0, 1, 2)), "value_range"),
    (lambda: layers.RandomTranslation(0.1, 0.1, fill_value="x"), "fill_value"),
])
def test_augmentation_bad_arguments(make, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        make()


def test_keras_config_keys():
    assert set(layers.RandomRotation(0.1).get_config()) == {
        "name", "trainable", "dtype", "factor", "data_format", "fill_mode", "fill_value",
        "interpolation", "seed"}
    assert set(layers.RandomZoom(0.1).get_config()) >= {
        "height_factor", "width_factor", "fill_mode", "interpolation", "seed", "fill_value",
        "data_format"}
    assert set(layers.Resizing(2, 2).get_config()) >= {
        "height", "width", "interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio",
        "fill_mode", "fill_value", "antialias", "data_format"}
    assert set(layers.RandomFlip().get_config()) >= {"mode", "seed", "data_format"}
    assert layers.RandomFlip().get_config()["mode"] == "horizontal_and_vertical"
    assert layers.RandomRotation(0.1).get_config()["fill_mode"] == "reflect"


# ----------------------------------------------------------------------------
# models


def image_model(seed: int = 0) -> models.Model:
    inputs = fastconv.Input((8, 8, 3))
    h = layers.Rescaling(1 / 255)(inputs)
    h = layers.RandomFlip(seed=seed)(h)
    h = layers.RandomRotation(0.1, seed=seed)(h)
    h = layers.Conv2D(4, 3, activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return models.Model(inputs, layers.Dense(2, activation="softmax")(h))


def test_image_model_trains_and_predicts_deterministically(tmp_path):
    fastconv.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 8, 8, 3)).astype(np.uint8)
    y = (x[..., 0].mean(axis=(1, 2)) > 127).astype(np.int64)
    model = image_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    p = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), p)
    np.testing.assert_allclose(model(x.astype(np.float32)), p, rtol=1e-6)
    model.save(tmp_path / "aug.keras")
    loaded = models.load_model(tmp_path / "aug.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), p)
    assert [type(layer).__name__ for layer in models.clone_model(model).layers][1:4] == [
        "Rescaling", "RandomFlip", "RandomRotation"]

    fastconv.utils.set_random_seed(5)
    a = image_model(seed=None)
    a.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    a.fit(x, y, epochs=1, batch_size=8, verbose=0)
    fastconv.utils.set_random_seed(5)
    b = image_model(seed=None)
    b.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    b.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)  # reproducible with set_random_seed


def test_weight_gradients_through_augmentations():
    stack = [layers.Conv2D(2, 2, padding="same", dtype=F64),
             layers.RandomRotation(0.2, dtype=F64), layers.RandomZoom(0.2, dtype=F64),
             layers.RandomTranslation(0.2, 0.2, fill_mode="constant", dtype=F64),
             layers.RandomFlip(dtype=F64), layers.RandomContrast(0.3, (-50, 50), dtype=F64),
             layers.RandomBrightness(0.1, (-50, 50), dtype=F64),
             layers.RandomCrop(4, 3, dtype=F64), layers.Resizing(3, 3, dtype=F64),
             layers.Flatten(dtype=F64), layers.Dense(2, dtype=F64)]
    model = models.Sequential([layers.InputLayer(shape=(5, 5, 1), dtype=F64), *stack])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    rng = np.random.default_rng(0)
    errors = check_gradients(model, rng.standard_normal((2, 5, 5, 1)),
                             rng.standard_normal((2, 2)))
    assert set(errors) == {w.name for w in model.trainable_weights}


def test_normalization_state_saves_and_loads(tmp_path):
    data = np.random.default_rng(0).standard_normal((20, 4, 4, 3)) * 3 + 1
    norm = layers.Normalization()
    norm.adapt(data)
    inputs = fastconv.Input((4, 4, 3))
    model = models.Model(inputs, layers.Dense(1)(layers.Flatten()(
        layers.CenterCrop(2, 2)(layers.Resizing(6, 6)(norm(inputs))))))
    model.save(tmp_path / "norm.keras")
    loaded = models.load_model(tmp_path / "norm.keras")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0),
                                  model.predict(data, verbose=0))
    np.testing.assert_allclose(loaded.layers[1].get_weights()[0], data.mean(axis=(0, 1, 2)),
                               rtol=1e-5)


def test_uint8_image_input_is_cast_by_the_first_layer():
    inputs = fastconv.Input((4, 4, 3), dtype="uint8")
    outputs = layers.RandomFlip()(layers.Rescaling(1 / 255)(inputs))
    model = models.Model(inputs, layers.Resizing(2, 2)(outputs))
    x = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    expected = layers.Resizing(2, 2)(x.astype(np.float32) / np.float32(255))
    y = model.predict(x, verbose=0)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_normalization_mean_and_variance_attributes():
    layer = layers.Normalization()
    assert layer.mean is None and layer.variance is None
    x = np.array([[1.0, 10.0], [3.0, 30.0]], np.float32)
    layer.adapt(x)
    np.testing.assert_allclose(layer.mean, [[2.0, 20.0]])
    np.testing.assert_allclose(layer.variance, [[1.0, 100.0]])
    fixed = layers.Normalization(axis=-1, mean=[1.0, 2.0], variance=[4.0, 9.0])
    fixed.build((None, 3, 2))
    assert fixed.mean.shape == (1, 1, 2)
    np.testing.assert_allclose(fixed.variance.ravel(), [4.0, 9.0])

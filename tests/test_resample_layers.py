"""The global pooling, upsampling, zero padding and cropping layers: Keras 3's
output shapes, configs, defaults and names; values in both data formats and
on both backends; input gradients; models that train, predict, save, load
and print a summary."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from layer_helpers import F64, assert_gradients, check_input_gradient, rand

import fastconv
from fastconv import layers, models, reference

GLOBAL_POOLING = [
    layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D, layers.GlobalAveragePooling3D,
    layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D,
]


def check_layer(make: Callable[..., layers.Layer], x_shape: tuple, expected: tuple) -> None:
    """One layer, every protocol: compute_output_shape (with an unknown batch)
    and the real output equal ``expected``; the config survives JSON and
    from_config; float32 stays float32 forward and backward; the reference
    backend gives the same values; float64 input gradients match central
    differences."""
    layer = make()
    assert layer.compute_output_shape((None, *x_shape[1:])) == (None, *expected[1:])
    x = rand(x_shape, 3).astype(np.float32)
    y = layer(x)
    assert y.shape == expected and y.dtype == np.float32
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(clone(x), y)
    _, ctx = layer.forward(x)
    dx = layer.backward(ctx, np.ones(expected, np.float32))
    assert dx.shape == x_shape and dx.dtype == np.float32
    assert layer.backward(ctx, np.ones(expected, np.float32), need_dx=False) is None
    with layers.use_backend(reference):
        np.testing.assert_allclose(layer(x), y, rtol=1e-6, atol=1e-6)
    check_input_gradient(make(dtype=F64), rand(x_shape, 9))


# ----------------------------------------------------------------------------
# every layer, both data formats: Keras' shapes, worked out by hand

LAYER_CASES = [
    # make, channels_last input shape, expected output shape (channels last)
    (lambda **k: layers.GlobalAveragePooling1D(**k), (2, 7, 3), (2, 3)),
    (lambda **k: layers.GlobalAveragePooling2D(keepdims=True, **k), (2, 5, 4, 3), (2, 1, 1, 3)),
    (lambda **k: layers.GlobalAveragePooling3D(**k), (1, 3, 2, 4, 17), (1, 17)),
    (lambda **k: layers.GlobalMaxPooling1D(keepdims=True, **k), (2, 7, 3), (2, 1, 3)),
    (lambda **k: layers.GlobalMaxPooling2D(**k), (2, 5, 4, 3), (2, 3)),
    (lambda **k: layers.GlobalMaxPooling3D(keepdims=True, **k), (1, 3, 2, 4, 2),
     (1, 1, 1, 1, 2)),
    (lambda **k: layers.UpSampling2D(**k), (2, 3, 2, 3), (2, 6, 4, 3)),
    (lambda **k: layers.UpSampling2D((3, 1), interpolation="bilinear", **k), (1, 3, 4, 2),
     (1, 9, 4, 2)),
    (lambda **k: layers.UpSampling3D((1, 2, 3), **k), (1, 2, 2, 3, 2), (1, 2, 4, 9, 2)),
    (lambda **k: layers.ZeroPadding1D((0, 2), **k), (2, 5, 3), (2, 7, 3)),
    (lambda **k: layers.ZeroPadding2D(((1, 0), 2), **k), (1, 3, 4, 2), (1, 4, 8, 2)),
    (lambda **k: layers.ZeroPadding3D(**k), (1, 2, 3, 2, 2), (1, 4, 5, 4, 2)),
    (lambda **k: layers.Cropping2D(((1, 0), (2, 1)), **k), (1, 4, 5, 2), (1, 3, 2, 2)),
    (lambda **k: layers.Cropping3D(((0, 1), 1, (2, 0)), **k), (1, 3, 4, 5, 2), (1, 2, 2, 3, 2)),
]


def channels_first(shape: tuple) -> tuple:
    return (shape[0], shape[-1], *shape[1:-1]) if len(shape) > 2 else shape


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("make, x_shape, expected", LAYER_CASES)
def test_layer(make, x_shape, expected, data_format):
    if data_format == "channels_first":
        x_shape, expected = channels_first(x_shape), channels_first(expected)
    check_layer(lambda **k: make(data_format=data_format, **k), x_shape, expected)


@pytest.mark.parametrize("make, x_shape, expected", [
    (lambda **k: layers.UpSampling1D(3, **k), (2, 4, 3), (2, 12, 3)),
    (lambda **k: layers.Cropping1D((2, 1), **k), (2, 6, 3), (2, 3, 3)),
])
def test_layer_without_data_format(make, x_shape, expected):
    check_layer(make, x_shape, expected)


@pytest.mark.parametrize("make, x_shape", [
    (lambda df: layers.GlobalAveragePooling2D(data_format=df, keepdims=True), (2, 5, 4, 19)),
    (lambda df: layers.GlobalMaxPooling3D(data_format=df), (2, 3, 2, 4, 17)),
    (lambda df: layers.UpSampling2D((2, 3), data_format=df, interpolation="bilinear"),
     (2, 3, 4, 5)),
    (lambda df: layers.UpSampling3D(2, data_format=df), (1, 2, 3, 2, 3)),
    (lambda df: layers.ZeroPadding3D(((1, 2), 0, (0, 1)), data_format=df), (2, 2, 3, 2, 3)),
    (lambda df: layers.Cropping2D(((1, 1), (0, 2)), data_format=df), (2, 4, 5, 3)),
])
def test_channels_first_is_channels_last_transposed(make, x_shape):
    x = rand(x_shape, 1).astype(np.float32)
    y = make("channels_last")(x)
    first = make("channels_first")
    to_first = (0, x.ndim - 1, *range(1, x.ndim - 1))
    y_first = first(np.transpose(x, to_first))
    expected = np.transpose(y, to_first) if y.ndim == x.ndim else y
    np.testing.assert_array_equal(y_first, expected)
    dy = rand(y.shape, 2).astype(np.float32)
    _, ctx = first.forward(np.transpose(x, to_first))
    dy_first = np.transpose(dy, to_first) if y.ndim == x.ndim else dy
    last = make("channels_last")
    _, ctx_last = last.forward(x)
    np.testing.assert_array_equal(first.backward(ctx, dy_first),
                                  np.transpose(last.backward(ctx_last, dy), to_first))


def test_values_are_the_ops():
    x = rand((2, 4, 5, 3), 1)
    np.testing.assert_array_equal(layers.GlobalAveragePooling2D(dtype=F64)(x),
                                  fastconv.ops.global_avg_pool(x))
    np.testing.assert_array_equal(layers.GlobalMaxPooling2D(dtype=F64)(x),
                                  fastconv.ops.global_max_pool(x)[0])
    np.testing.assert_array_equal(layers.UpSampling2D(dtype=F64, interpolation="bilinear")(x),
                                  fastconv.ops.upsample(x, 2, "bilinear"))
    np.testing.assert_array_equal(layers.ZeroPadding2D(dtype=F64)(x), fastconv.ops.zero_pad(x, 1))
    np.testing.assert_array_equal(layers.Cropping2D(1, dtype=F64)(x), fastconv.ops.crop(x, 1))


# ----------------------------------------------------------------------------
# output shapes: Keras' formulas by hand, None dims, keepdims


@pytest.mark.parametrize("cls, rank", [(c, int(c.__name__[-2])) for c in GLOBAL_POOLING])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_pooling_output_shapes(cls, rank, keepdims, data_format):
    layer = cls(data_format=data_format, keepdims=keepdims)
    spatial = (None,) * rank
    shape = (None, *spatial, 5) if data_format == "channels_last" else (None, 5, *spatial)
    if not keepdims:
        expected = (None, 5)
    elif data_format == "channels_last":
        expected = (None, *(1,) * rank, 5)
    else:
        expected = (None, 5, *(1,) * rank)
    assert layer.compute_output_shape(shape) == expected
    with pytest.raises(ValueError, match=f"expected ndim={rank + 2}"):
        layer.compute_output_shape((None, 5))


@pytest.mark.parametrize("layer, shape, expected", [
    (layers.UpSampling1D(), (None, None, 3), (None, None, 3)),
    (layers.UpSampling1D(4), (8, 5, 3), (8, 20, 3)),
    (layers.UpSampling2D(), (None, 3, None, 2), (None, 6, None, 2)),
    (layers.UpSampling2D((1, 3), data_format="channels_first"), (None, 2, 3, 4),
     (None, 2, 3, 12)),
    (layers.UpSampling3D(), (None, 1, None, 3, 2), (None, 2, None, 6, 2)),
    (layers.ZeroPadding1D(), (None, 5, 3), (None, 7, 3)),
    (layers.ZeroPadding1D(3, data_format="channels_first"), (None, 3, 5), (None, 3, 11)),
    (layers.ZeroPadding2D((2, 1)), (None, None, 4, 3), (None, None, 6, 3)),
    (layers.ZeroPadding2D(((1, 2), (3, 4)), data_format="channels_first"), (2, 3, 4, 5),
     (2, 3, 7, 12)),
    (layers.ZeroPadding3D(2), (None, 1, 2, None, 3), (None, 5, 6, None, 3)),
    (layers.Cropping1D(), (None, 5, 3), (None, 3, 3)),
    (layers.Cropping1D((0, 4)), (None, None, 3), (None, None, 3)),
    (layers.Cropping2D(), (None, 4, 5, 3), (None, 4, 5, 3)),
    (layers.Cropping2D((1, 2), data_format="channels_first"), (None, 3, 4, 5), (None, 3, 2, 1)),
    (layers.Cropping3D(), (None, 3, None, 5, 2), (None, 1, None, 3, 2)),
])
def test_reshaping_output_shapes(layer, shape, expected):
    assert layer.compute_output_shape(shape) == expected


@pytest.mark.parametrize("layer, shape", [
    (layers.Cropping1D((2, 3)), (None, 5, 3)),
    (layers.Cropping2D(((0, 0), (2, 2))), (None, 6, 4, 3)),
    (layers.Cropping2D(2, data_format="channels_first"), (None, 3, 4, 9)),
    (layers.Cropping3D(), (None, 3, 2, 5, 1)),
])
def test_cropping_everything_is_an_error(layer, shape):
    with pytest.raises(ValueError, match="`cropping`.*every element"):
        layer.compute_output_shape(shape)
    with pytest.raises(ValueError, match="`cropping`"):
        layer(np.zeros((1, *shape[1:]), np.float32))


def test_unknown_spatial_sizes_work_on_any_batch_and_size():
    inputs = fastconv.Input((None, None, 3))
    hidden = layers.Conv2D(4, 3, padding="same")(inputs)
    outputs = layers.Dense(2)(layers.GlobalAveragePooling2D()(hidden))
    model = fastconv.Model(inputs, outputs)
    assert model.output_shape == (None, 2)
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    for n, h, w in [(1, 5, 7), (4, 9, 3), (3, 1, 1)]:
        x = rng.random((n, h, w, 3), dtype=np.float32)
        assert model.predict(x, verbose=0).shape == (n, 2)
        model.fit(x, rng.random((n, 2), dtype=np.float32), epochs=1, verbose=0)


# ----------------------------------------------------------------------------
# arguments, configs, defaults and names (Keras 3's)


def test_configs_follow_keras():
    base = {"trainable": True, "dtype": "float32"}
    expected = {
        layers.GlobalAveragePooling1D(name="a"): {"data_format": "channels_last",
                                                  "keepdims": False},
        layers.GlobalMaxPooling3D(data_format="channels_first", keepdims=True, name="a"): {
            "data_format": "channels_first", "keepdims": True},
        layers.UpSampling1D(name="a"): {"size": 2},
        layers.UpSampling2D(name="a"): {"size": [2, 2], "data_format": "channels_last",
                                        "interpolation": "nearest"},
        layers.UpSampling2D(3, interpolation="BILINEAR", name="a"): {
            "size": [3, 3], "data_format": "channels_last", "interpolation": "bilinear"},
        layers.UpSampling3D(name="a"): {"size": [2, 2, 2], "data_format": "channels_last"},
        layers.ZeroPadding1D(name="a"): {"padding": [1, 1], "data_format": "channels_last"},
        layers.ZeroPadding1D((2, 3), name="a"): {"padding": [2, 3],
                                                 "data_format": "channels_last"},
        layers.ZeroPadding2D(name="a"): {"padding": [[1, 1], [1, 1]],
                                         "data_format": "channels_last"},
        layers.ZeroPadding2D(((1, 2), 3), name="a"): {"padding": [[1, 2], [3, 3]],
                                                      "data_format": "channels_last"},
        layers.ZeroPadding3D(name="a"): {"padding": [[1, 1], [1, 1], [1, 1]],
                                         "data_format": "channels_last"},
        layers.Cropping1D(name="a"): {"cropping": [1, 1]},
        layers.Cropping2D(name="a"): {"cropping": [[0, 0], [0, 0]],
                                      "data_format": "channels_last"},
        layers.Cropping2D(2, data_format="channels_first", name="a"): {
            "cropping": [[2, 2], [2, 2]], "data_format": "channels_first"},
        layers.Cropping3D(name="a"): {"cropping": [[1, 1], [1, 1], [1, 1]],
                                      "data_format": "channels_last"},
    }
    for layer, own in expected.items():
        assert layer.get_config() == {"name": "a", **base, **own}, type(layer).__name__


def test_keras_attributes_names_and_aliases():
    assert layers.ZeroPadding2D(((1, 2), 3)).padding == ((1, 2), (3, 3))
    assert layers.Cropping1D(2).cropping == ((2, 2),)
    assert layers.UpSampling3D((1, 2, 3)).size == (1, 2, 3)
    assert layers.GlobalAvgPool1D is layers.GlobalAveragePooling1D
    assert layers.GlobalAvgPool2D is layers.GlobalAveragePooling2D
    assert layers.GlobalAvgPool3D is layers.GlobalAveragePooling3D
    assert layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D
    assert layers.GlobalMaxPool2D is layers.GlobalMaxPooling2D
    assert layers.GlobalMaxPool3D is layers.GlobalMaxPooling3D
    fastconv.backend.clear_session()
    names = [layers.GlobalAveragePooling2D().name, layers.GlobalMaxPool1D().name,
             layers.UpSampling2D().name, layers.ZeroPadding3D().name, layers.Cropping1D().name,
             layers.Cropping1D().name]
    assert names == ["global_average_pooling2d", "global_max_pooling1d", "up_sampling2d",
                     "zero_padding3d", "cropping1d", "cropping1d_1"]


@pytest.mark.parametrize("make, error, argument", [
    (lambda: layers.UpSampling1D(0), ValueError, "size"),
    (lambda: layers.UpSampling1D((2,)), TypeError, "size"),
    (lambda: layers.UpSampling1D(2.0), TypeError, "size"),
    (lambda: layers.UpSampling2D((2, 0)), ValueError, "size"),
    (lambda: layers.UpSampling2D((2, 2, 2)), TypeError, "size"),
    (lambda: layers.UpSampling3D("2"), TypeError, "size"),
    (lambda: layers.UpSampling2D(interpolation="bicubic"), ValueError, "interpolation"),
    (lambda: layers.UpSampling2D(interpolation="lanczos5"), ValueError, "interpolation"),
    (lambda: layers.UpSampling2D(interpolation="area"), ValueError, "interpolation"),
    (lambda: layers.UpSampling2D(interpolation="trilinear"), ValueError, "interpolation"),
    (lambda: layers.UpSampling2D(interpolation=None), ValueError, "interpolation"),
    (lambda: layers.UpSampling2D(data_format="NHWC"), ValueError, "data_format"),
    (lambda: layers.ZeroPadding1D(-1), ValueError, "padding"),
    (lambda: layers.ZeroPadding1D((1, 2, 3)), TypeError, "padding"),
    (lambda: layers.ZeroPadding2D((1, 2, 3)), TypeError, "padding"),
    (lambda: layers.ZeroPadding2D(((1, 2), (3, -4))), ValueError, "padding"),
    (lambda: layers.ZeroPadding3D(1.5), TypeError, "padding"),
    (lambda: layers.Cropping1D(-2), ValueError, "cropping"),
    (lambda: layers.Cropping2D(((1, 2, 3), 1)), TypeError, "cropping"),
    (lambda: layers.Cropping3D((1, 1)), TypeError, "cropping"),
    (lambda: layers.GlobalAveragePooling2D(keepdims=1), TypeError, "keepdims"),
    (lambda: layers.GlobalMaxPooling1D(data_format="last"), ValueError, "data_format"),
])
def test_bad_arguments_name_the_argument(make, error, argument):
    with pytest.raises(error, match=f"`{argument}`"):
        make()


def test_bilinear_error_lists_what_is_supported():
    with pytest.raises(ValueError, match="expected 'nearest' or 'bilinear'.*Keras.*"
                                         "received interpolation='bicubic'"):
        layers.UpSampling2D(interpolation="bicubic")


def test_unknown_keywords_are_rejected():
    # Keras' Cropping1D and UpSampling1D have no data_format.
    for make in (lambda: layers.Cropping1D(data_format="channels_first"),
                 lambda: layers.UpSampling1D(data_format="channels_last"),
                 lambda: layers.ZeroPadding2D(color="red")):
        with pytest.raises(TypeError, match="Unrecognized keyword"):
            make()


def test_global_average_pooling1d_accepts_only_mask_none():
    layer = layers.GlobalAveragePooling1D()
    x = rand((2, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(x, mask=None), x.mean(axis=1))
    with pytest.raises(ValueError, match="`mask`.*mask=None only.*shape \\(2, 4\\)"):
        layer(x, mask=np.ones((2, 4), bool))


# ----------------------------------------------------------------------------
# models: build, one training step, predict, save, load, summary


def sequential_models() -> list[models.Sequential]:
    return [
        models.Sequential([
            layers.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same"), layers.ZeroPadding2D(1),
            layers.UpSampling2D(2, interpolation="bilinear"), layers.Cropping2D(((1, 2), 3)),
            layers.MaxPooling2D(2), layers.GlobalMaxPooling2D(keepdims=True), layers.Flatten(),
            layers.Dense(2)]),
        models.Sequential([
            layers.Input((9, 3)), layers.ZeroPadding1D((1, 2)), layers.UpSampling1D(2),
            layers.Cropping1D(1), layers.Dense(5), layers.GlobalAveragePooling1D(),
            layers.Dense(2)]),
        models.Sequential([
            layers.Input((3, 2, 4, 4)), layers.ZeroPadding3D(1, data_format="channels_first"),
            layers.UpSampling3D((1, 2, 2), data_format="channels_first"),
            layers.Cropping3D(((0, 1), (1, 1), (2, 0)), data_format="channels_first"),
            layers.GlobalMaxPooling3D(data_format="channels_first"), layers.Dense(2)]),
    ]


@pytest.mark.parametrize("index", range(3))
def test_sequential_model_end_to_end(index, tmp_path, capsys):
    model = sequential_models()[index]
    model.compile("adam", "mse")
    rng = np.random.default_rng(index)
    x = rng.random((4, *model.input_shape[1:]), dtype=np.float32)
    y = rng.random((4, 2), dtype=np.float32)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    prediction = model.predict(x, verbose=0)
    assert prediction.shape == (4, 2)
    model.save(tmp_path / "model.zip")
    loaded = models.load_model(tmp_path / "model.zip")
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), prediction)
    model.summary()
    out = capsys.readouterr().out
    for layer in model.layers:
        assert f"{layer.name} (" in out
    with layers.use_backend(reference):
        np.testing.assert_allclose(model.predict(x, verbose=0), prediction, rtol=1e-5,
                                   atol=1e-6)


def test_functional_model_end_to_end(tmp_path):
    inputs = fastconv.Input((None, None, 3))
    features = layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    wide = layers.UpSampling2D(2, interpolation="bilinear")(layers.ZeroPadding2D(1)(features))
    pooled = [layers.GlobalAveragePooling2D()(features), layers.GlobalMaxPooling2D()(features),
              layers.GlobalAvgPool2D()(layers.Cropping2D(1)(wide))]
    outputs = layers.Dense(2)(layers.concatenate(pooled))
    model = fastconv.Model(inputs, outputs)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.random((3, 6, 5, 3), dtype=np.float32)
    y = rng.random((3, 2), dtype=np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    prediction = model.predict(x, verbose=0)
    model.save(tmp_path / "functional.zip")
    loaded = models.load_model(tmp_path / "functional.zip")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), prediction)
    assert loaded.predict(x[:1, :4, :3], verbose=0).shape == (1, 2)


@pytest.mark.parametrize("layer_list, x_shape", [
    ([layers.Conv2D(2, 2, dtype=F64), layers.UpSampling2D((2, 3), interpolation="bilinear",
                                                          dtype=F64),
      layers.Cropping2D(((1, 0), (2, 1)), dtype=F64), layers.GlobalAveragePooling2D(dtype=F64),
      layers.Dense(2, dtype=F64)], (2, 4, 4, 2)),
    ([layers.Conv2D(3, 2, data_format="channels_first", dtype=F64),
      layers.ZeroPadding2D(((0, 1), 2), data_format="channels_first", dtype=F64),
      layers.UpSampling2D(2, data_format="channels_first", dtype=F64),
      layers.GlobalMaxPooling2D(data_format="channels_first", keepdims=True, dtype=F64),
      layers.Flatten(dtype=F64), layers.Dense(2, dtype=F64)], (2, 2, 4, 3)),
    ([layers.Dense(3, dtype=F64), layers.ZeroPadding1D((2, 0), dtype=F64),
      layers.UpSampling1D(3, dtype=F64), layers.Cropping1D((1, 3), dtype=F64),
      layers.GlobalMaxPooling1D(dtype=F64), layers.Dense(2, dtype=F64)], (2, 5, 2)),
])
def test_weight_gradients_through_the_layers(layer_list, x_shape):
    assert_gradients(layer_list, x_shape, (x_shape[0], 2))

"""SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout and
ActivityRegularization: shapes, training vs inference, the statistics of
their noise at a fixed seed (Keras' formulas), float64 gradients against
central differences, reproducibility, configs, saving and cloning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from layer_helpers import F64, assert_gradients, rand

import fastconv
from fastconv import layers, models, optimizers, utils

# SELU's constants, as Keras' AlphaDropout writes them.
ALPHA = 1.6732632423543772848170429916717
SCALE = 1.0507009873554804934193349852946


def binomial_ok(kept_fraction: float, p_keep: float, n: int) -> bool:
    """Within 5 standard deviations of a binomial's mean."""
    return abs(kept_fraction - p_keep) < 5 * math.sqrt(p_keep * (1 - p_keep) / n)


def check_input_gradient(layer, x, seed=0):
    """layer.backward's dL/dx against central differences of
    L = sum(forward(x) * r), every forward pass drawing the same noise."""
    x = np.asarray(x, dtype=F64)
    layer.ensure_built(x.shape)
    r = rand(layer.compute_output_shape(x.shape), seed + 1)

    def forward(xv):
        utils.set_random_seed(seed)
        layer.restart_random_state()
        return layer.forward(xv.copy(), training=True)

    _, ctx = forward(x)
    dx = layer.backward(ctx, r.copy(), need_dx=True)
    assert dx.shape == x.shape
    numeric = np.zeros_like(x)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (np.sum(forward(up)[0] * r) - np.sum(forward(down)[0] * r)) / (2 * h)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-9)


RANDOM_LAYERS = [
    (lambda **kw: layers.SpatialDropout1D(0.4, **kw), (3, 5, 4)),
    (lambda **kw: layers.SpatialDropout2D(0.4, **kw), (3, 4, 5, 2)),
    (lambda **kw: layers.SpatialDropout2D(0.4, data_format="channels_first", **kw),
     (3, 2, 4, 5)),
    (lambda **kw: layers.SpatialDropout3D(0.4, **kw), (2, 3, 3, 2, 3)),
    (lambda **kw: layers.SpatialDropout3D(0.4, data_format="channels_first", **kw),
     (2, 3, 2, 3, 2)),
    (lambda **kw: layers.GaussianNoise(0.3, **kw), (3, 4)),
    (lambda **kw: layers.GaussianDropout(0.3, **kw), (3, 2, 4)),
    (lambda **kw: layers.AlphaDropout(0.3, **kw), (3, 5)),
    (lambda **kw: layers.AlphaDropout(0.3, noise_shape=(None, 1, 3), **kw), (2, 4, 3)),
]


# ----------------------------------------------------------------------------
# shapes, inference


@pytest.mark.parametrize("make, shape", RANDOM_LAYERS)
def test_output_shape_and_identity_at_inference(make, shape):
    layer = make()
    x = rand(shape).astype(np.float32)
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *shape[1:])
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    symbolic = layer(fastconv.Input(shape[1:]))
    assert tuple(symbolic.shape) == (None, *shape[1:])
    model = models.Sequential([layers.InputLayer(shape=shape[1:]), make()])
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    utils.set_random_seed(0)
    assert not np.array_equal(layer(x, training=True), x)  # training changes it


@pytest.mark.parametrize("make", [
    lambda: layers.SpatialDropout1D(0.5), lambda: layers.SpatialDropout2D(0.5),
    lambda: layers.SpatialDropout3D(0.5)])
@pytest.mark.parametrize("shape", [(None, 4), (None, 3, 4, 5, 6, 2)])
def test_spatial_dropout_rejects_the_wrong_rank(make, shape):
    with pytest.raises(ValueError, match="expected ndim="):
        make().compute_output_shape(shape)


@pytest.mark.parametrize("make", [
    lambda: layers.GaussianNoise(0.0), lambda: layers.GaussianDropout(0.0),
    lambda: layers.AlphaDropout(0.0), lambda: layers.SpatialDropout2D(0.0)])
def test_zero_rate_is_the_identity_in_training(make):
    x = rand((2, 3, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(make()(x, training=True), x)


# ----------------------------------------------------------------------------
# the noise at training time


@pytest.mark.parametrize("rate", [0.2, 0.5])
@pytest.mark.parametrize("make, shape, channel_axis", [
    (lambda r: layers.SpatialDropout1D(r, dtype=F64), (40, 6, 25), -1),
    (lambda r: layers.SpatialDropout2D(r, dtype=F64), (40, 3, 4, 25), -1),
    (lambda r: layers.SpatialDropout2D(r, "channels_first", dtype=F64), (40, 25, 3, 4), 1),
    (lambda r: layers.SpatialDropout3D(r, dtype=F64), (20, 2, 3, 2, 25), -1),
    (lambda r: layers.SpatialDropout3D(r, "channels_first", dtype=F64), (20, 25, 2, 3, 2), 1),
])
def test_spatial_dropout_drops_whole_feature_maps(rate, make, shape, channel_axis):
    utils.set_random_seed(7)
    x = np.abs(rand(shape)) + 0.5  # no zeros among the inputs
    y = make(rate)(x, training=True)
    # One decision per (sample, channel): move the channels next to the batch
    # axis and look at each map.
    maps_y = np.moveaxis(y, channel_axis, 1).reshape(shape[0], shape[channel_axis], -1)
    maps_x = np.moveaxis(x, channel_axis, 1).reshape(shape[0], shape[channel_axis], -1)
    dropped = np.all(maps_y == 0, axis=-1)
    kept = np.all(np.isclose(maps_y, maps_x / (1 - rate), rtol=1e-12, atol=0), axis=-1)
    assert np.all(dropped ^ kept)  # each map wholly dropped or wholly kept and rescaled
    assert binomial_ok(kept.mean(), 1 - rate, kept.size)
    # samples draw their own masks
    assert not all(np.array_equal(kept[0], kept[i]) for i in range(1, shape[0]))


def test_spatial_dropout_backward_uses_the_forward_mask():
    layer = layers.SpatialDropout2D(0.5, seed=3, dtype=F64)
    x = np.abs(rand((4, 3, 3, 6))) + 0.5
    y, ctx = layer.forward(x, training=True)
    dy = rand(x.shape, 1)
    np.testing.assert_allclose(layer.backward(ctx, dy), dy * (y / x), rtol=1e-12)


def test_gaussian_noise_adds_zero_mean_noise_of_stddev():
    utils.set_random_seed(1)
    x = rand((300, 400))
    noise = layers.GaussianNoise(0.4, dtype=F64)(x, training=True) - x
    n = noise.size
    assert abs(noise.mean()) < 5 * 0.4 / math.sqrt(n)
    assert abs(noise.std() - 0.4) < 0.01 * 0.4
    # independent of the input
    assert abs(np.corrcoef(noise.ravel(), x.ravel())[0, 1]) < 5 / math.sqrt(n)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_gaussian_dropout_multiplies_by_one_centered_noise(rate):
    utils.set_random_seed(2)
    x = np.abs(rand((300, 400))) + 0.5
    factor = layers.GaussianDropout(rate, dtype=F64)(x, training=True) / x
    stddev = math.sqrt(rate / (1 - rate))  # Keras' formula
    assert abs(factor.mean() - 1) < 5 * stddev / math.sqrt(factor.size)
    assert abs(factor.std() - stddev) < 0.01 * stddev


def test_gaussian_dropout_backward_is_the_drawn_factor():
    layer = layers.GaussianDropout(0.3, seed=4, dtype=F64)
    x = np.abs(rand((5, 7))) + 0.5
    y, ctx = layer.forward(x, training=True)
    dy = rand(x.shape, 1)
    np.testing.assert_allclose(layer.backward(ctx, dy), dy * y / x, rtol=1e-12)


def alpha_coefficients(rate):
    """Keras' affine correction, written out from its documented formulas."""
    alpha_p = -ALPHA * SCALE
    a = 1 / math.sqrt((1 - rate) * (1 + rate * alpha_p ** 2))
    return alpha_p, a, -a * alpha_p * rate


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_alpha_dropout_follows_keras_formula(rate):
    utils.set_random_seed(3)
    x = rand((200, 300))
    y = layers.AlphaDropout(rate, dtype=F64)(x, training=True)
    alpha_p, a, b = alpha_coefficients(rate)
    kept = np.isclose(y, a * x + b, rtol=0, atol=1e-12)
    dropped = np.isclose(y, a * alpha_p + b, rtol=0, atol=1e-12)
    assert np.all(kept | dropped)
    assert binomial_ok(kept.mean(), 1 - rate, kept.size)
    # zero mean and unit variance are kept for standard-normal inputs
    assert abs(y.mean()) < 0.02
    assert abs(y.var() - 1) < 0.02


def test_alpha_dropout_noise_shape_shares_the_mask():
    utils.set_random_seed(4)
    x = rand((30, 6, 4))
    y = layers.AlphaDropout(0.5, noise_shape=(None, 1, 4), dtype=F64)(x, training=True)
    alpha_p, a, b = alpha_coefficients(0.5)
    dropped = np.isclose(y, a * alpha_p + b, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(dropped, np.broadcast_to(dropped[:, :1, :], dropped.shape))
    assert dropped.any() and not dropped.all()


def test_alpha_dropout_backward_is_a_where_kept():
    layer = layers.AlphaDropout(0.4, seed=2, dtype=F64)
    x = rand((20, 10))
    y, ctx = layer.forward(x, training=True)
    alpha_p, a, b = alpha_coefficients(0.4)
    kept = ~np.isclose(y, a * alpha_p + b, rtol=0, atol=1e-12)
    dy = rand(x.shape, 1)
    np.testing.assert_allclose(layer.backward(ctx, dy), np.where(kept, a * dy, 0), rtol=1e-12)


def test_alpha_dropout_rejects_a_noise_shape_that_does_not_broadcast():
    layer = layers.AlphaDropout(0.5, noise_shape=(None, 3))
    with pytest.raises(ValueError, match="`noise_shape`"):
        layer(np.ones((2, 4)), training=True)
    with pytest.raises(ValueError, match="`noise_shape`"):
        layers.AlphaDropout(0.5, noise_shape=(None, 1, 1))(fastconv.Input((4,)))


# ----------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("make, shape", RANDOM_LAYERS)
@pytest.mark.parametrize("seeded", [True, False])
def test_input_gradient_matches_central_differences(make, shape, seeded):
    layer = make(seed=5, dtype=F64) if seeded else make(dtype=F64)
    check_input_gradient(layer, rand(shape, 2))


@pytest.mark.parametrize("make", [
    lambda: layers.SpatialDropout1D(0.3, dtype=F64),
    lambda: layers.GaussianNoise(0.2, dtype=F64),
    lambda: layers.GaussianDropout(0.3, seed=1, dtype=F64),
    lambda: layers.AlphaDropout(0.3, dtype=F64),
    lambda: layers.ActivityRegularization(0.05, 0.1, dtype=F64),
])
def test_weight_gradients_through_the_layer(make):
    assert_gradients([layers.Dense(6, dtype=F64), layers.Reshape((3, 2), dtype=F64), make(),
                      layers.Flatten(dtype=F64), layers.Dense(2, dtype=F64)], (4, 5), (4, 2))


def test_weight_gradients_through_spatial_dropout_2d_after_a_convolution():
    assert_gradients([layers.Conv2D(3, 2, dtype=F64),
                      layers.SpatialDropout2D(0.4, seed=2, dtype=F64),
                      layers.GaussianNoise(0.1, dtype=F64), layers.Flatten(dtype=F64),
                      layers.Dense(2, dtype=F64)], (3, 4, 4, 2), (3, 2))


# ----------------------------------------------------------------------------
# reproducibility


@pytest.mark.parametrize("make, shape", RANDOM_LAYERS)
def test_set_random_seed_reproduces_the_noise(make, shape):
    x = rand(shape).astype(np.float32)
    layer = make()
    utils.set_random_seed(42)
    a, b = layer(x, training=True), layer(x, training=True)
    assert not np.array_equal(a, b)  # each call draws anew
    utils.set_random_seed(42)
    np.testing.assert_array_equal(layer(x, training=True), a)
    np.testing.assert_array_equal(layer(x, training=True), b)
    utils.set_random_seed(43)
    assert not np.array_equal(layer(x, training=True), a)


@pytest.mark.parametrize("make, shape", RANDOM_LAYERS)
def test_a_seed_gives_the_same_noise_in_every_instance(make, shape):
    x = rand(shape).astype(np.float32)
    utils.set_random_seed(1)
    a = make(seed=9)(x, training=True)
    utils.set_random_seed(2)  # the layer's own seed wins over the global one
    np.testing.assert_array_equal(make(seed=9)(x, training=True), a)
    assert not np.array_equal(make(seed=10)(x, training=True), a)


def test_noise_does_not_depend_on_the_thread_count(restore_settings):
    def run(threads):
        fastconv.set_num_threads(threads)
        utils.set_random_seed(11)
        model = models.Sequential([
            layers.InputLayer(shape=(6, 6, 2)), layers.Conv2D(4, 3),
            layers.SpatialDropout2D(0.3), layers.GaussianNoise(0.2),
            layers.GaussianDropout(0.2), layers.AlphaDropout(0.2), layers.Flatten(),
            layers.Dense(2)])
        model.compile(optimizers.SGD(0.01), "mse")
        x, y = rand((8, 6, 6, 2), 3).astype(np.float32), rand((8, 2), 4).astype(np.float32)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(1), run(2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# configs, saving, cloning


CONFIG_CASES = [
    (lambda: layers.SpatialDropout1D(0.3, seed=1),
     {"rate": 0.3, "seed": 1}),
    (lambda: layers.SpatialDropout2D(0.25, data_format="channels_first"),
     {"rate": 0.25, "seed": None, "data_format": "channels_first"}),
    (lambda: layers.SpatialDropout3D(0.5, seed=2),
     {"rate": 0.5, "seed": 2, "data_format": "channels_last"}),
    (lambda: layers.GaussianNoise(0.1, seed=3), {"stddev": 0.1, "seed": 3}),
    (lambda: layers.GaussianDropout(0.2), {"rate": 0.2, "seed": None}),
    (lambda: layers.AlphaDropout(0.2, noise_shape=(None, 1), seed=4),
     {"rate": 0.2, "seed": 4, "noise_shape": [None, 1]}),
    (lambda: layers.ActivityRegularization(l1=0.01, l2=0.02), {"l1": 0.01, "l2": 0.02}),
]


@pytest.mark.parametrize("make, expected", CONFIG_CASES)
def test_config_follows_keras_and_round_trips(make, expected):
    layer = make()
    config = json.loads(json.dumps(layer.get_config()))
    for key, value in expected.items():
        assert config[key] == value
    extra = set(config) - set(expected) - {"name", "trainable", "dtype"}
    assert not extra, extra  # no noise_shape for the spatial ones, no activity_regularizer
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = rand((4, 3, 3, 2)) if "Spatial" in type(layer).__name__ else rand((4, 6))
    if isinstance(layer, layers.SpatialDropout1D):
        x = rand((4, 3, 2))
    if isinstance(layer, layers.SpatialDropout3D):
        x = rand((4, 2, 3, 3, 2))
    if layer.get_config().get("seed") is not None:  # the same seed gives the same noise
        np.testing.assert_array_equal(clone(x, training=True), make()(x, training=True))


def small_model():
    inputs = fastconv.Input((6, 6, 2))
    h = layers.Conv2D(3, 3, activation="selu")(inputs)
    h = layers.SpatialDropout2D(0.3, seed=1)(h)
    h = layers.GaussianNoise(0.1)(h)
    h = layers.Reshape((16, 3))(h)
    h = layers.SpatialDropout1D(0.2)(h)
    h = layers.Flatten()(h)
    h = layers.GaussianDropout(0.1, seed=2)(h)
    h = layers.AlphaDropout(0.1)(h)
    h = layers.ActivityRegularization(l1=0.001)(h)
    v = layers.SpatialDropout3D(0.2, data_format="channels_first")(
        layers.Reshape((2, 3, 3, 4))(inputs))
    h = layers.Concatenate()([h, layers.Flatten()(v)])
    return fastconv.Model(inputs, layers.Dense(2)(h))


def test_save_and_load_round_trip(tmp_path):
    model = small_model()
    model.compile("adam", "mse")
    x = rand((3, 6, 6, 2)).astype(np.float32)
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # the penalty comes back too
    y = np.zeros((3, 2), np.float32)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0),
                                                              rel=1e-6)


def test_clone_model_keeps_the_layers_and_their_arguments():
    model = small_model()
    clone = models.clone_model(model)
    assert clone.get_config() == model.get_config()
    assert [type(a) for a in clone.layers] == [type(b) for b in model.layers]


# ----------------------------------------------------------------------------
# ActivityRegularization


def test_activity_regularization_adds_its_penalty_to_the_loss_and_fit_reports_it():
    # Dense with kernel all ones: each output is the sum of the inputs' row.
    x = np.array([[1.0, 2.0], [-3.0, 0.5], [0.25, 0.25]])
    y = np.array([[1.0], [0.0], [2.0]])
    model = models.Sequential([
        layers.InputLayer(shape=(2,), dtype=F64),
        layers.Dense(1, kernel_initializer="ones", use_bias=False, dtype=F64),
        layers.ActivityRegularization(l1=0.1, l2=0.2, dtype=F64)])
    model.compile(optimizers.SGD(learning_rate=0.01), "mse")
    out = np.array([3.0, -2.5, 0.5])
    mse = np.mean((out - y[:, 0]) ** 2)
    # Keras 3: l1 * sum|a| + l2 * sum(a^2) over the batch, divided by its size
    penalty = (0.1 * (3.0 + 2.5 + 0.5) + 0.2 * (9.0 + 6.25 + 0.25)) / 3
    np.testing.assert_allclose(model.predict(x, verbose=0)[:, 0], out)  # identity
    assert model.evaluate(x, y, verbose=0) == pytest.approx(mse + penalty, rel=1e-12)
    # one batch: the loss fit reports is that of the weights before the update
    history = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(mse + penalty, rel=1e-12)


def test_activity_regularization_gradient_is_the_penalty_gradient():
    # One SGD step of learning rate 1 on the kernel: dL/dW = x^T (dmse/da + dpen/da).
    x = np.array([[1.0, 2.0], [-3.0, 0.5]])
    y = np.array([[0.0], [0.0]])
    model = models.Sequential([
        layers.InputLayer(shape=(2,), dtype=F64),
        layers.Dense(1, kernel_initializer="ones", use_bias=False, dtype=F64),
        layers.ActivityRegularization(l1=0.5, l2=0.25, dtype=F64)])
    model.compile(optimizers.SGD(learning_rate=1.0), "mse")
    a = np.array([3.0, -2.5])
    da = 2 * a / 2 + (0.5 * np.sign(a) + 2 * 0.25 * a) / 2  # the penalty over batch 2
    expected = np.ones(2) - x.T @ da
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(model.get_weights()[0][:, 0], expected, rtol=1e-12)


def test_activity_regularization_in_a_nested_model_counts_in_the_loss():
    inner = models.Sequential([layers.InputLayer(shape=(2,)),
                               layers.ActivityRegularization(l2=1.0)])
    inputs = fastconv.Input((2,))
    model = fastconv.Model(inputs, inner(inputs))
    model.compile("sgd", "mse")
    x = np.ones((3, 2), np.float32)
    # mse 0 + sum(1^2) over 3 x 2, divided by the batch size 3
    assert model.evaluate(x, x, verbose=0) == pytest.approx(2.0)


def test_activity_regularization_defaults_add_nothing():
    layer = layers.ActivityRegularization()
    assert (layer.l1, layer.l2) == (0.0, 0.0)
    model = models.Sequential([layers.InputLayer(shape=(3,)), layer])
    model.compile("sgd", "mse")
    x = rand((4, 3)).astype(np.float32)
    assert model.evaluate(x, np.zeros((4, 3)), verbose=0) == pytest.approx(
        float(np.mean(x.astype(np.float64) ** 2)), rel=1e-5)


# ----------------------------------------------------------------------------
# a small CNN trains


def test_small_cnn_with_spatial_dropout_and_gaussian_noise_trains():
    utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8, 8, 1)).astype(np.float32)
    labels = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(int)
    model = models.Sequential([
        layers.InputLayer(shape=(8, 8, 1)), layers.GaussianNoise(0.05),
        layers.Conv2D(8, 3, activation="relu"), layers.SpatialDropout2D(0.2),
        layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, labels, batch_size=16, epochs=10, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert model.evaluate(x, labels, verbose=0)[1] > 0.8


# ----------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize("make, argument", [
    (lambda: layers.SpatialDropout1D(1.0), "rate"),
    (lambda: layers.SpatialDropout2D(-0.1), "rate"),
    (lambda: layers.SpatialDropout3D("0.5"), "rate"),
    (lambda: layers.SpatialDropout2D(0.5, data_format="nhwc"), "data_format"),
    (lambda: layers.SpatialDropout2D(0.5, seed=-1), "seed"),
    (lambda: layers.SpatialDropout2D(0.5, seed=1.5), "seed"),
    (lambda: layers.GaussianNoise(-0.5), "stddev"),
    (lambda: layers.GaussianNoise(1.5), "stddev"),
    (lambda: layers.GaussianNoise(None), "stddev"),
    (lambda: layers.GaussianNoise(float("nan")), "stddev"),
    (lambda: layers.GaussianNoise(0.1, seed="a"), "seed"),
    (lambda: layers.GaussianDropout(1.0), "rate"),
    (lambda: layers.GaussianDropout(True), "rate"),
    (lambda: layers.AlphaDropout(1.0), "rate"),
    (lambda: layers.AlphaDropout(0.5, noise_shape=(None, 0)), "noise_shape"),
    (lambda: layers.AlphaDropout(0.5, noise_shape="(1, 2)"), "noise_shape"),
    (lambda: layers.AlphaDropout(0.5, noise_shape=(2.0,)), "noise_shape"),
    (lambda: layers.ActivityRegularization(l1=-1.0), "l1"),
    (lambda: layers.ActivityRegularization(l2="big"), "l2"),
])
def test_bad_arguments_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


@pytest.mark.parametrize("make, argument", [
    (lambda: layers.SpatialDropout2D(0.5, noise_shape=(None, 1, 1, 2)), "noise_shape"),
    (lambda: layers.SpatialDropout1D(0.5, data_format="channels_first"), "data_format"),
    (lambda: layers.ActivityRegularization(activity_regularizer="l2"), "activity_regularizer"),
    (lambda: layers.GaussianNoise(0.1, bogus=1), "bogus"),
])
def test_arguments_keras_does_not_take_are_refused(make, argument):
    with pytest.raises(TypeError, match=argument):
        make()

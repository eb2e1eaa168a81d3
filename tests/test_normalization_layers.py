"""LayerNormalization, GroupNormalization and UnitNormalization: values by
hand and against PyTorch's layer_norm / group_norm, Keras' weights (gamma,
then beta), parameter counts and configs, float64 gradients of the inputs
and the weights against central differences, training vs inference, save /
load, clone and bad arguments."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from layer_helpers import F64, assert_gradients, check_input_gradient, rand

import fastconv
from fastconv import layers, models

RANDOM = {"gamma_initializer": "random_normal", "beta_initializer": "random_normal"}


def numpy_layer_norm(x, axes, gamma, beta, eps):
    """Keras' formula written out: (x - mean) / sqrt(var + eps) * gamma + beta."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


# ----------------------------------------------------------------------------
# LayerNormalization


def test_layer_norm_by_hand():
    # [1, 2, 3, 4]: mean 2.5, variance 1.25.
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    y = layers.LayerNormalization(epsilon=0.0, dtype=F64)(x)
    np.testing.assert_allclose(y, (x - 2.5) / math.sqrt(1.25), rtol=1e-14)
    # Keras' ops docstring: layer_normalization(arange(5)) with epsilon 1e-3.
    y = layers.LayerNormalization()(np.arange(5.0)[None])
    np.testing.assert_allclose(y[0], [-1.4142135, -0.70710677, 0.0, 0.7071067, 1.4142135],
                               rtol=1e-3)


@pytest.mark.parametrize("x_shape, axis, weight_shape", [
    ((3, 6), -1, (6,)),
    ((2, 5, 4), -1, (4,)),
    ((2, 4, 3, 5), -1, (5,)),
    ((2, 4, 3, 5), [1, 2, 3], (4, 3, 5)),
    ((2, 4, 3, 5), [-3, -1], (4, 5)),
    ((2, 5, 4), 1, (5,)),
])
def test_layer_norm_shapes_weights_and_values(x_shape, axis, weight_shape):
    layer = layers.LayerNormalization(axis=axis, **RANDOM, dtype=F64)
    assert layer.compute_output_shape((None, *x_shape[1:])) == (None, *x_shape[1:])
    x = rand(x_shape, 1) * 3 + 1
    y = layer(x)
    assert [w.name for w in layer.weights] == [f"{layer.name}/gamma", f"{layer.name}/beta"]
    assert [w.shape for w in layer.get_weights()] == [weight_shape, weight_shape]
    assert layer.count_params() == 2 * math.prod(weight_shape)
    axes = tuple(sorted(a % len(x_shape) for a in ([axis] if isinstance(axis, int) else axis)))
    shape = [x_shape[i] if i in axes else 1 for i in range(len(x_shape))]
    gamma, beta = (w.reshape(shape) for w in layer.get_weights())
    np.testing.assert_allclose(y, numpy_layer_norm(x, axes, gamma, beta, 1e-3), rtol=1e-12,
                               atol=1e-12)
    check_input_gradient(layers.LayerNormalization(axis=axis, **RANDOM, dtype=F64), x)


def test_layer_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x = rand((2, 4, 3, 5), 2)
    for axis, normalized in [(-1, (5,)), ([2, 3], (3, 5)), ([1, 2, 3], (4, 3, 5))]:
        layer = layers.LayerNormalization(axis=axis, epsilon=1e-5, **RANDOM, dtype=F64)
        y = layer(x)
        gamma, beta = layer.get_weights()
        xt = torch.tensor(x, requires_grad=True)
        gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
        yt = torch.nn.functional.layer_norm(xt, normalized, gt, bt, 1e-5)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
        dy = rand(x.shape, 3)
        yt.backward(torch.tensor(dy))
        _, ctx = layer.forward(x)
        for w in layer.weights:
            w.zero_grad()
        dx = layer.backward(ctx, dy)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.gamma.grad, gt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.beta.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("center, scale, names", [
    (True, False, ["beta"]), (False, True, ["gamma"]), (False, False, []),
])
def test_layer_norm_center_and_scale(center, scale, names):
    layer = layers.LayerNormalization(center=center, scale=scale, dtype=F64)
    x = rand((3, 4), 4)
    y = layer(x)
    assert [w.name.split("/")[-1] for w in layer.weights] == names
    np.testing.assert_allclose(y, numpy_layer_norm(x, -1, 1, 0, 1e-3), rtol=1e-12)
    check_input_gradient(layers.LayerNormalization(center=center, scale=scale, dtype=F64), x)


def test_layer_norm_rms_scaling_keeps_keras_deprecated_meaning():
    with pytest.warns(UserWarning, match="rms_scaling=True.*deprecated"):
        layer = layers.LayerNormalization(rms_scaling=True, gamma_initializer="random_normal",
                                          dtype=F64)
    x = rand((3, 5), 5) + 2
    y = layer(x)
    assert [w.name.split("/")[-1] for w in layer.weights] == ["gamma"]  # no beta
    (gamma,) = layer.get_weights()
    # Keras: x * rsqrt(var(x) + eps) * gamma, not centred.
    np.testing.assert_allclose(y, x / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * gamma,
                               rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_input_gradient(layers.LayerNormalization(rms_scaling=True,
                                                       gamma_initializer="random_normal",
                                                       dtype=F64), x)
        assert layer.get_config()["rms_scaling"] is True


def test_layer_norm_float32_and_unknown_sizes():
    layer = layers.LayerNormalization()
    model = models.Sequential([layers.Input((None, 4)), layer])
    x = rand((2, 7, 4), 6).astype(np.float32)
    y = model.predict(x, verbose=0)
    assert y.dtype == np.float32 and y.shape == (2, 7, 4)
    np.testing.assert_allclose(y, numpy_layer_norm(x.astype(F64), -1, 1, 0, 1e-3), atol=1e-5)
    with pytest.raises(ValueError, match="known sizes"):
        layers.LayerNormalization(axis=1)(fastconv.Input((None, 4)))


# ----------------------------------------------------------------------------
# GroupNormalization


def numpy_group_norm(x, groups, gamma, beta, eps):
    """Channels last: split C into groups, normalise each sample over (spatial, C / G)."""
    n, c = x.shape[0], x.shape[-1]
    g = x.reshape(n, -1, groups, c // groups)
    mean = g.mean(axis=(1, 3), keepdims=True)
    var = ((g - mean) ** 2).mean(axis=(1, 3), keepdims=True)
    return ((g - mean) / np.sqrt(var + eps)).reshape(x.shape) * gamma + beta


@pytest.mark.parametrize("x_shape, groups", [
    ((2, 6), 3), ((2, 6), 1), ((2, 5, 6), 2), ((2, 3, 4, 6), 3), ((2, 3, 4, 6), -1),
    ((1, 2, 3, 2, 4), 2),
])
def test_group_norm_shapes_weights_and_values(x_shape, groups):
    layer = layers.GroupNormalization(groups=groups, **RANDOM, dtype=F64)
    x = rand(x_shape, 7) * 2 - 1
    y = layer(x)
    c = x_shape[-1]
    assert [w.name for w in layer.weights] == [f"{layer.name}/gamma", f"{layer.name}/beta"]
    assert [w.shape for w in layer.get_weights()] == [(c,), (c,)]
    assert layer.count_params() == 2 * c
    gamma, beta = layer.get_weights()
    expected = numpy_group_norm(x, c if groups == -1 else groups, gamma, beta, 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    if groups == -1:
        assert layer.groups == c and layer.get_config()["groups"] == c  # as Keras
    check_input_gradient(layers.GroupNormalization(groups=groups, **RANDOM, dtype=F64), x)


@pytest.mark.parametrize("x_shape, groups", [((2, 6), 3), ((2, 5, 6), 2), ((2, 3, 4, 6), 3),
                                             ((2, 3, 4, 6), 6)])
def test_group_norm_matches_torch(x_shape, groups):
    torch = pytest.importorskip("torch")
    layer = layers.GroupNormalization(groups=groups, epsilon=1e-5, **RANDOM, dtype=F64)
    x = rand(x_shape, 8)
    y = layer(x)
    gamma, beta = layer.get_weights()
    # torch's group_norm is channels first.
    xt = torch.tensor(np.moveaxis(x, -1, 1).copy(), requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    yt = torch.nn.functional.group_norm(xt, groups, gt, bt, 1e-5)
    np.testing.assert_allclose(y, np.moveaxis(yt.detach().numpy(), 1, -1), rtol=1e-12,
                               atol=1e-12)
    dy = rand(x_shape, 9)
    yt.backward(torch.tensor(np.moveaxis(dy, -1, 1).copy()))
    _, ctx = layer.forward(x)
    for w in layer.weights:
        w.zero_grad()
    dx = layer.backward(ctx, dy)
    np.testing.assert_allclose(dx, np.moveaxis(xt.grad.numpy(), 1, -1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.gamma.grad, gt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.beta.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_group_norm_channels_first_axis():
    torch = pytest.importorskip("torch")
    layer = layers.GroupNormalization(groups=2, axis=1, **RANDOM, dtype=F64)
    x = rand((2, 4, 3, 5), 10)  # (N, C, H, W)
    y = layer(x)
    gamma, beta = layer.get_weights()
    yt = torch.nn.functional.group_norm(torch.tensor(x), 2, torch.tensor(gamma),
                                        torch.tensor(beta), 1e-3)
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-12, atol=1e-12)
    check_input_gradient(layers.GroupNormalization(groups=2, axis=1, **RANDOM, dtype=F64),
                         rand((2, 4, 2, 2), 11))


def test_group_norm_default_groups_and_center_scale():
    layer = layers.GroupNormalization()
    assert layer.groups == 32 and layer.axis == -1 and layer.epsilon == 1e-3
    layer(np.ones((1, 2, 64), np.float32))
    assert layer.count_params() == 128
    layer = layers.GroupNormalization(2, center=False, scale=False)
    x = rand((2, 4), 12)
    np.testing.assert_allclose(layer(x), numpy_group_norm(x, 2, 1, 0, 1e-3), rtol=1e-5,
                               atol=1e-6)
    assert layer.weights == []


# ----------------------------------------------------------------------------
# UnitNormalization


def test_unit_norm_by_hand():
    y = layers.UnitNormalization(dtype=F64)(np.array([[3.0, 4.0], [0.0, 0.0], [1e-14, 0.0]]))
    # A zero vector stays 0; below 1e-12 the norm is clamped to 1e-12.
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0], [0.01, 0.0]], rtol=1e-12)
    x = np.arange(6.0).reshape(2, 3)  # Keras' example: each row has norm 1
    np.testing.assert_allclose((layers.UnitNormalization()(x) ** 2).sum(-1), [1, 1], rtol=1e-6)
    y = layers.UnitNormalization(axis=[1, 2], dtype=F64)(np.ones((2, 2, 2)))
    np.testing.assert_allclose(y, np.full((2, 2, 2), 0.5), rtol=1e-14)
    assert layers.UnitNormalization().count_params() == 0


@pytest.mark.parametrize("x_shape, axis", [((3, 5), -1), ((2, 3, 4), 1), ((2, 3, 2, 4), [1, 3])])
def test_unit_norm_gradients(x_shape, axis):
    check_input_gradient(layers.UnitNormalization(axis=axis, dtype=F64), rand(x_shape, 13))


def test_unit_norm_gradient_where_the_norm_is_clamped():
    layer = layers.UnitNormalization(dtype=F64)
    x = np.array([[1e-14, -2e-14]])
    _, ctx = layer.forward(x)
    # y = x / 1e-12 there, so dy/dx = 1e12.
    np.testing.assert_allclose(layer.backward(ctx, np.array([[1.0, 2.0]])), [[1e12, 2e12]])


# ----------------------------------------------------------------------------
# every layer: models, training, configs, save / load, clone


@pytest.mark.parametrize("layer_list, x_shape", [
    ([layers.Dense(6, dtype=F64), layers.LayerNormalization(**RANDOM, dtype=F64),
      layers.Dense(2, dtype=F64)], (3, 4)),
    ([layers.Conv2D(4, 2, dtype=F64), layers.LayerNormalization(axis=[1, 2, 3], **RANDOM,
                                                                dtype=F64),
      layers.Flatten(dtype=F64), layers.Dense(2, dtype=F64)], (2, 3, 3, 2)),
    ([layers.Conv1D(4, 2, dtype=F64), layers.GroupNormalization(2, **RANDOM, dtype=F64),
      layers.Flatten(dtype=F64), layers.Dense(2, dtype=F64)], (2, 4, 3)),
    ([layers.Conv2D(6, 2, dtype=F64), layers.GroupNormalization(3, **RANDOM, dtype=F64),
      layers.UnitNormalization(axis=[1, 2], dtype=F64), layers.Flatten(dtype=F64),
      layers.Dense(2, dtype=F64)], (2, 3, 3, 1)),
])
def test_weight_gradients_through_the_layers(layer_list, x_shape):
    assert_gradients(layer_list, x_shape, (x_shape[0], 2))


CONFIG_CASES = [
    lambda: layers.LayerNormalization(axis=[1, 2], epsilon=1e-4, center=False,
                                      gamma_regularizer="l2", beta_constraint="non_neg",
                                      dtype=F64),
    lambda: layers.GroupNormalization(groups=2, epsilon=1e-5, gamma_initializer="he_normal",
                                      beta_regularizer="l1", dtype=F64),
    lambda: layers.UnitNormalization(axis=[1, -1], dtype=F64),
]


@pytest.mark.parametrize("make", CONFIG_CASES)
def test_config_round_trip_and_training_equals_inference(make):
    layer = make()
    x = rand((2, 3, 4), 14)
    y = layer(x)
    np.testing.assert_array_equal(layer(x, training=True), y)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone.ensure_built(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), y)


def test_configs_follow_keras():
    config = layers.LayerNormalization().get_config()
    assert {k: config[k] for k in ("axis", "epsilon", "center", "scale", "rms_scaling")} == {
        "axis": -1, "epsilon": 1e-3, "center": True, "scale": True, "rms_scaling": False}
    assert config["beta_initializer"]["class_name"] == "Zeros"
    assert config["gamma_initializer"]["class_name"] == "Ones"
    assert config["gamma_regularizer"] is None and config["beta_constraint"] is None
    layer = layers.LayerNormalization(axis=-1)
    layer(np.ones((1, 2, 3)))
    assert layer.get_config()["axis"] == [2]  # canonical once built, as Keras
    config = layers.GroupNormalization().get_config()
    assert config["groups"] == 32 and config["axis"] == -1 and config["epsilon"] == 1e-3
    assert layers.UnitNormalization(axis=(1, 2)).get_config()["axis"] == [1, 2]
    assert layers.LayerNormalization().name.startswith("layer_normalization")
    assert layers.GroupNormalization().name.startswith("group_normalization")


def test_layers_save_load_and_clone(tmp_path):
    model = models.Sequential([
        layers.Input((4, 4, 2)), layers.Conv2D(4, 3, padding="same"),
        layers.GroupNormalization(2), layers.LayerNormalization(axis=[1, 2, 3]),
        layers.UnitNormalization(axis=[1, 2]), layers.Flatten(), layers.Dense(3),
        layers.LayerNormalization(), layers.Dense(2)])
    model.compile("adam", "mse")
    x = rand((3, 4, 4, 2), 15).astype(np.float32)
    y = rand((3, 2), 16).astype(np.float32)
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    after = model.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))  # gamma, beta train
    # Keras' parameter counts: 2 C for GroupNormalization, 2 * 4 * 4 * 4 for the
    # LayerNormalization over (H, W, C), 64 * 3 + 3 for the Dense, 2 * 3 for the last one.
    assert [lay.count_params() for lay in model.layers] == [76, 8, 128, 0, 0, 195, 6, 8]
    prediction = model.predict(x, verbose=0)
    model.save(tmp_path / "norm.zip")
    loaded = models.load_model(tmp_path / "norm.zip")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), prediction)
    assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
    clone = models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), prediction)


@pytest.mark.parametrize("make, argument", [
    (lambda: layers.LayerNormalization(axis="1"), "axis"),
    (lambda: layers.LayerNormalization(axis=[1, 1])(fastconv.Input((3, 3))), "axis"),
    (lambda: layers.LayerNormalization(axis=0)(fastconv.Input((3,))), "axis"),
    (lambda: layers.LayerNormalization(axis=3)(fastconv.Input((3,))), "axis"),
    (lambda: layers.LayerNormalization(epsilon=-1), "epsilon"),
    (lambda: layers.LayerNormalization(center="yes"), "center"),
    (lambda: layers.LayerNormalization(gamma_initializer="nope"), "identifier|gamma"),
    (lambda: layers.GroupNormalization(groups=0), "groups"),
    (lambda: layers.GroupNormalization(groups=2.0), "groups"),
    (lambda: layers.GroupNormalization(groups=4)(fastconv.Input((6,))), "groups"),
    (lambda: layers.GroupNormalization(groups=8)(fastconv.Input((6,))), "groups"),
    (lambda: layers.GroupNormalization(axis=[1])(fastconv.Input((6,))), "axis"),
    (lambda: layers.GroupNormalization(2, axis=0)(fastconv.Input((6,))), "axis"),
    (lambda: layers.GroupNormalization(2)(fastconv.Input((3, None))), "known size"),
    (lambda: layers.UnitNormalization(axis=None), "axis"),
    (lambda: layers.UnitNormalization(axis=2)(fastconv.Input((3,))), "axis"),
])
def test_bad_arguments(make, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        make()


def test_unknown_keywords_are_rejected():
    for cls in (layers.LayerNormalization, layers.GroupNormalization, layers.UnitNormalization):
        with pytest.raises(TypeError, match="kernal_size"):
            cls(kernal_size=3)


# ----------------------------------------------------------------------------
# the ops: normalize, layer_normalization, rms_normalization


def test_normalization_ops_keras_examples():
    from fastconv import ops
    np.testing.assert_allclose(ops.layer_normalization(np.arange(5, dtype=np.float32)),
                               [-1.4142135, -0.70710677, 0.0, 0.7071067, 1.4142135], rtol=1e-6)
    np.testing.assert_allclose(ops.normalize(np.array([[1.0, 2, 3], [4, 5, 6]])),
                               [[0.26726124, 0.5345225, 0.8017837],
                                [0.45584232, 0.5698029, 0.68376344]], rtol=1e-7)
    np.testing.assert_allclose(ops.normalize(np.array([[3.0, -4.0]]), order=1), [[3 / 7, -4 / 7]])
    np.testing.assert_allclose(ops.rms_normalization(np.array([[3.0, 4.0]]), epsilon=0.0),
                               [[3 / math.sqrt(12.5), 4 / math.sqrt(12.5)]], rtol=1e-14)
    with pytest.raises(ValueError, match="`order`"):
        ops.normalize(np.ones(3), order=0)
    with pytest.raises(ValueError, match="`axis`"):
        ops.layer_normalization(np.ones((2, 3)), axis=2)


def test_normalization_ops_match_the_layers_and_differentiate():
    from fastconv import ops
    from fastconv.graph.executor import Plan
    from fastconv.graph.function import Function
    from fastconv.graph.node import KerasTensor
    x = rand((2, 3, 4), 17)
    layer = layers.LayerNormalization(axis=[1, 2], epsilon=1e-3, **RANDOM, dtype=F64)
    y = layer(x)
    gamma, beta = layer.get_weights()
    np.testing.assert_allclose(ops.layer_normalization(x, gamma, beta, axis=[1, 2],
                                                       epsilon=1e-3), y, rtol=1e-12)
    np.testing.assert_allclose(ops.normalize(x, axis=[1, 2], epsilon=1e-12),
                               layers.UnitNormalization(axis=[1, 2], dtype=F64)(x), rtol=1e-12)
    t = KerasTensor((None, 3, 4), "float64")
    out = (ops.layer_normalization(t, axis=-1) + ops.normalize(t, axis=1)
           + ops.rms_normalization(t, axis=[1, 2]))
    plan = Plan(Function([t], [out]))
    (value,), tape = plan.forward([x], training=True, record=True)
    dy = rand(value.shape, 18)
    (dx,) = plan.backward(tape, [dy], input_grads=True)

    def loss(v):
        return float(np.sum(dy * plan.forward([v], training=False)[0][0]))

    h = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (loss(up) - loss(down)) / (2 * h)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


def test_built_layers_take_other_sizes_on_the_axes_they_do_not_normalise():
    layer = layers.LayerNormalization(dtype=F64)
    layer(rand((2, 5, 4), 19))
    assert layer(rand((3, 7, 4), 20)).shape == (3, 7, 4)
    with pytest.raises(ValueError, match="incompatible"):
        layer(rand((2, 5, 3), 21))
    group = layers.GroupNormalization(2, dtype=F64)
    group(rand((2, 3, 3, 4), 22))
    assert group(rand((1, 5, 2, 4), 23)).shape == (1, 5, 2, 4)
    with pytest.raises(ValueError, match="incompatible"):
        group(rand((2, 3, 3, 6), 24))
    unit = layers.UnitNormalization(dtype=F64)
    unit(rand((2, 3), 25))
    assert unit(rand((2, 4, 5), 26)).shape == (2, 4, 5)

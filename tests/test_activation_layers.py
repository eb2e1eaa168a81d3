"""The activations inside layers (``Dense(activation="gelu")``, ``Conv2D``,
``Activation``), the activation ops inside a Keras-style ``call``, and the
activation layers LeakyReLU, PReLU, ELU, ReLU and Softmax: values by hand,
Keras' configs, weights and names, float64 gradients against central
differences, save / load and clone."""

from __future__ import annotations

import functools
import json
import math
import warnings

import numpy as np
import pytest
from layer_helpers import (
    F64,
    assert_gradients,
    check_input_gradient,
    naive_conv2d,
    rand,
)

import fastconv
from fastconv import activations as act
from fastconv import layers, models, ops
from fastconv.graph.executor import Plan
from fastconv.graph.function import Function
from fastconv.graph.node import KerasTensor

# Every activation a name selects, with inputs for a gradient check that
# stay clear of kinks (the pre-activations are random, so kinks are hit
# with probability ~0; threshold needs arguments and is tested by partial).
NAMES = ["celu", "elu", "exponential", "gelu", "hard_shrink", "hard_sigmoid", "hard_silu",
         "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
         "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
         "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
         "tanh_shrink"]


@pytest.mark.parametrize("name", NAMES)
def test_dense_with_each_activation_computes_and_trains(name):
    dense = layers.Dense(3, activation=name, bias_initializer="random_normal", dtype=F64)
    x = rand((4, 5), 1)
    y = dense(x)
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(y, getattr(act, name)(x @ kernel + bias), rtol=1e-12)
    assert dense.get_config()["activation"] == act.serialize(name)
    # The weights' gradients through the activation, against central differences.
    assert_gradients([layers.Dense(4, activation=name, bias_initializer="random_normal",
                                   dtype=F64), layers.Dense(2, dtype=F64)], (3, 5), (3, 2))


@pytest.mark.parametrize("name", ["selu", "gelu", "mish", "hard_silu", "elu", "leaky_relu"])
def test_conv2d_with_activation_by_name_and_by_function(name):
    x = rand((2, 5, 5, 2), 2)
    for identifier in (name, getattr(act, name)):
        conv = layers.Conv2D(3, 2, activation=identifier, bias_initializer="random_normal",
                             dtype=F64)
        y = conv(x)
        kernel, bias = conv.get_weights()
        np.testing.assert_allclose(y, getattr(act, name)(naive_conv2d(x, kernel, bias)),
                                   rtol=1e-11, atol=1e-12)
    assert_gradients([layers.Conv2D(2, 2, activation=name, dtype=F64), layers.Flatten(dtype=F64),
                      layers.Dense(2, dtype=F64)], (2, 4, 4, 1), (2, 2))


@pytest.mark.parametrize("identifier", ["mish", act.mish, "hard_swish", act.celu,
                                        functools.partial(act.leaky_relu, negative_slope=0.1)])
def test_activation_layer_by_name_function_or_partial(identifier):
    layer = layers.Activation(identifier, dtype=F64)
    x = rand((3, 4), 3)
    np.testing.assert_allclose(layer(x), act.get(identifier)(x), rtol=1e-15)
    check_input_gradient(layers.Activation(identifier, dtype=F64), x)


def test_activation_layer_glu_halves_the_axis():
    layer = layers.Activation("glu")
    assert layer.compute_output_shape((None, 6)) == (None, 3)
    model = models.Sequential([layers.Input((4, 6)), layers.Activation("glu"),
                               layers.Dense(2)])
    assert model.output_shape == (None, 4, 2)
    assert model.predict(np.ones((2, 4, 6), np.float32), verbose=0).shape == (2, 4, 2)
    check_input_gradient(layers.Activation("glu", dtype=F64), rand((2, 6), 4))
    with pytest.raises(ValueError, match="must be even"):
        layers.Activation("glu")(fastconv.Input((5,)))


def test_activation_names_round_trip_through_a_saved_model(tmp_path):
    model = models.Sequential([
        layers.Input((6, 6, 1)), layers.Conv2D(2, 3, activation="selu"),
        layers.Activation("mish"), layers.Flatten(), layers.Dense(4, activation="gelu"),
        layers.Activation("hard_swish"), layers.Dense(3, activation="log_softmax")])
    x = rand((2, 6, 6, 1), 5).astype(np.float32)
    prediction = model.predict(x, verbose=0)
    model.save(tmp_path / "acts.zip")
    loaded = models.load_model(tmp_path / "acts.zip")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), prediction)
    assert loaded.layers[4].get_config()["activation"] == "hard_silu"  # as Keras serializes
    clone = models.clone_model(model)
    assert [type(a) for a in clone.layers] == [type(b) for b in model.layers]


# ----------------------------------------------------------------------------
# the ops inside a Keras-style call

OPS = {
    "relu": ops.relu, "relu6": lambda x: ops.relu6(4 * x), "sigmoid": ops.sigmoid,
    "sparse_sigmoid": ops.sparse_sigmoid, "hard_sigmoid": ops.hard_sigmoid,
    "hard_silu": ops.hard_silu, "hard_swish": ops.hard_swish, "log_sigmoid": ops.log_sigmoid,
    "softmax": ops.softmax, "log_softmax": lambda x: ops.log_softmax(x, axis=1),
    "sparsemax": ops.sparsemax, "gelu": ops.gelu,
    "gelu_exact": lambda x: ops.gelu(x, approximate=False), "silu": ops.silu,
    "swish": ops.swish, "leaky_relu": ops.leaky_relu, "elu": lambda x: ops.elu(x, 0.7),
    "selu": ops.selu, "celu": lambda x: ops.celu(x, alpha=0.5), "glu": ops.glu,
    "softplus": ops.softplus, "softsign": ops.softsign, "squareplus": ops.squareplus,
    "soft_shrink": ops.soft_shrink, "hard_shrink": lambda x: ops.hard_shrink(x, 0.3),
    "tanh_shrink": ops.tanh_shrink, "hard_tanh": ops.hard_tanh, "sparse_plus": ops.sparse_plus,
    "threshold": lambda x: ops.threshold(x, 0.1, -1.0),
}
FUNCTIONS = {
    "relu": act.relu, "relu6": lambda x: act.relu6(4 * x), "sigmoid": act.sigmoid,
    "sparse_sigmoid": act.sparse_sigmoid, "hard_sigmoid": act.hard_sigmoid,
    "hard_silu": act.hard_silu, "hard_swish": act.hard_silu, "log_sigmoid": act.log_sigmoid,
    "softmax": act.softmax, "log_softmax": lambda x: act.log_softmax(x, axis=1),
    "sparsemax": act.sparsemax, "gelu": lambda x: act.gelu(x, approximate=True),
    "gelu_exact": act.gelu, "silu": act.silu, "swish": act.silu, "leaky_relu": act.leaky_relu,
    "elu": lambda x: act.elu(x, 0.7), "selu": act.selu, "celu": lambda x: act.celu(x, 0.5),
    "glu": act.glu, "softplus": act.softplus, "softsign": act.softsign,
    "squareplus": act.squareplus, "soft_shrink": act.soft_shrink,
    "hard_shrink": lambda x: act.hard_shrink(x, 0.3), "tanh_shrink": act.tanh_shrink,
    "hard_tanh": act.hard_tanh, "sparse_plus": act.sparse_plus,
    "threshold": lambda x: act.threshold(x, 0.1, -1.0),
}


def test_every_keras_activation_op_is_here():
    for name in ["celu", "elu", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
                 "hard_swish", "hard_tanh", "leaky_relu", "log_sigmoid", "log_softmax", "relu",
                 "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
                 "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus",
                 "swish", "tanh_shrink", "threshold"]:
        assert name in ops.__all__ and "Returns" in getattr(ops, name).__doc__


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_eager_symbolic_and_gradient(name):
    rng = np.random.default_rng(7)
    x = rng.uniform(-3.5, 3.5, (3, 4))
    # Keep the finite differences clear of every kink the ops have.
    for kink in (-3.0, -1.0, -0.5, -0.3, 0.0, 0.1, 0.3, 0.5, 1.0, 1.5, 3.0):
        x[np.abs(x - kink) < 0.02] = kink + 0.05
    np.testing.assert_allclose(OPS[name](x), FUNCTIONS[name](x), rtol=1e-13, atol=1e-15)
    t = KerasTensor((None, 4), "float64")
    y = OPS[name](t)
    plan = Plan(Function([t], [y]))
    (out,), tape = plan.forward([x], training=True, record=True)
    assert y.shape == (None, *out.shape[1:])
    np.testing.assert_allclose(out, FUNCTIONS[name](x), rtol=1e-13, atol=1e-15)
    dy = rng.standard_normal(out.shape)
    (dx,) = plan.backward(tape, [dy], input_grads=True)
    h = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = np.sum(dy * (FUNCTIONS[name](up) - FUNCTIONS[name](down))) / (2 * h)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


class GatedMish(layers.Layer):
    """A Keras-style layer: mish-like gating written with the ops."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 4), initializer="random_normal")

    def call(self, x):
        h = ops.matmul(x, self.w)
        return ops.celu(h, 0.5) + ops.hard_silu(h) + ops.glu(ops.concatenate([h, h], -1)) \
            + ops.squareplus(h) + ops.log_sigmoid(h) + ops.sparse_plus(h)


def test_ops_train_inside_a_custom_layer():
    assert_gradients([GatedMish(dtype=F64), layers.Dense(2, dtype=F64)], (3, 5), (3, 2))


@pytest.mark.parametrize("call, argument", [
    (lambda: ops.celu(np.ones(2), alpha=0), "alpha"),
    (lambda: ops.celu(np.ones(2), alpha="1"), "alpha"),
    (lambda: ops.squareplus(np.ones(2), b=-1), "b"),
    (lambda: ops.soft_shrink(np.ones(2), threshold=None), "threshold"),
    (lambda: ops.threshold(np.ones(2), 0.0, "zero"), "default_value"),
    (lambda: ops.glu(np.ones(2), axis=0.5), "axis"),
    (lambda: ops.sparsemax(np.ones(2), axis=None), "axis"),
])
def test_op_bad_arguments(call, argument):
    with pytest.raises((TypeError, ValueError), match=f"`{argument}`"):
        call()


def test_glu_op_on_an_odd_axis_is_refused():
    with pytest.raises(ValueError, match="glu.*even"):
        ops.glu(KerasTensor((None, 5), "float32"))


# ----------------------------------------------------------------------------
# LeakyReLU, ELU, ReLU, Softmax


def test_leaky_relu_layer():
    x = np.array([[-10, -5, 0.0, 5, 10]])
    np.testing.assert_allclose(layers.LeakyReLU(dtype=F64)(x), [[-3, -1.5, 0, 5, 10]])
    np.testing.assert_allclose(layers.LeakyReLU(negative_slope=0.5, dtype=F64)(x),
                               [[-5, -2.5, 0, 5, 10]])  # Keras' docstring example
    assert layers.LeakyReLU().name.startswith("leaky_re_lu")
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        layer = layers.LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and layer.get_config()["negative_slope"] == 0.1
    check_input_gradient(layers.LeakyReLU(0.2, dtype=F64), rand((3, 4), 1))


def test_elu_layer():
    x = np.array([[-2.0, -0.5, 0.0, 1.5]])
    expected = [[0.5 * math.expm1(-2.0), 0.5 * math.expm1(-0.5), 0.0, 1.5]]
    np.testing.assert_allclose(layers.ELU(alpha=0.5, dtype=F64)(x), expected, rtol=1e-14)
    np.testing.assert_allclose(layers.ELU(dtype=F64)(x)[0, 0], math.expm1(-2.0), rtol=1e-14)
    assert layers.ELU(0.5).get_config()["alpha"] == 0.5
    check_input_gradient(layers.ELU(0.7, dtype=F64), rand((3, 4), 2))


def test_relu_layer_keras_example_and_relu6():
    x = np.array([[-10, -5, 0.0, 5, 10]])
    y = layers.ReLU(max_value=10, negative_slope=0.5, threshold=0, dtype=F64)(x)
    np.testing.assert_allclose(y, [[-5, -2.5, 0, 5, 10]])  # Keras' docstring example
    np.testing.assert_allclose(layers.ReLU(max_value=6.0, dtype=F64)(np.array([[-1, 3, 7.0]])),
                               [[0, 3, 6]])
    assert layers.ReLU(6.0).get_config()["max_value"] == 6.0


@pytest.mark.parametrize("axis", [1, -2, [1, 2], (2,)])
def test_softmax_over_other_axes(axis):
    x = rand((2, 3, 4), 3)
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    e = np.exp(x)
    expected = e / e.sum(axis=axes, keepdims=True)
    layer = layers.Softmax(axis=axis, dtype=F64)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-13)
    assert layer.get_config()["axis"] == (list(axis) if isinstance(axis, (list, tuple)) else axis)
    check_input_gradient(layers.Softmax(axis=axis, dtype=F64), x)
    # Only the softmax over the last axis is the one the loss may fuse with.
    assert layer.activation is not act.get("softmax")
    assert layers.Softmax().activation is act.get("softmax")


def test_softmax_keras_example_and_mask_refused():
    y = layers.Softmax()(np.array([[1.0, 2.0, 1.0]]))
    np.testing.assert_allclose(y, [[0.21194157, 0.5761169, 0.21194157]], rtol=1e-6)
    with pytest.raises(ValueError, match="`mask`.*mask=None only"):
        layers.Softmax()(np.ones((1, 3)), mask=np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="axis 3 is out of bounds"):
        layers.Softmax(axis=3)(fastconv.Input((2, 3)))


def test_training_step_with_softmax_over_the_channel_axis():
    """Softmax(axis=1) at the output is not fused with the loss: its own backward runs."""
    model = models.Sequential([layers.Input((3, 2)), layers.Dense(2, dtype=F64),
                               layers.Softmax(axis=1, dtype=F64)])
    model.compile("sgd", "categorical_crossentropy")
    from fastconv.testing import check_gradients
    x = rand((2, 3, 2), 4)
    y = np.zeros((2, 3, 2))
    y[:, 0, :] = 1  # each column sums to 1 over axis 1
    assert check_gradients(model, x, y)


# ----------------------------------------------------------------------------
# PReLU


@pytest.mark.parametrize("x_shape, shared_axes, alpha_shape", [
    ((2, 5), None, (5,)),
    ((2, 4, 3), None, (4, 3)),
    ((2, 4, 3), 1, (1, 3)),
    ((2, 4, 4, 3), None, (4, 4, 3)),
    ((2, 4, 4, 3), [1, 2], (1, 1, 3)),
    ((2, 4, 4, 3), (1, 2, 3), (1, 1, 1)),
])
def test_prelu_alpha_shape_params_and_values(x_shape, shared_axes, alpha_shape):
    layer = layers.PReLU(alpha_initializer="random_normal", shared_axes=shared_axes, dtype=F64)
    x = rand(x_shape, 5)
    y = layer(x)
    assert [w.name for w in layer.weights] == [f"{layer.name}/alpha"]
    assert layer.alpha.shape == alpha_shape and layer.count_params() == math.prod(alpha_shape)
    alpha = layer.get_weights()[0]
    np.testing.assert_allclose(y, np.where(x > 0, x, alpha * x), rtol=1e-15)
    check_input_gradient(layers.PReLU(alpha_initializer="random_normal",
                                      shared_axes=shared_axes, dtype=F64), x)
    assert_gradients([layers.Dense(3, dtype=F64),
                      layers.PReLU(alpha_initializer="random_normal", shared_axes=shared_axes,
                                   dtype=F64),
                      layers.Flatten(dtype=F64), layers.Dense(2, dtype=F64)],
                     x_shape, (x_shape[0], 2))


def test_prelu_defaults_name_and_config():
    layer = layers.PReLU()
    assert layer.name.startswith("p_re_lu")
    layer(np.array([[-2.0, 3.0]]))
    np.testing.assert_array_equal(layer.get_weights()[0], [0.0, 0.0])  # "Zeros"
    np.testing.assert_array_equal(layer(np.array([[-2.0, 3.0]])), [[0.0, 3.0]])
    layer.set_weights([np.array([0.25, 0.5])])
    np.testing.assert_allclose(layer(np.array([[-2.0, -4.0]])), [[-0.5, -2.0]])
    config = layers.PReLU(alpha_regularizer="l2", alpha_constraint="non_neg",
                          shared_axes=[1, 2]).get_config()
    assert config["alpha_initializer"]["class_name"] == "Zeros"
    assert config["alpha_regularizer"]["class_name"] == "L2"
    assert config["alpha_constraint"]["class_name"] == "NonNeg"
    assert config["shared_axes"] == [1, 2]
    assert layers.PReLU(shared_axes=2).get_config()["shared_axes"] == [2]


def test_prelu_constraint_regularizer_and_trainable():
    model = models.Sequential([layers.Input((3,)), layers.Dense(3),
                               layers.PReLU(alpha_initializer="ones",
                                            alpha_constraint="non_neg",
                                            alpha_regularizer="l2")])
    model.compile("sgd", "mse")
    prelu = model.layers[1]
    assert model.count_params() == 12 + 3
    # A huge learning signal pushes alpha below 0; the constraint clips it.
    prelu.alpha.assign(np.full(3, 1e-3))
    model.fit(-np.ones((4, 3)), np.full((4, 3), 50.0), epochs=1, verbose=0)
    assert np.all(prelu.get_weights()[0] >= 0)
    prelu.trainable = False
    before = prelu.get_weights()[0].copy()
    model.compile("sgd", "mse")
    model.fit(-np.ones((4, 3)), np.ones((4, 3)), epochs=1, verbose=0)
    np.testing.assert_array_equal(prelu.get_weights()[0], before)


@pytest.mark.parametrize("make, argument", [
    (lambda: layers.LeakyReLU(-0.1), "negative_slope"),
    (lambda: layers.LeakyReLU(None), "negative_slope"),
    (lambda: layers.ELU("1"), "alpha"),
    (lambda: layers.ReLU(negative_slope=-1), "negative_slope"),
    (lambda: layers.Softmax(axis=[1, 1]), "axis"),
    (lambda: layers.Softmax(axis=None), "axis"),
    (lambda: layers.PReLU(shared_axes=[0]), "shared_axes"),
    (lambda: layers.PReLU(shared_axes="1"), "shared_axes"),
    (lambda: layers.PReLU(alpha_initializer="nope"), "identifier|alpha_initializer"),
    (lambda: layers.PReLU(shared_axes=3)(fastconv.Input((4, 2))), "shared_axes"),
    (lambda: layers.PReLU()(fastconv.Input((None, 2))), "needs known sizes"),
    (lambda: layers.Activation("threshold"), "activation"),
])
def test_bad_arguments(make, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        make()


def test_unknown_keywords_are_rejected():
    for cls in (layers.LeakyReLU, layers.PReLU, layers.ELU):
        with pytest.raises(TypeError, match="kernal_size"):
            cls(kernal_size=3)


# ----------------------------------------------------------------------------
# configs, save / load, clone, training vs inference

CONFIG_CASES = [
    lambda: layers.LeakyReLU(0.15, dtype=F64),
    lambda: layers.ELU(0.4, dtype=F64),
    lambda: layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.3, dtype=F64),
    lambda: layers.Softmax(axis=[1, 2], dtype=F64),
    lambda: layers.PReLU(alpha_initializer="random_normal", shared_axes=[1], dtype=F64),
    lambda: layers.Activation("squareplus", dtype=F64),
]


@pytest.mark.parametrize("make", CONFIG_CASES)
def test_config_round_trip_and_training_equals_inference(make):
    layer = make()
    x = rand((2, 3, 4), 6)
    y = layer(x)
    np.testing.assert_array_equal(layer(x, training=True), y)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone.ensure_built(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), y)


def test_layers_save_load_and_clone(tmp_path):
    inputs = fastconv.Input((5, 5, 2))
    h = layers.Conv2D(4, 3, padding="same")(inputs)
    h = layers.PReLU(alpha_initializer="random_normal", shared_axes=[1, 2])(h)
    h = layers.LeakyReLU(0.2)(h)
    h = layers.ELU(0.3)(h)
    h = layers.ReLU(max_value=3.0, negative_slope=0.1, threshold=0.1)(h)
    h = layers.Softmax(axis=[1, 2])(h)
    outputs = layers.Dense(2, activation="softmax")(layers.Flatten()(h))
    model = fastconv.Model(inputs, outputs)
    model.compile("adam", "categorical_crossentropy")
    x = rand((3, 5, 5, 2), 7).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 0]]
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before[2], model.get_weights()[2])  # alpha trained
    prediction = model.predict(x, verbose=0)
    model.save(tmp_path / "prelu.zip")
    loaded = models.load_model(tmp_path / "prelu.zip")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), prediction)
    assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
    clone = models.clone_model(model)
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), prediction)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.summary(print_fn=lambda *a, **k: None)


class WithActivationFunctions(layers.Layer):
    """Keras programs call keras.activations.* inside `call` too."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 4), initializer="random_normal")

    def call(self, x):
        h = ops.matmul(x, self.w)
        return (act.mish(h) + act.gelu(h) + act.relu(h, negative_slope=0.1, max_value=2.0)
                + act.selu(h) + act.log_softmax(h) + act.hard_silu(h)
                + act.threshold(h, threshold=-5.0, default_value=0.0))


def test_activation_functions_on_symbolic_tensors_record_differentiable_ops():
    t = fastconv.Input((4,))
    y = act.gelu(t)
    assert isinstance(y, KerasTensor) and y.shape == (None, 4)
    # gelu keeps the activation's default (exact), not the op's (tanh form).
    x = rand((2, 4), 8)
    plan = Plan(Function([t], [y]))
    (out,), _ = plan.forward([x.astype(np.float32)], training=False, record=False)
    np.testing.assert_allclose(out, act.gelu(x.astype(np.float32)), rtol=1e-6)
    assert act.glu(fastconv.Input((6,))).shape == (None, 3)
    assert_gradients([WithActivationFunctions(dtype=F64), layers.Dense(2, dtype=F64)],
                     (3, 5), (3, 2))


@pytest.mark.parametrize("make", [
    lambda a: layers.Dense(4, activation=a), lambda a: layers.Conv2D(4, 2, activation=a),
    lambda a: layers.Conv1DTranspose(4, 2, activation=a),
    lambda a: layers.SeparableConv2D(4, 2, activation=a),
    lambda a: layers.DepthwiseConv2D(2, activation=a),
])
def test_glu_in_a_layer_with_a_kernel_is_refused(make):
    for identifier in ("glu", act.glu, functools.partial(act.glu, axis=1)):
        with pytest.raises(ValueError, match="`activation`.*layers.Activation\\('glu'\\)"):
            make(identifier)


def test_built_activation_layers_take_other_shapes_and_prelu_keeps_its_spec():
    leaky = layers.LeakyReLU()
    leaky(np.ones((2, 3)))
    assert leaky(np.ones((4, 5, 6))).shape == (4, 5, 6)
    prelu = layers.PReLU(shared_axes=[1, 2])
    prelu(np.ones((2, 4, 4, 3)))
    assert prelu(np.ones((1, 8, 6, 3))).shape == (1, 8, 6, 3)  # shared axes may change
    with pytest.raises(ValueError, match="incompatible"):
        prelu(np.ones((1, 4, 4, 2)))
    with pytest.raises(ValueError, match="incompatible"):
        prelu(np.ones((2, 4, 3)))

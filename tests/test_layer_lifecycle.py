"""Layers: Dropout, constraints and regularization, argument checking,
configs, automatic names and symbolic calls."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import fastconv
from fastconv import backend, constraints, layers, models, regularizers, utils
from layer_helpers import F64, naive_conv2d, rand


# ----------------------------------------------------------------------------
# Dropout


def test_dropout_is_identity_at_inference():
    x = rand((50, 20))
    layer = layers.Dropout(0.5)
    np.testing.assert_array_equal(layer(x), x.astype(np.float32))
    np.testing.assert_array_equal(layer(x, training=False), x.astype(np.float32))
    np.testing.assert_array_equal(layers.Dropout(0.0)(x, training=True), x.astype(np.float32))


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.8])
def test_dropout_training_keeps_about_one_minus_rate_and_rescales(rate):
    utils.set_random_seed(123)
    x = np.abs(rand((200, 500))) + 0.5  # no zeros among the inputs
    y = layers.Dropout(rate, dtype=F64)(x, training=True)
    kept = y != 0
    n = kept.size
    # binomial: 5 standard deviations
    assert abs(kept.mean() - (1 - rate)) < 5 * math.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-12)
    # the expectation is kept
    assert abs(y.mean() - x.mean()) < 0.02 * x.mean()


def test_dropout_backward_uses_the_forward_mask():
    layer = layers.Dropout(0.5, dtype=F64)
    x = np.ones((10, 10))
    y, mask = layer.forward(x, training=True)
    dx = layer.backward(mask, np.full_like(x, 3.0))
    np.testing.assert_array_equal(dx, 3.0 * y)


def test_dropout_noise_shape_shares_the_mask():
    utils.set_random_seed(0)
    y = layers.Dropout(0.5, noise_shape=(None, 1, 4), dtype=F64)(np.ones((8, 5, 4)),
                                                                  training=True)
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    assert set(np.unique(y)) == {0.0, 2.0}


def test_dropout_is_reproducible_with_set_random_seed():
    x = np.ones((20, 30))
    layer = layers.Dropout(0.5)
    utils.set_random_seed(42)
    a = layer(x, training=True)
    b = layer(x, training=True)
    utils.set_random_seed(42)
    np.testing.assert_array_equal(layer(x, training=True), a)
    np.testing.assert_array_equal(layer(x, training=True), b)
    assert not np.array_equal(a, b)
    utils.set_random_seed(43)
    assert not np.array_equal(layer(x, training=True), a)


def test_dropout_with_seed_is_reproducible_across_instances():
    x = np.ones((20, 30))
    a = layers.Dropout(0.5, seed=5)(x, training=True)
    utils.set_random_seed(99)  # the layer's own seed wins over the global one
    np.testing.assert_array_equal(layers.Dropout(0.5, seed=5)(x, training=True), a)
    assert not np.array_equal(layers.Dropout(0.5, seed=6)(x, training=True), a)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", None, True])
def test_dropout_rate_validation(rate):
    with pytest.raises((ValueError, TypeError), match="`rate`"):
        layers.Dropout(rate)


# ----------------------------------------------------------------------------
# constraints and regularization of the weights


def test_non_neg_constraint_clips_after_apply_constraints():
    dense = layers.Dense(2, kernel_constraint="non_neg", bias_constraint=constraints.NonNeg())
    dense.ensure_built((None, 2))
    dense.set_weights([np.array([[1.0, -2.0], [-0.5, 3.0]]), np.array([-1.0, 1.0])])
    np.testing.assert_array_equal(dense.get_weights()[0], [[1, -2], [-0.5, 3]])  # not yet
    dense.apply_constraints()
    kernel, bias = dense.get_weights()
    np.testing.assert_array_equal(kernel, [[1, 0], [0, 3]])
    np.testing.assert_array_equal(bias, [0, 1])


def test_max_norm_constraint_on_conv_kernel():
    conv = layers.Conv2D(3, 2, kernel_constraint=constraints.MaxNorm(1.0, axis=[0, 1, 2]),
                         dtype=F64)
    conv.ensure_built((None, 4, 4, 2))
    # filter 0 has norm 4 (eight entries of 1.414...), filter 1 norm 0.5, filter 2 norm 2
    kernel = np.zeros((2, 2, 2, 3))
    kernel[..., 0] = math.sqrt(2)
    kernel[0, 0, 0, 1] = 0.5
    kernel[1, 1, 1, 2] = -2.0
    conv.set_weights([kernel, np.zeros(3)])
    conv.apply_constraints()
    got = conv.get_weights()[0]
    norms = np.sqrt((got ** 2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(norms, [1.0, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(got[..., 0], math.sqrt(2) / 4, rtol=1e-6)
    np.testing.assert_allclose(got[1, 1, 1, 2], -1.0, rtol=1e-6)


def test_constraints_are_applied_after_a_training_step():
    model = models.Sequential([layers.Dense(3, kernel_constraint="non_neg",
                                            kernel_initializer="ones", input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    model.train_on_batch(np.ones((4, 2)), np.full((4, 3), -1000.0))  # pushes weights below 0
    assert model.layers[0].get_weights()[0].min() == 0.0


def test_weight_regularization_loss_and_gradient():
    conv = layers.Conv2D(2, 2, kernel_regularizer=regularizers.L2(0.1),
                         bias_regularizer=regularizers.L1(0.5), dtype=F64)
    conv.ensure_built((None, 3, 3, 1))
    w, b = rand((2, 2, 1, 2)), np.array([1.5, -2.0])
    conv.set_weights([w, b])
    assert conv.regularization_loss() == pytest.approx(0.1 * np.sum(w ** 2) + 0.5 * 3.5)
    conv.kernel.grad[...] = 0
    conv.bias.grad[...] = 0
    conv.add_regularization_gradients()
    np.testing.assert_allclose(conv.kernel.grad, 0.2 * w)
    np.testing.assert_allclose(conv.bias.grad, [0.5, -0.5])
    assert layers.Dense(2).regularization_loss() == 0.0


# ----------------------------------------------------------------------------
# argument validation


@pytest.mark.parametrize("make, argument", [
    (lambda: layers.Conv2D(0, 3), "filters"),
    (lambda: layers.Conv2D(-2, 3), "filters"),
    (lambda: layers.Conv2D(2.5, 3), "filters"),
    (lambda: layers.Conv2D("8", 3), "filters"),
    (lambda: layers.Conv2D(True, 3), "filters"),
    (lambda: layers.Conv2D(8, 0), "kernel_size"),
    (lambda: layers.Conv2D(8, (3, 0)), "kernel_size"),
    (lambda: layers.Conv2D(8, (3, 3, 3)), "kernel_size"),
    (lambda: layers.Conv2D(8, 2.0), "kernel_size"),
    (lambda: layers.Conv2D(8, "3"), "kernel_size"),
    (lambda: layers.Conv2D(8, 3, strides=0), "strides"),
    (lambda: layers.Conv2D(8, 3, strides=(1, -1)), "strides"),
    (lambda: layers.Conv2D(8, 3, padding="full"), "padding"),
    (lambda: layers.Conv2D(8, 3, padding="causal"), "padding"),
    (lambda: layers.Conv2D(8, 3, padding=1), "padding"),
    (lambda: layers.Conv2D(8, 3, data_format="NHWC"), "data_format"),
    (lambda: layers.Conv2D(8, 3, dilation_rate=0), "dilation_rate"),
    (lambda: layers.Conv2D(8, 3, activation="relux"), "activation"),
    (lambda: layers.Conv2D(8, 3, activation=3), "activation"),
    (lambda: layers.Conv2D(8, 3, groups=3), "groups"),
    (lambda: layers.MaxPooling2D(0), "pool_size"),
    (lambda: layers.MaxPooling2D((2, 2, 2)), "pool_size"),
    (lambda: layers.MaxPooling2D(2, strides=0), "strides"),
    (lambda: layers.AveragePooling2D(2, padding="full"), "padding"),
    (lambda: layers.AveragePooling2D(2, data_format="channels_middle"), "data_format"),
    (lambda: layers.Dense(0), "units"),
    (lambda: layers.Dense(2.0), "units"),
    (lambda: layers.Dense(None), "units"),
    (lambda: layers.Dense(4, activation="nope"), "activation"),
    (lambda: layers.Activation("nope"), "activation"),
    (lambda: layers.Activation(42), "activation"),
    (lambda: layers.Dropout(1.2), "rate"),
    (lambda: layers.Flatten(data_format="nchw"), "data_format"),
    (lambda: layers.Reshape((0, 4)), "target_shape"),
    (lambda: layers.Reshape((-1, -1)), "target_shape"),
    (lambda: layers.Reshape(4), "target_shape"),
    (lambda: layers.Reshape((True, 4)), "target_shape"),
    (lambda: layers.ReLU(max_value=-1.0), "max_value"),
    (lambda: layers.ReLU(negative_slope=-0.1), "negative_slope"),
    (lambda: layers.ReLU(negative_slope=None), "negative_slope"),
    (lambda: layers.ReLU(threshold=-0.5), "threshold"),
    (lambda: layers.ReLU(max_value="6"), "max_value"),
    (lambda: layers.Softmax(axis="1"), "axis"),
    (lambda: layers.Dense(2, dtype="float16"), "dtype"),
    (lambda: layers.Dense(2, name=""), "name"),
    (lambda: layers.Dense(2, input_shape=(0,)), "input_shape"),
    (lambda: layers.Dense(2, kernel_initializer="nope"), "identifier|kernel_initializer"),
    (lambda: layers.Conv2D(2, 3, kernel_regularizer="nope"), "identifier|kernel_regularizer"),
    (lambda: layers.Conv2D(2, 3, bias_constraint="nope"), "identifier|bias_constraint"),
    (lambda: fastconv.Input(shape=(28, 0, 1)), "shape"),
    (lambda: fastconv.Input(shape="28"), "shape"),
    (lambda: fastconv.Input(batch_shape=(None, -3)), "batch_shape"),
    (lambda: fastconv.Input(shape=(3,), batch_size=0), "batch_size"),
    (lambda: fastconv.Input(), "shape"),
])
def test_bad_arguments_name_the_argument(make, argument):
    with pytest.raises((ValueError, TypeError), match=f"`({argument})`"):
        make()


@pytest.mark.parametrize("cls, args", [
    (layers.Conv2D, (2, 3)), (layers.MaxPooling2D, ()), (layers.AveragePooling2D, ()),
    (layers.Dense, (2,)), (layers.Flatten, ()), (layers.Dropout, (0.5,)),
    (layers.Activation, ("relu",)), (layers.ReLU, ()), (layers.Softmax, ()),
    (layers.Reshape, ((2, 2),)), (layers.InputLayer, ((2,),)),
])
def test_unknown_keyword_arguments_raise_type_error(cls, args):
    with pytest.raises(TypeError, match="kernal_size"):
        cls(*args, kernal_size=3)


def test_wrong_input_rank_or_shape_is_rejected():
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        layers.Conv2D(2, 3)(np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.MaxPooling2D()(fastconv.Input(shape=(5, 5)))
    dense = layers.Dense(2)
    dense(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="incompatible"):
        dense(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="incompatible"):
        dense(fastconv.Input(shape=(4,)))


def test_failed_shape_check_leaves_layer_unbuilt():
    conv = layers.Conv2D(2, 5)
    with pytest.raises(ValueError, match="smaller than"):
        conv(fastconv.Input(shape=(3, 3, 1)))
    assert not conv.built and conv.weights == []
    assert conv(fastconv.Input(shape=(6, 6, 1))).shape == (None, 2, 2, 2)


# ----------------------------------------------------------------------------
# get_config / from_config


CONFIG_CASES = [
    (lambda: layers.Conv2D(4, (3, 2), strides=(2, 1), padding="same", dilation_rate=(1, 1),
                           activation="tanh", kernel_regularizer=regularizers.L2(0.01),
                           bias_regularizer="l1", activity_regularizer=regularizers.L1(0.001),
                           kernel_constraint=constraints.MaxNorm(2.0, axis=[0, 1, 2]),
                           bias_constraint="non_neg", dtype=F64), (2, 7, 6, 3)),
    (lambda: layers.Conv2D(3, 2, data_format="channels_first", dilation_rate=2, use_bias=False,
                           activation="softplus", kernel_initializer="he_normal", dtype=F64),
     (2, 2, 6, 6)),
    (lambda: layers.MaxPooling2D((3, 2), strides=(1, 2), padding="same", dtype=F64),
     (2, 5, 6, 2)),
    (lambda: layers.AveragePooling2D(2, data_format="channels_first", dtype=F64), (2, 2, 5, 4)),
    (lambda: layers.Dense(3, activation="sigmoid", bias_initializer="ones",
                          kernel_regularizer=regularizers.L1L2(0.1, 0.2),
                          kernel_constraint="non_neg", input_shape=(5,), dtype=F64), (2, 5)),
    (lambda: layers.Dense(3, use_bias=False, trainable=False, dtype=F64), (2, 4, 5)),
    (lambda: layers.Flatten(data_format="channels_first", dtype=F64), (2, 3, 2, 2)),
    (lambda: layers.Dropout(0.25, noise_shape=(None, 1), seed=3, dtype=F64), (4, 6)),
    (lambda: layers.Activation("softplus", dtype=F64), (2, 3)),
    (lambda: layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2, dtype=F64), (2, 5)),
    (lambda: layers.Softmax(dtype=F64), (2, 5)),
    (lambda: layers.Reshape((2, -1), dtype=F64), (2, 6)),
    (lambda: layers.InputLayer(shape=(6,), dtype=F64), (2, 6)),
]


@pytest.mark.parametrize("make, x_shape", CONFIG_CASES)
def test_config_round_trip(make, x_shape):
    layer = make()
    x = rand(x_shape, 11)
    y = layer(x)
    text = json.dumps(layer.get_config())  # JSON-serializable
    config = json.loads(text)
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer) and clone.name == layer.name
    assert clone.get_config() == config
    clone.ensure_built(x.shape)
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in layer.get_weights()]
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), y)
    if isinstance(layer, layers.Dropout):  # the same seed gives the same mask
        np.testing.assert_array_equal(make()(x, training=True), clone(x, training=True))


def test_config_contents_follow_keras():
    config = layers.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)).get_config()
    assert config["filters"] == 32 and config["kernel_size"] == [3, 3]
    assert config["strides"] == [1, 1] and config["padding"] == "valid"
    assert config["data_format"] == "channels_last" and config["dilation_rate"] == [1, 1]
    assert config["activation"] == "relu" and config["use_bias"] is True
    assert config["batch_input_shape"] == [None, 28, 28, 1]
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert config["bias_initializer"]["class_name"] == "Zeros"
    config = layers.Dense(10, activation="softmax").get_config()
    assert config["units"] == 10 and config["activation"] == "softmax"
    assert layers.MaxPooling2D(2).get_config()["strides"] == [2, 2]
    assert layers.Dropout(0.3).get_config()["rate"] == 0.3
    config = layers.Conv2D(2, 2, activity_regularizer=regularizers.L2(0.5)).get_config()
    assert config["activity_regularizer"] == {"class_name": "L2", "config": {"l2": 0.5}}


# ----------------------------------------------------------------------------
# automatic names


def test_automatic_names_follow_keras():
    backend.clear_session()
    names = [layers.Conv2D(2, 3).name, layers.Conv2D(2, 3).name, layers.MaxPooling2D().name,
             layers.Conv2D(2, 3).name, layers.MaxPool2D().name, layers.AveragePooling2D().name,
             layers.Dense(2).name, layers.Dense(2).name, layers.Flatten().name,
             layers.Dropout(0.1).name, layers.Activation("relu").name, layers.ReLU().name,
             layers.Softmax().name, layers.Reshape((2,)).name, layers.InputLayer((2,)).name]
    assert names == ["conv2d", "conv2d_1", "max_pooling2d", "conv2d_2", "max_pooling2d_1",
                     "average_pooling2d", "dense", "dense_1", "flatten", "dropout", "activation",
                     "re_lu", "softmax", "reshape", "input_layer"]
    assert layers.Dense(2, name="head").name == "head"
    backend.clear_session()
    assert layers.Conv2D(2, 3).name == "conv2d"
    assert layers.Dense(2).name == "dense"


def test_weight_names_carry_the_layer_name():
    conv = layers.Conv2D(2, 3, name="first")
    conv.ensure_built((None, 5, 5, 1))
    assert [w.name for w in conv.weights] == ["first/kernel", "first/bias"]


# ----------------------------------------------------------------------------
# symbolic calls on KerasTensors


def test_calling_on_keras_tensor_sets_output():
    inputs = fastconv.Input(shape=(28, 28, 1))
    assert isinstance(inputs, layers.KerasTensor) and inputs.shape == (None, 28, 28, 1)
    conv = layers.Conv2D(32, 3, activation="relu")
    out = conv(inputs)
    assert isinstance(out, layers.KerasTensor)
    assert out.shape == (None, 26, 26, 32)
    assert conv.output is out and conv.input is inputs
    assert conv.built and conv.count_params() == 320
    shapes = []
    t = out
    for layer in [layers.MaxPooling2D(2), layers.Dropout(0.2), layers.Flatten(),
                  layers.Dense(16), layers.ReLU(), layers.Activation("tanh"),
                  layers.Reshape((4, 4)), layers.Softmax()]:
        t = layer(t)
        assert isinstance(t, layers.KerasTensor) and layer.output is t
        shapes.append(t.shape)
    assert shapes == [(None, 13, 13, 32), (None, 13, 13, 32), (None, 5408), (None, 16),
                      (None, 16), (None, 16), (None, 4, 4), (None, 4, 4)]


def test_keras_tensor_channels_first_and_fixed_batch():
    inputs = fastconv.Input(shape=(3, 10, 8), batch_size=5)
    out = layers.Conv2D(4, 3, strides=2, padding="same", data_format="channels_first")(inputs)
    assert out.shape == (5, 4, 5, 4)
    out = layers.AveragePooling2D(2, data_format="channels_first")(out)
    assert out.shape == (5, 4, 2, 2)


def test_feature_map_model_from_layer_output():
    """Seed 002: Model(inputs=model.inputs, outputs=model.layers[0].output)."""
    model = models.Sequential([layers.Conv2D(2, 3, input_shape=(6, 6, 1), dtype=F64),
                               layers.Flatten(dtype=F64), layers.Dense(3, dtype=F64)])
    assert model.layers[0].output.shape == (None, 4, 4, 2)
    features = models.Model(inputs=model.inputs, outputs=model.layers[0].output)
    x = rand((2, 6, 6, 1))
    w, b = model.layers[0].get_weights()
    np.testing.assert_allclose(features.predict(x, verbose=0), naive_conv2d(x, w, b),
                               rtol=1e-12, atol=1e-12)


def test_a_layer_written_with_call_takes_new_input_shapes():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.s = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.s

    layer = Scale()
    layer(np.ones((2, 5, 5, 3), np.float32))
    out = layer(np.full((1, 2, 3), 2.0, np.float32))
    np.testing.assert_array_equal(out, np.full((1, 2, 3), 2.0))
    with pytest.raises(ValueError):
        layer(np.ones((1, 4), np.float32))  # 4 channels against a weight of 3

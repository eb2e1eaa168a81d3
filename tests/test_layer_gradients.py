"""Layers: input gradients and whole-model gradient checks against central
differences, for every layer type."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv
from fastconv import layers, regularizers
from fastconv.testing import check_gradients
from layer_helpers import F64, assert_gradients, check_input_gradient, gradient_model, rand


# ----------------------------------------------------------------------------
# gradients with respect to the inputs (every layer, central differences)


@pytest.mark.parametrize("make, x_shape", [
    (lambda: layers.Conv2D(3, (3, 2), activation="tanh", dtype=F64), (2, 5, 5, 2)),
    (lambda: layers.Conv2D(2, 3, strides=2, padding="same", dtype=F64), (1, 6, 5, 2)),
    (lambda: layers.Conv2D(2, 2, dilation_rate=2, padding="same", dtype=F64), (1, 5, 5, 2)),
    (lambda: layers.Conv2D(2, 3, data_format="channels_first", activation="sigmoid",
                           dtype=F64), (2, 2, 5, 4)),
    (lambda: layers.MaxPooling2D(2, dtype=F64), (2, 4, 5, 2)),
    (lambda: layers.MaxPooling2D(3, strides=1, padding="same", dtype=F64), (1, 4, 4, 2)),
    (lambda: layers.MaxPooling2D(2, data_format="channels_first", dtype=F64), (1, 2, 4, 4)),
    (lambda: layers.AveragePooling2D(3, strides=2, padding="same", dtype=F64), (1, 5, 5, 2)),
    (lambda: layers.AveragePooling2D(2, data_format="channels_first", dtype=F64), (1, 2, 4, 5)),
    (lambda: layers.Dense(3, activation="softplus", dtype=F64), (2, 4)),
    (lambda: layers.Dense(3, dtype=F64), (2, 3, 4)),
    (lambda: layers.Flatten(dtype=F64), (2, 3, 2, 2)),
    (lambda: layers.Flatten(data_format="channels_first", dtype=F64), (2, 3, 2, 2)),
    (lambda: layers.Reshape((2, -1), dtype=F64), (2, 3, 4)),
    (lambda: layers.Dropout(0.4, seed=1, dtype=F64), (3, 6)),
    (lambda: layers.Activation("sigmoid", dtype=F64), (2, 5)),
    (lambda: layers.Activation("softmax", dtype=F64), (2, 5)),
    (lambda: layers.Softmax(dtype=F64), (3, 4)),
    (lambda: layers.ReLU(dtype=F64), (3, 5)),
    (lambda: layers.ReLU(max_value=0.7, negative_slope=0.2, threshold=0.1, dtype=F64), (4, 5)),
])
def test_input_gradient(make, x_shape):
    check_input_gradient(make(), rand(x_shape, 9))


@pytest.mark.parametrize("make, x_shape", [
    (lambda: layers.Conv2D(2, 2, activation="relu"), (2, 4, 4, 3)),
    (lambda: layers.Conv2D(2, 2, data_format="channels_first"), (2, 3, 4, 4)),
    (lambda: layers.Dense(3, activation="sigmoid"), (2, 4)),
    (lambda: layers.MaxPooling2D(), (2, 4, 4, 3)),
    (lambda: layers.AveragePooling2D(data_format="channels_first"), (2, 3, 4, 4)),
    (lambda: layers.Flatten(), (2, 3, 4)),
    (lambda: layers.Dropout(0.5), (2, 6)),
    (lambda: layers.Activation("softplus"), (2, 3)),
    (lambda: layers.ReLU(max_value=1.0, negative_slope=0.1), (2, 3)),
    (lambda: layers.Softmax(), (2, 3)),
    (lambda: layers.Reshape((3, 2)), (2, 6)),
])
def test_float32_stays_float32_forward_and_backward(make, x_shape):
    layer = make()
    x = rand(x_shape).astype(np.float32)
    layer.ensure_built(x.shape)
    y, ctx = layer.forward(x, training=True)
    dx = layer.backward(ctx, np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32 and dx.shape == x.shape
    assert all(w.value.dtype == np.float32 and w.grad.dtype == np.float32 for w in layer.weights)


def test_backward_without_input_gradient_returns_none():
    for layer, shape in [(layers.Conv2D(2, 2, dtype=F64), (1, 3, 3, 1)),
                         (layers.Dense(2, dtype=F64), (2, 3)),
                         (layers.MaxPooling2D(dtype=F64), (1, 4, 4, 1)),
                         (layers.AveragePooling2D(dtype=F64), (1, 4, 4, 1)),
                         (layers.Flatten(dtype=F64), (2, 2, 2)),
                         (layers.ReLU(dtype=F64), (2, 3)),
                         (layers.Dropout(0.5, dtype=F64), (2, 3))]:
        x = rand(shape)
        layer.ensure_built(x.shape)
        y, ctx = layer.forward(x, training=True)
        assert layer.backward(ctx, np.ones_like(y), need_dx=False) is None


def test_conv2d_weight_gradients_by_hand():
    # L = sum(conv(x)): dL/dkernel[i, j] = sum of the pixels tap (i, j) reads; dL/dbias = #outputs
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    conv = layers.Conv2D(1, 2, dtype=F64)
    conv.ensure_built(x.shape)
    y, ctx = conv.forward(x, training=True)
    for w in conv.weights:
        w.zero_grad()
    dx = conv.backward(ctx, np.ones_like(y))
    np.testing.assert_array_equal(conv.kernel.grad[:, :, 0, 0], [[12, 16], [24, 28]])
    np.testing.assert_array_equal(conv.bias.grad, [4])
    w = conv.kernel.value[:, :, 0, 0]
    expected_dx = np.zeros((3, 3))
    for i in range(2):
        for j in range(2):
            expected_dx[i:i + 2, j:j + 2] += w
    np.testing.assert_allclose(dx[0, :, :, 0], expected_dx, rtol=1e-12)


# ----------------------------------------------------------------------------
# whole-model gradient checks (fastconv.testing.check_gradients)


def F(**kw):  # noqa: N802 - a Flatten in float64
    return layers.Flatten(dtype=F64, **kw)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softplus", "linear"])
def test_gradients_conv2d_activations(activation):
    # a bias of 0.5 keeps most relu units active, so the kernel gradient is not mostly 0
    conv = layers.Conv2D(3, 3, activation=activation,
                         bias_initializer=fastconv.initializers.Constant(0.5), dtype=F64)
    assert_gradients([conv, F()], (2, 6, 6, 2), (2, 48))


@pytest.mark.parametrize("kwargs, x_shape, y_size", [
    ({"strides": 2}, (2, 7, 7, 2), 27),
    ({"strides": (2, 1), "padding": "same"}, (2, 7, 6, 2), 72),
    ({"dilation_rate": 2}, (2, 7, 7, 2), 27),
    ({"dilation_rate": (1, 2), "padding": "same"}, (2, 5, 6, 2), 90),
    ({"kernel_size": (2, 3), "padding": "same"}, (2, 5, 5, 2), 75),
    ({"use_bias": False}, (2, 6, 6, 2), 48),
    ({"data_format": "channels_first", "activation": "tanh"}, (2, 2, 6, 5), 36),
    ({"data_format": "channels_first", "padding": "same", "strides": 2}, (2, 2, 6, 5), 27),
])
def test_gradients_conv2d_geometry(kwargs, x_shape, y_size):
    kwargs = {"kernel_size": 3, **kwargs}
    flatten = F(data_format=kwargs.get("data_format"))
    assert_gradients([layers.Conv2D(3, dtype=F64, **kwargs), flatten], x_shape, (2, y_size))


@pytest.mark.parametrize("kernel_regularizer, bias_regularizer, activity_regularizer", [
    ("l2", "l1", None),
    (regularizers.L1(0.05), regularizers.L2(0.3), None),
    (None, None, regularizers.L2(0.05)),
    (regularizers.L1L2(0.01, 0.02), regularizers.L1(0.1), regularizers.L1(0.02)),
])
def test_gradients_conv2d_regularizers(kernel_regularizer, bias_regularizer,
                                       activity_regularizer):
    conv = layers.Conv2D(3, 3, activation="tanh", bias_initializer="ones",
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, dtype=F64)
    assert_gradients([conv, F(), layers.Dense(2, dtype=F64)], (2, 5, 5, 2), (2, 2))


def test_gradients_dense_regularizers():
    assert_gradients([layers.Dense(4, activation="tanh", kernel_regularizer="l1",
                                   bias_regularizer="l2", bias_initializer="ones",
                                   activity_regularizer="l2", dtype=F64),
                      layers.Dense(2, dtype=F64)], (3, 5), (3, 2))


@pytest.mark.parametrize("pool", [
    lambda: layers.MaxPooling2D(2, dtype=F64),
    lambda: layers.MaxPooling2D(3, strides=1, padding="same", dtype=F64),
    lambda: layers.MaxPooling2D((2, 3), strides=(1, 2), dtype=F64),
    lambda: layers.AveragePooling2D(2, dtype=F64),
    lambda: layers.AveragePooling2D(3, strides=2, padding="same", dtype=F64),
])
def test_gradients_pooling(pool):
    pool = pool()
    conv = layers.Conv2D(2, 2, dtype=F64)
    out = pool.compute_output_shape(conv.compute_output_shape((2, 7, 7, 2)))
    assert_gradients([conv, pool, F()], (2, 7, 7, 2), (2, math.prod(out[1:])))


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_gradients_pooling_channels_first(cls):
    cf = "channels_first"
    assert_gradients([layers.Conv2D(3, 2, data_format=cf, dtype=F64),
                      cls(2, padding="same", data_format=cf, dtype=F64), F(data_format=cf),
                      layers.Dense(2, dtype=F64)], (2, 2, 6, 5), (2, 2))


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy",
                                  "mean_squared_error"])
def test_gradients_dense_softmax_output(loss):
    # with a cross-entropy the model fuses softmax and loss into one gradient
    assert_gradients([layers.Dense(4, activation="relu", bias_initializer="ones", dtype=F64),
                      layers.Dense(3, activation="softmax", dtype=F64)], (5, 6), (5, 3), loss)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "mean_squared_error"])
def test_gradients_softmax_layers(loss):
    assert_gradients([layers.Dense(4, dtype=F64), layers.Softmax(dtype=F64)], (4, 5), (4, 4),
                     loss)
    assert_gradients([layers.Dense(4, dtype=F64), layers.Activation("softmax", dtype=F64)],
                     (4, 5), (4, 4), loss)


def test_gradients_seed_cnn_with_softmax_output():
    assert_gradients([layers.Conv2D(4, 2, padding="same", activation="relu", dtype=F64),
                      layers.MaxPooling2D(2, dtype=F64),
                      layers.Conv2D(3, 2, activation="relu", dtype=F64), layers.Flatten(dtype=F64),
                      layers.Dense(5, activation="relu", dtype=F64),
                      layers.Dense(3, activation="softmax", dtype=F64)],
                     (3, 8, 8, 1), (3, 3), "categorical_crossentropy")


@pytest.mark.parametrize("make", [
    lambda: layers.Activation("sigmoid", dtype=F64),
    lambda: layers.Activation("tanh", dtype=F64),
    lambda: layers.ReLU(dtype=F64),
    lambda: layers.ReLU(max_value=0.8, dtype=F64),
    lambda: layers.ReLU(negative_slope=0.1, dtype=F64),
    lambda: layers.ReLU(threshold=0.3, dtype=F64),
    lambda: layers.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.1, dtype=F64),
    lambda: layers.Dropout(0.5, dtype=F64),
    lambda: layers.Dropout(0.3, seed=7, dtype=F64),
    lambda: layers.Dropout(0.5, noise_shape=(None, 1), dtype=F64),
])
def test_gradients_through_weightless_layers(make):
    assert_gradients([layers.Dense(8, dtype=F64), make(), layers.Dense(2, dtype=F64)],
                     (4, 5), (4, 2))


def test_gradients_reshape_and_flatten():
    assert_gradients([layers.Dense(12, dtype=F64), layers.Reshape((3, 2, 2), dtype=F64),
                      layers.Conv2D(2, 2, dtype=F64), F()], (2, 5), (2, 4))
    assert_gradients([layers.Conv2D(3, 2, data_format="channels_first", dtype=F64),
                      F(data_format="channels_first"), layers.Dense(2, dtype=F64)],
                     (2, 2, 4, 3), (2, 2))


def test_gradient_check_catches_a_wrong_gradient():
    """The checks above can fail: a layer whose backward is off by 1% is caught."""
    model, x, y = gradient_model([layers.Dense(3, activation="tanh", dtype=F64)], (4, 5), (4, 3))
    dense = model.layers[0]
    original = dense.backward

    def wrong_backward(ctx, dy, need_dx=True, activation_done=False):
        dx = original(ctx, dy, need_dx, activation_done)
        dense.kernel.grad *= 1.01
        return dx

    dense.backward = wrong_backward
    with pytest.raises(AssertionError, match="Gradient check failed"):
        check_gradients(model, x, y)

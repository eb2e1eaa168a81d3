"""Layers: forward values against independent NumPy and hand-computed arrays."""

from __future__ import annotations


import numpy as np
import pytest

import fastconv
from fastconv import layers
from layer_helpers import F64, naive_conv2d, naive_pool2d, rand


# ----------------------------------------------------------------------------
# forward values against independent NumPy


ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "softplus": lambda z: np.log1p(np.exp(z)),
    "linear": lambda z: z,
    None: lambda z: z,
}


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("kernel, strides, padding, dilation", [
    ((3, 3), (1, 1), "valid", (1, 1)),
    ((2, 2), (1, 1), "same", (1, 1)),
    ((3, 2), (2, 3), "same", (1, 1)),
    ((3, 3), (2, 2), "valid", (1, 1)),
    ((2, 3), (1, 1), "same", (2, 2)),
    ((3, 3), (1, 1), "valid", (2, 1)),
])
def test_conv2d_forward_values(kernel, strides, padding, dilation, activation):
    x = rand((2, 9, 8, 3), 1)
    w = rand((*kernel, 3, 4), 2)
    b = rand((4,), 3)
    conv = layers.Conv2D(4, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                         activation=activation, dtype=F64)
    conv.ensure_built(x.shape)
    conv.set_weights([w, b])
    expected = ACTIVATIONS[activation](naive_conv2d(x, w, b, strides, padding, dilation))
    np.testing.assert_allclose(conv(x), expected, rtol=1e-12, atol=1e-12)


def test_conv2d_forward_float32_and_reference():
    x = rand((2, 7, 7, 3), 1).astype(np.float32)
    w = rand((3, 3, 3, 5), 2)
    conv = layers.Conv2D(5, 3, padding="same", use_bias=False)
    conv.ensure_built(x.shape)
    conv.set_weights([w])
    y = conv(x)
    assert y.dtype == np.float32
    expected = naive_conv2d(x.astype(np.float64), w, padding="same")
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, fastconv.reference.conv2d(x, w.astype(np.float32),
                                                            padding="same"), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("strides, padding, dilation", [
    (1, "valid", 1), (2, "same", 1), (1, "same", 2)])
def test_conv2d_channels_first_is_transposed_channels_last(strides, padding, dilation):
    x = rand((2, 3, 8, 7), 1)  # NCHW
    w, b = rand((3, 2, 3, 4), 2), rand((4,), 3)
    conv = layers.Conv2D(4, (3, 2), strides=strides, padding=padding, dilation_rate=dilation,
                         data_format="channels_first", activation="tanh", dtype=F64)
    conv.ensure_built(x.shape)
    conv.set_weights([w, b])
    nhwc = naive_conv2d(x.transpose(0, 2, 3, 1), w, b, (strides,) * 2, padding, (dilation,) * 2)
    np.testing.assert_allclose(conv(x), np.tanh(nhwc).transpose(0, 3, 1, 2), rtol=1e-12,
                               atol=1e-12)


def test_conv2d_forward_by_hand():
    # a 3x3 image of 1..9, a 2x2 kernel of ones: sums of 2x2 blocks, plus bias 1
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    conv = layers.Conv2D(1, 2, kernel_initializer="ones", bias_initializer="ones", dtype=F64)
    np.testing.assert_array_equal(conv(x)[0, :, :, 0], [[13, 17], [25, 29]])
    # "same" with a 2x2 kernel pads one row/column at the bottom/right only (TensorFlow)
    conv = layers.Conv2D(1, 2, padding="same", kernel_initializer="ones", use_bias=False,
                         dtype=F64)
    np.testing.assert_array_equal(conv(x)[0, :, :, 0], [[12, 16, 9], [24, 28, 15], [15, 17, 9]])


@pytest.mark.parametrize("cls, mode", [(layers.MaxPooling2D, "max"),
                                       (layers.AveragePooling2D, "avg")])
@pytest.mark.parametrize("pool, strides, padding", [
    ((2, 2), None, "valid"), ((2, 2), None, "same"), ((3, 3), (1, 1), "same"),
    ((3, 2), (2, 1), "valid"), ((3, 3), (2, 2), "same"),
])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_pooling_forward_values(cls, mode, pool, strides, padding, data_format):
    x = rand((2, 7, 6, 3), 4)
    layer = cls(pool, strides=strides, padding=padding, data_format=data_format, dtype=F64)
    expected = naive_pool2d(x, pool, strides or pool, padding, mode)
    if data_format == "channels_first":
        got = layer(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    else:
        got = layer(x)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_pooling_by_hand():
    x = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]).reshape(1, 3, 3, 1)
    np.testing.assert_array_equal(layers.MaxPooling2D(2)(x)[0, :, :, 0], [[5]])
    np.testing.assert_array_equal(
        layers.MaxPooling2D(2, padding="same")(x)[0, :, :, 0], [[5, 6], [8, 9]])
    # "same" averages only the pixels inside the image
    np.testing.assert_array_equal(
        layers.AveragePooling2D(2, padding="same")(x)[0, :, :, 0], [[3, 4.5], [7.5, 9]])
    np.testing.assert_array_equal(
        layers.AveragePooling2D(2, strides=1)(x)[0, :, :, 0], [[3, 4], [6, 7]])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_dense_forward_values(activation):
    x, w, b = rand((4, 5), 1), rand((5, 3), 2), rand((3,), 3)
    dense = layers.Dense(3, activation=activation, dtype=F64)
    dense.ensure_built(x.shape)
    dense.set_weights([w, b])
    np.testing.assert_allclose(dense(x), ACTIVATIONS[activation](x @ w + b), rtol=1e-12)


def test_dense_on_3d_input_acts_on_last_axis():
    x, w, b = rand((2, 4, 5), 1), rand((5, 3), 2), rand((3,), 3)
    dense = layers.Dense(3, dtype=F64)
    dense.ensure_built(x.shape)
    dense.set_weights([w, b])
    np.testing.assert_allclose(dense(x), np.einsum("nti,io->nto", x, w) + b, rtol=1e-12)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softplus", "linear"])
def test_activation_layer_values(name):
    x = rand((3, 4, 2), 5)
    np.testing.assert_allclose(layers.Activation(name, dtype=F64)(x), ACTIVATIONS[name](x),
                               rtol=1e-12)
    softmax = layers.Activation("softmax", dtype=F64)(x)
    e = np.exp(x)
    np.testing.assert_allclose(softmax, e / e.sum(axis=-1, keepdims=True), rtol=1e-12)


def test_softmax_layer_values():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    y = layers.Softmax(dtype=F64)(x)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(y[0], e / e.sum(), rtol=1e-12)
    np.testing.assert_allclose(y[1], [0.5, 0.5, 0.0], atol=1e-300)  # no overflow
    x = rand((2, 3, 5), 6)
    e = np.exp(x)
    np.testing.assert_allclose(layers.Softmax(dtype=F64)(x), e / e.sum(-1, keepdims=True),
                               rtol=1e-12)


@pytest.mark.parametrize("kwargs, expected", [
    # x = [-3, -1, -0.5, 0, 0.25, 0.5, 1, 2, 7]
    ({}, [0, 0, 0, 0, 0.25, 0.5, 1, 2, 7]),
    ({"max_value": 6.0}, [0, 0, 0, 0, 0.25, 0.5, 1, 2, 6]),
    ({"negative_slope": 0.1}, [-0.3, -0.1, -0.05, 0, 0.25, 0.5, 1, 2, 7]),
    ({"threshold": 0.5}, [0, 0, 0, 0, 0, 0, 1, 2, 7]),  # 0 at the threshold
    ({"max_value": 1.5, "negative_slope": 0.5, "threshold": 1.0},
     [-2, -1, -0.75, -0.5, -0.375, -0.25, 0, 1.5, 1.5]),
])
def test_relu_layer_values(kwargs, expected):
    x = np.array([[-3, -1, -0.5, 0, 0.25, 0.5, 1, 2, 7]])
    np.testing.assert_allclose(layers.ReLU(**kwargs, dtype=F64)(x)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("kwargs, x, expected", [
    # the examples of Keras' ReLU and relu documentation
    ({"max_value": 10, "negative_slope": 0.5, "threshold": 0}, [-10, -5, 0.0, 5, 10],
     [-5, -2.5, 0, 5, 10]),
    ({"max_value": 1.0}, [-3.0, -1.0, 0.0, 2.0], [0, 0, 0, 1]),
    ({"negative_slope": 1.0}, [-3.0, -1.0, 0.0, 2.0], [-3, -1, 0, 2]),
    ({"threshold": 1.5}, [-3.0, -1.0, 1.0, 2.0], [0, 0, 0, 2]),
    ({"threshold": 5.0}, [-10, -5, 0.0, 5, 10], [0, 0, 0, 0, 10]),
])
def test_relu_layer_keras_doc_examples(kwargs, x, expected):
    np.testing.assert_allclose(layers.ReLU(**kwargs)(np.array([x]))[0], expected, rtol=1e-6)


def test_flatten_values():
    x = rand((2, 3, 4, 5), 7)
    np.testing.assert_array_equal(layers.Flatten()(x), x.reshape(2, 60).astype(np.float32))
    # channels_first flattens in channels-last order, as Keras
    got = layers.Flatten(data_format="channels_first", dtype=F64)(x)
    np.testing.assert_array_equal(got, x.transpose(0, 2, 3, 1).reshape(2, 60))
    # by hand: (1, C=2, H=1, W=2): [[a, b]], [[c, d]] -> a, c, b, d
    x = np.array([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    np.testing.assert_array_equal(layers.Flatten(data_format="channels_first")(x), [[1, 3, 2, 4]])


def test_reshape_values():
    x = rand((3, 12), 8)
    np.testing.assert_array_equal(layers.Reshape((2, -1, 2), dtype=F64)(x), x.reshape(3, 2, 3, 2))

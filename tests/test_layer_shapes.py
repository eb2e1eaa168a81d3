"""Layers: output shapes, parameter counts (Keras' numbers) and weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv
from fastconv import layers, models
from layer_helpers import keras_conv_size, rand


# ----------------------------------------------------------------------------
# output shapes: compute_output_shape and the real forward


CONV_SHAPES = [
    # (H, W, C_in), filters, kernel, strides, padding, dilation, expected (OH, OW)
    ((28, 28, 1), 32, 3, 1, "valid", 1, (26, 26)),
    ((13, 13, 32), 64, 3, 1, "valid", 1, (11, 11)),
    ((5, 5, 64), 64, 3, 1, "valid", 1, (3, 3)),
    ((28, 28, 1), 64, 2, 1, "same", 1, (28, 28)),
    ((7, 9, 2), 3, 3, 2, "valid", 1, (3, 4)),
    ((7, 9, 2), 3, 3, 2, "same", 1, (4, 5)),
    ((8, 8, 2), 3, (2, 3), (3, 1), "valid", 1, (3, 6)),
    ((10, 11, 2), 2, 3, 1, "valid", 2, (6, 7)),
    ((10, 11, 2), 2, 3, 1, "same", 2, (10, 11)),
    ((10, 11, 2), 2, (3, 2), 1, "valid", (2, 3), (6, 8)),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("hwc, filters, kernel, strides, padding, dilation, expected", CONV_SHAPES)
def test_conv2d_output_shape(hwc, filters, kernel, strides, padding, dilation, expected,
                             data_format):
    h, w, c = hwc
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    # the hand-written expectation agrees with Keras' formula
    assert expected == (keras_conv_size(h, kh, sh, dh, padding),
                        keras_conv_size(w, kw, sw, dw, padding))
    first = data_format == "channels_first"
    in_shape = (2, c, h, w) if first else (2, h, w, c)
    out_shape = (2, filters, *expected) if first else (2, *expected, filters)
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                          dilation_rate=dilation, data_format=data_format)
    assert layer.compute_output_shape((None, *in_shape[1:])) == (None, *out_shape[1:])
    y = layer(rand(in_shape))
    assert y.shape == out_shape
    assert layer.output_shape == (None, *out_shape[1:])


POOL_SHAPES = [
    # (H, W), pool, strides, padding, expected (OH, OW)
    ((26, 26), 2, None, "valid", (13, 13)),
    ((11, 11), 2, None, "valid", (5, 5)),
    ((11, 11), 2, None, "same", (6, 6)),
    ((28, 28), (2, 2), (2, 2), "same", (14, 14)),
    ((7, 8), 3, 1, "valid", (5, 6)),
    ((7, 8), 3, 1, "same", (7, 8)),
    ((7, 8), 3, 2, "valid", (3, 3)),
    ((7, 8), 3, 2, "same", (4, 4)),
    ((9, 6), (3, 2), (2, 1), "valid", (4, 5)),
]


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("hw, pool, strides, padding, expected", POOL_SHAPES)
def test_pooling_output_shape(cls, hw, pool, strides, padding, expected, data_format):
    first = data_format == "channels_first"
    in_shape = (2, 3, *hw) if first else (2, *hw, 3)
    out_shape = (2, 3, *expected) if first else (2, *expected, 3)
    layer = cls(pool, strides=strides, padding=padding, data_format=data_format)
    assert layer.compute_output_shape((None, *in_shape[1:])) == (None, *out_shape[1:])
    assert layer(rand(in_shape)).shape == out_shape


def test_valid_window_larger_than_input_is_rejected():
    with pytest.raises(ValueError, match="smaller than"):
        layers.Conv2D(2, 5).compute_output_shape((None, 4, 4, 1))
    with pytest.raises(ValueError, match="smaller than"):
        layers.Conv2D(2, 3, dilation_rate=3).compute_output_shape((None, 6, 6, 1))
    with pytest.raises(ValueError, match="smaller than"):
        layers.MaxPooling2D(3).compute_output_shape((None, 2, 5, 1))
    assert layers.Conv2D(2, 5, padding="same").compute_output_shape((None, 4, 4, 1)) == \
        (None, 4, 4, 2)


def test_unknown_spatial_sizes_give_unknown_output_sizes():
    """Keras: an unknown (None) input size gives an unknown output size."""
    assert layers.Conv2D(4, 3).compute_output_shape((None, None, None, 3)) == \
        (None, None, None, 4)
    assert layers.Conv2D(4, 3, data_format="channels_first").compute_output_shape(
        (None, 3, None, 8)) == (None, 4, None, 6)
    assert layers.MaxPooling2D(2).compute_output_shape((None, None, 6, 3)) == (None, None, 3, 3)
    assert layers.AveragePooling2D(2, padding="same").compute_output_shape(
        (None, 5, None, 3)) == (None, 3, None, 3)
    assert layers.Flatten().compute_output_shape((None, None, 3)) == (None, None)
    assert layers.Reshape((-1, 3)).compute_output_shape((None, None, 3)) == (None, None, 3)


def test_unknown_spatial_sizes_accept_any_size_when_called():
    inputs = fastconv.Input(shape=(None, None, 3))
    conv, pool = layers.Conv2D(4, 3, padding="same"), layers.MaxPooling2D(2)
    reshape = layers.Reshape((-1, 4))
    assert reshape(pool(conv(inputs))).shape == (None, None, 4)
    for h, w in [(8, 6), (4, 4)]:
        y = reshape(pool(conv(rand((2, h, w, 3)))))
        assert y.shape == (2, (h // 2) * (w // 2), 4)
    with pytest.raises(ValueError, match="incompatible"):
        conv(rand((2, 8, 6, 5)))  # the channels are known


@pytest.mark.parametrize("layer, in_shape, out_shape", [
    (lambda: layers.Flatten(), (2, 3, 3, 64), (2, 576)),
    (lambda: layers.Flatten(), (2, 7), (2, 7)),
    (lambda: layers.Flatten(data_format="channels_first"), (2, 4, 3, 5), (2, 60)),
    (lambda: layers.Dense(64), (2, 576), (2, 64)),
    (lambda: layers.Dense(5), (2, 3, 4), (2, 3, 5)),
    (lambda: layers.Dropout(0.5), (2, 3, 4), (2, 3, 4)),
    (lambda: layers.Activation("relu"), (2, 3, 4), (2, 3, 4)),
    (lambda: layers.ReLU(), (2, 5), (2, 5)),
    (lambda: layers.Softmax(), (2, 3, 4), (2, 3, 4)),
    (lambda: layers.Reshape((3, 4)), (2, 12), (2, 3, 4)),
    (lambda: layers.Reshape((-1, 2)), (2, 3, 4), (2, 6, 2)),
    (lambda: layers.Reshape((2, -1, 3)), (2, 12), (2, 2, 2, 3)),
])
def test_core_output_shape(layer, in_shape, out_shape):
    layer = layer()
    assert layer.compute_output_shape((None, *in_shape[1:])) == (None, *out_shape[1:])
    assert layer(rand(in_shape)).shape == out_shape


def test_reshape_rejects_incompatible_sizes():
    with pytest.raises(ValueError, match="cannot reshape"):
        layers.Reshape((5, 2)).compute_output_shape((None, 12))
    with pytest.raises(ValueError, match="cannot reshape"):
        layers.Reshape((-1, 5)).compute_output_shape((None, 12))


def test_input_shapes():
    assert fastconv.Input(shape=(28, 28, 1)).shape == (None, 28, 28, 1)
    assert fastconv.Input(shape=(28, 28, 1), batch_size=4).shape == (4, 28, 28, 1)
    assert layers.Input(batch_shape=(8, 5)).shape == (8, 5)
    layer = layers.InputLayer(shape=(3, 4))
    assert layer.output_shape == (None, 3, 4)
    assert layer.output.shape == (None, 3, 4)
    x = rand((2, 3, 4))
    np.testing.assert_array_equal(layer.forward(x)[0], x)


# ----------------------------------------------------------------------------
# parameter counts (Keras' model.summary numbers from the seed documents)


def test_param_counts_seed_000():
    inputs = fastconv.Input(shape=(28, 28, 1))
    stack = [layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
             layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
             layers.Conv2D(64, (3, 3), activation="relu"), layers.Flatten(),
             layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")]
    t = inputs
    for layer in stack:
        t = layer(t)
    assert [layer.count_params() for layer in stack] == [320, 0, 18496, 0, 36928, 0, 36928, 650]
    assert sum(layer.count_params() for layer in stack) == 93322
    assert [layer.output_shape for layer in stack] == [
        (None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64), (None, 5, 5, 64),
        (None, 3, 3, 64), (None, 576), (None, 64), (None, 10)]


def test_param_counts_seed_003():
    stack = [layers.Conv2D(64, 2, padding="same", activation="relu", input_shape=(28, 28, 1)),
             layers.MaxPooling2D(2), layers.Conv2D(32, 2, padding="same", activation="relu"),
             layers.MaxPooling2D(2), layers.Dropout(0.3), layers.Flatten(),
             layers.Dense(256, activation="relu"), layers.Dropout(0.5),
             layers.Dense(10, activation="softmax")]
    models.Sequential(stack)
    assert [layer.count_params() for layer in stack] == [320, 0, 8224, 0, 0, 0, 401664, 0, 2570]
    assert [layer.output_shape for layer in stack] == [
        (None, 28, 28, 64), (None, 14, 14, 64), (None, 14, 14, 32), (None, 7, 7, 32),
        (None, 7, 7, 32), (None, 1568), (None, 256), (None, 256), (None, 10)]


def test_param_counts_without_bias_and_channels_first():
    conv = layers.Conv2D(8, (3, 2), use_bias=False)
    conv.ensure_built((None, 10, 10, 5))
    assert conv.count_params() == 3 * 2 * 5 * 8
    conv = layers.Conv2D(8, 3, data_format="channels_first")
    conv.ensure_built((None, 5, 10, 10))  # channels on axis 1
    assert conv.count_params() == 3 * 3 * 5 * 8 + 8
    dense = layers.Dense(7, use_bias=False)
    dense.ensure_built((None, 4))
    assert dense.count_params() == 28


# ----------------------------------------------------------------------------
# get_weights / set_weights


def test_conv2d_weights_order_and_shapes():
    conv = layers.Conv2D(6, (3, 2), bias_initializer="ones")
    conv.ensure_built((None, 9, 9, 4))
    kernel, bias = conv.get_weights()
    assert kernel.shape == (3, 2, 4, 6) and bias.shape == (6,)
    np.testing.assert_array_equal(bias, np.ones(6))  # bias is the second array
    # glorot_uniform: limit sqrt(6 / (fan_in + fan_out)), receptive field 3 * 2
    limit = math.sqrt(6 / (3 * 2 * 4 + 3 * 2 * 6))
    assert np.abs(kernel).max() <= limit and kernel.std() > limit / 4


def test_dense_weights_order_and_shapes():
    dense = layers.Dense(3)
    dense.ensure_built((None, 5))
    kernel, bias = dense.get_weights()
    assert kernel.shape == (5, 3) and bias.shape == (3,)
    np.testing.assert_array_equal(bias, 0)
    assert layers.Dense(3, use_bias=False)(np.ones((1, 5))).shape == (1, 3)


def test_set_weights_then_forward_uses_them():
    dense = layers.Dense(2)
    dense.ensure_built((None, 3))
    kernel = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    dense.set_weights([kernel, np.array([0.5, -0.5])])
    np.testing.assert_allclose(dense(np.array([[1.0, 0.0, -1.0]])), [[-3.5, -4.5]])
    got = dense.get_weights()
    np.testing.assert_array_equal(got[0], kernel)
    got[0][...] = 0  # get_weights returns copies
    np.testing.assert_array_equal(dense.get_weights()[0], kernel)


def test_set_weights_rejects_wrong_count_and_shapes():
    conv = layers.Conv2D(4, 3)
    conv.ensure_built((None, 8, 8, 2))
    kernel, bias = conv.get_weights()
    with pytest.raises(ValueError, match="expects 2 weight arrays, received 1"):
        conv.set_weights([kernel])
    with pytest.raises(ValueError, match="expects 2 weight arrays, received 3"):
        conv.set_weights([kernel, bias, bias])
    with pytest.raises(ValueError, match=r"expected \(3, 3, 2, 4\), received \(4, 2, 3, 3\)"):
        conv.set_weights([kernel.transpose(3, 2, 0, 1), bias])
    with pytest.raises(ValueError, match=r"expected \(4,\), received \(5,\)"):
        conv.set_weights([kernel, np.zeros(5)])
    dense = layers.Dense(3, use_bias=False)
    dense.ensure_built((None, 2))
    with pytest.raises(ValueError, match="expects 1 weight arrays"):
        dense.set_weights([np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"expected \(2, 3\), received \(3, 2\)"):
        dense.set_weights([np.zeros((3, 2))])
    np.testing.assert_array_equal(conv.get_weights()[0], kernel)  # nothing was changed


def test_weightless_layers_have_no_weights():
    for layer in [layers.MaxPooling2D(), layers.AveragePooling2D(), layers.Flatten(),
                  layers.Dropout(0.2), layers.Activation("tanh"), layers.ReLU(),
                  layers.Softmax(), layers.Reshape((-1,))]:
        layer(rand((1, 4, 4, 2)))
        assert layer.get_weights() == [] and layer.count_params() == 0
        layer.set_weights([])
        with pytest.raises(ValueError, match="expects 0 weight arrays"):
            layer.set_weights([np.zeros(1)])

"""The convolution layer families of every rank (Conv1D/2D/3D, their
transposes, DepthwiseConv1D/2D, SeparableConv1D/2D): outputs against torch
with Keras-layout weights, Keras' output shapes, gradients against central
differences, Keras' argument errors, configs and weights, and the fused
Conv1D + MaxPooling1D step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from layer_helpers import F64, assert_gradients, check_input_gradient
from nd_helpers import (
    keras_conv_length,
    keras_transpose_pads,
    rand,
    to_first,
    to_last,
    torch_conv,
    torch_conv_transpose,
    torch_depthwise,
)

import fastconv
from fastconv import layers, models
from fastconv.graph import passes

TOL = {"rtol": 1e-10, "atol": 1e-10}
ACTIVATIONS = {None: lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}


def run(layer, x, weights, data_format="channels_last"):
    """The layer's output for channels-last ``x``, fed in its data format and
    returned channels-last, after ``set_weights(weights)``."""
    first = data_format == "channels_first"
    layer.ensure_built((None, *(to_first(x) if first else x).shape[1:]))
    layer.set_weights(weights)
    y = layer(to_first(x) if first else x)
    return to_last(y) if first else y


# ----------------------------------------------------------------------------
# outputs against torch

CONV_CASES = [
    # cls, x_shape, filters, kwargs
    (layers.Conv1D, (2, 9, 3), 4, {"kernel_size": 3}),
    (layers.Conv1D, (2, 10, 4), 6, {"kernel_size": 2, "strides": 2, "padding": "same",
                                    "groups": 2}),
    (layers.Conv1D, (2, 11, 2), 3, {"kernel_size": 3, "padding": "causal", "dilation_rate": 2}),
    (layers.Conv1D, (1, 8, 3), 3, {"kernel_size": 2, "padding": "causal", "strides": 3}),
    (layers.Conv1D, (2, 7, 2), 2, {"kernel_size": 4, "padding": "same", "dilation_rate": 2}),
    (layers.Conv2D, (2, 7, 6, 4), 6, {"kernel_size": (3, 2), "padding": "same", "groups": 2}),
    (layers.Conv2D, (1, 8, 7, 3), 5, {"kernel_size": 3, "strides": (2, 1)}),
    (layers.Conv2D, (1, 9, 8, 2), 2, {"kernel_size": 2, "dilation_rate": (2, 3),
                                      "padding": "same"}),
    (layers.Conv3D, (2, 5, 4, 6, 3), 4, {"kernel_size": (2, 3, 2), "strides": (1, 2, 3),
                                         "padding": "same"}),
    (layers.Conv3D, (1, 4, 5, 5, 4), 6, {"kernel_size": 2, "dilation_rate": (1, 2, 1),
                                         "groups": 2}),
    (layers.Conv3D, (1, 3, 4, 4, 2), 3, {"kernel_size": (3, 4, 4)}),  # kernel = input
]


@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls, x_shape, filters, kwargs", CONV_CASES)
def test_conv_matches_torch(cls, x_shape, filters, kwargs, data_format, activation):
    x = rand(x_shape, 1)
    groups = kwargs.get("groups", 1)
    k = kwargs["kernel_size"]
    k = k if isinstance(k, tuple) else (k,) * (len(x_shape) - 2)
    w, b = rand((*k, x_shape[-1] // groups, filters), 2), rand((filters,), 3)
    layer = cls(filters, **kwargs, data_format=data_format, activation=activation, dtype=F64)
    got = run(layer, x, [w, b], data_format)
    want = torch_conv(x, w, b, kwargs.get("strides", 1), kwargs.get("padding", "valid"),
                      kwargs.get("dilation_rate", 1), groups)
    np.testing.assert_allclose(got, ACTIVATIONS[activation](want), **TOL)


def test_causal_conv1d_never_reads_the_future():
    conv = layers.Conv1D(1, 3, padding="causal", dilation_rate=2, kernel_initializer="ones",
                         use_bias=False, dtype=F64)
    x = np.zeros((1, 10, 1))
    x[0, 6] = 1.0  # output t sees inputs t, t - 2, t - 4
    np.testing.assert_array_equal(conv(x)[0, :, 0], [0, 0, 0, 0, 0, 0, 1, 0, 1, 0])


TRANSPOSE_CASES = [
    (layers.Conv1DTranspose, (2, 5, 3), 4, {"kernel_size": 3, "strides": 2}),
    (layers.Conv1DTranspose, (1, 6, 2), 3, {"kernel_size": 4, "strides": 2, "padding": "same"}),
    (layers.Conv1DTranspose, (2, 4, 3), 2, {"kernel_size": 3, "strides": 2,
                                            "output_padding": 1}),
    (layers.Conv1DTranspose, (1, 5, 2), 2, {"kernel_size": 3, "dilation_rate": 2}),
    (layers.Conv2DTranspose, (2, 4, 3, 3), 5, {"kernel_size": 3, "strides": 2,
                                               "padding": "same", "output_padding": 1}),
    (layers.Conv2DTranspose, (1, 3, 4, 2), 3, {"kernel_size": (2, 3), "strides": (2, 3)}),
    (layers.Conv2DTranspose, (2, 3, 3, 2), 2, {"kernel_size": 2, "strides": 3,
                                               "output_padding": (2, 0)}),
    (layers.Conv2DTranspose, (1, 4, 4, 2), 3, {"kernel_size": 3, "padding": "same",
                                               "dilation_rate": 2}),
    (layers.Conv3DTranspose, (1, 2, 3, 2, 3), 2, {"kernel_size": 2, "strides": 2,
                                                  "padding": "same"}),
    (layers.Conv3DTranspose, (2, 2, 2, 3, 2), 3, {"kernel_size": (3, 2, 2), "strides": (1, 2, 2),
                                                  "output_padding": (0, 1, 0)}),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls, x_shape, filters, kwargs", TRANSPOSE_CASES)
def test_conv_transpose_matches_torch(cls, x_shape, filters, kwargs, data_format):
    x = rand(x_shape, 1)
    rank = len(x_shape) - 2
    k = kwargs["kernel_size"]
    k = k if isinstance(k, tuple) else (k,) * rank
    w, b = rand((*k, filters, x_shape[-1]), 2), rand((filters,), 3)
    layer = cls(filters, **kwargs, data_format=data_format, activation="tanh", dtype=F64)
    got = run(layer, x, [w, b], data_format)
    want = torch_conv_transpose(x, w, b, kwargs.get("strides", 1),
                                kwargs.get("padding", "valid"), kwargs.get("output_padding"),
                                kwargs.get("dilation_rate", 1))
    np.testing.assert_allclose(got, np.tanh(want), **TOL)


def test_conv2d_transpose_undoes_the_shape_of_a_strided_conv2d():
    # The denoising autoencoder's idiom: stride 2 down, stride 2 back up.
    inputs = fastconv.Input((8, 6, 1))
    down = layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    up = layers.Conv2DTranspose(1, 3, strides=2, padding="same")(down)
    assert down.shape == (None, 4, 3, 4) and up.shape == (None, 8, 6, 1)


DEPTHWISE_CASES = [
    (layers.DepthwiseConv1D, (2, 9, 3), {"kernel_size": 3, "depth_multiplier": 2}),
    (layers.DepthwiseConv1D, (1, 8, 2), {"kernel_size": 2, "strides": 2, "padding": "same"}),
    (layers.DepthwiseConv1D, (1, 9, 1), {"kernel_size": 3, "dilation_rate": 2,
                                         "depth_multiplier": 3}),  # one channel: groups=1
    (layers.DepthwiseConv2D, (2, 6, 7, 3), {"kernel_size": 3, "depth_multiplier": 2,
                                            "padding": "same"}),
    (layers.DepthwiseConv2D, (1, 7, 7, 4), {"kernel_size": (2, 3), "strides": 2}),
    (layers.DepthwiseConv2D, (1, 7, 6, 2), {"kernel_size": 2, "dilation_rate": 2,
                                            "depth_multiplier": 2}),
]


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls, x_shape, kwargs", DEPTHWISE_CASES)
def test_depthwise_matches_torch(cls, x_shape, kwargs, data_format, activation):
    x = rand(x_shape, 1)
    rank, c, m = len(x_shape) - 2, x_shape[-1], kwargs.get("depth_multiplier", 1)
    k = kwargs["kernel_size"]
    k = k if isinstance(k, tuple) else (k,) * rank
    w, b = rand((*k, c, m), 2), rand((c * m,), 3)
    layer = cls(**kwargs, data_format=data_format, activation=activation, dtype=F64)
    got = run(layer, x, [w, b], data_format)
    want = torch_depthwise(x, w, b, kwargs.get("strides", 1), kwargs.get("padding", "valid"),
                           kwargs.get("dilation_rate", 1))
    np.testing.assert_allclose(got, ACTIVATIONS[activation](want), **TOL)


def test_depthwise_output_channels_are_channel_major_as_keras():
    # Channel c, multiplier j -> output channel c * m + j: a 1x1 kernel makes
    # output (c, j) input c times kernel[0, 0, c, j].
    layer = layers.DepthwiseConv2D(1, depth_multiplier=2, use_bias=False, dtype=F64)
    x = np.arange(1.0, 4.0).reshape(1, 1, 1, 3)
    layer.ensure_built(x.shape)
    layer.set_weights([np.array([[[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]]])])
    np.testing.assert_array_equal(layer(x)[0, 0, 0], [1, 10, 4, 40, 9, 90])


SEPARABLE_CASES = [
    (layers.SeparableConv1D, (2, 9, 3), 4, {"kernel_size": 3, "depth_multiplier": 2}),
    (layers.SeparableConv1D, (1, 10, 2), 3, {"kernel_size": 2, "strides": 2, "padding": "same"}),
    (layers.SeparableConv2D, (2, 6, 7, 3), 5, {"kernel_size": 3, "padding": "same",
                                               "depth_multiplier": 2}),
    (layers.SeparableConv2D, (1, 7, 8, 2), 4, {"kernel_size": (2, 3), "dilation_rate": 2}),
]


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls, x_shape, filters, kwargs", SEPARABLE_CASES)
def test_separable_is_depthwise_then_pointwise(cls, x_shape, filters, kwargs, data_format,
                                               activation):
    x = rand(x_shape, 1)
    rank, c, m = len(x_shape) - 2, x_shape[-1], kwargs.get("depth_multiplier", 1)
    k = kwargs["kernel_size"]
    k = k if isinstance(k, tuple) else (k,) * rank
    dw, pw, b = rand((*k, c, m), 2), rand((*(1,) * rank, c * m, filters), 3), rand((filters,), 4)
    layer = cls(filters, **kwargs, data_format=data_format, activation=activation, dtype=F64)
    got = run(layer, x, [dw, pw, b], data_format)
    h = torch_depthwise(x, dw, None, kwargs.get("strides", 1), kwargs.get("padding", "valid"),
                        kwargs.get("dilation_rate", 1))
    np.testing.assert_allclose(got, ACTIVATIONS[activation](torch_conv(h, pw, b)), **TOL)


def test_float32_layers_agree_with_float64():
    for layer32, shape in [
        (layers.Conv1D(4, 3, padding="causal", dilation_rate=2), (2, 12, 3)),
        (layers.Conv3D(4, 2, groups=2), (1, 4, 4, 4, 2)),
        (layers.Conv2DTranspose(3, 3, strides=2), (2, 4, 4, 2)),
        (layers.DepthwiseConv2D(3, depth_multiplier=2), (1, 6, 6, 3)),
        (layers.SeparableConv1D(3, 3), (2, 8, 2)),
    ]:
        x = rand(shape, 5)
        layer32.ensure_built(x.shape)
        layer64 = type(layer32).from_config({**layer32.get_config(), "dtype": F64})
        layer64.ensure_built(x.shape)
        layer64.set_weights(layer32.get_weights())
        y32 = layer32(x.astype(np.float32))
        assert y32.dtype == np.float32
        np.testing.assert_allclose(y32, layer64(x), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------
# output shapes: Keras' formulas by hand, None sizes included


@pytest.mark.parametrize("spatial", [(9,), (None,), (7, 8), (None, 6), (5, None, 6)])
@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), (1, 2)])
def test_conv_output_shape_is_keras(spatial, padding, strides, dilation):
    rank = len(spatial)
    if padding == "causal" and rank != 1:
        return
    cls = (layers.Conv1D, layers.Conv2D, layers.Conv3D)[rank - 1]
    want = tuple(keras_conv_length(n, 3, strides, dilation, padding) for n in spatial)
    for data_format in ("channels_last", "channels_first"):
        layer = cls(5, 3, strides=strides, padding=padding, dilation_rate=dilation,
                    data_format=data_format)
        first = data_format == "channels_first"
        shape = (None, 2, *spatial) if first else (None, *spatial, 2)
        assert layer.compute_output_shape(shape) == (
            (None, 5, *want) if first else (None, *want, 5))
    if None not in spatial:
        y = cls(5, 3, strides=strides, padding=padding, dilation_rate=dilation)(
            rand((2, *spatial, 2)))
        assert y.shape == (2, *want, 5)


@pytest.mark.parametrize("size", [1, 4, 7, None])
@pytest.mark.parametrize("kernel, strides, dilation", [(3, 2, 1), (2, 2, 1), (4, 3, 1),
                                                       (1, 2, 1), (3, 1, 2), (5, 2, 1)])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("output_padding", [None, 0, 1])
def test_conv_transpose_output_shape_is_keras(size, kernel, strides, dilation, padding,
                                              output_padding):
    if output_padding is not None and output_padding >= strides:
        return
    extent = (kernel - 1) * dilation + 1
    if size is None:
        want = None
    elif output_padding is None:  # keras.src.utils.conv_utils.deconv_output_length
        want = size * strides + max(extent - strides, 0) if padding == "valid" else size * strides
    else:
        pad = extent // 2 if padding == "same" else 0
        want = (size - 1) * strides + extent - 2 * pad + output_padding
    if want is not None:
        assert keras_transpose_pads(size, kernel, strides, dilation, padding,
                                    output_padding)[0] == want
    layer = layers.Conv1DTranspose(3, kernel, strides=strides, padding=padding,
                                   output_padding=output_padding, dilation_rate=dilation)
    if want is not None and want < 1:  # an empty output: Keras' backends fail on it too
        with pytest.raises(ValueError, match="`output_padding`"):
            layer.compute_output_shape((None, size, 2))
        return
    assert layer.compute_output_shape((None, size, 2)) == (None, want, 3)
    square = layers.Conv2DTranspose(3, kernel, strides=strides, padding=padding,
                                    output_padding=output_padding, dilation_rate=dilation,
                                    data_format="channels_first")
    assert square.compute_output_shape((None, 2, size, 4)) == (
        None, 3, want, square.compute_output_shape((None, 2, 4, 4))[-1])
    if size is not None:
        assert layer(rand((2, size, 2))).shape == (2, want, 3)


def test_depthwise_and_separable_output_shapes():
    assert layers.DepthwiseConv2D(3, depth_multiplier=2).compute_output_shape(
        (None, 9, None, 4)) == (None, 7, None, 8)
    assert layers.DepthwiseConv1D(3, strides=2, padding="same",
                                  data_format="channels_first").compute_output_shape(
        (None, 3, 9)) == (None, 3, 5)
    assert layers.SeparableConv2D(6, 3, padding="same", strides=2).compute_output_shape(
        (None, None, 9, 4)) == (None, None, 5, 6)
    assert layers.SeparableConv1D(6, 3, depth_multiplier=3).compute_output_shape(
        (None, 9, 4)) == (None, 7, 6)


def test_param_counts_and_weight_layouts_follow_keras():
    def built(layer, shape):
        layer.ensure_built(shape)
        return [(w.name.split("/")[-1], w.shape) for w in layer.weights], layer.count_params()

    assert built(layers.Conv1D(8, 3, groups=2, name="a"), (None, 10, 4)) == (
        [("kernel", (3, 2, 8)), ("bias", (8,))], 56)
    assert built(layers.Conv3D(4, (1, 2, 3), name="b"), (None, 5, 5, 5, 2)) == (
        [("kernel", (1, 2, 3, 2, 4)), ("bias", (4,))], 52)
    assert built(layers.Conv2DTranspose(5, 3, name="c"), (None, 4, 4, 2)) == (
        [("kernel", (3, 3, 5, 2)), ("bias", (5,))], 95)
    assert built(layers.DepthwiseConv2D(3, depth_multiplier=2, name="d"), (None, 6, 6, 3)) == (
        [("kernel", (3, 3, 3, 2)), ("bias", (6,))], 60)
    assert built(layers.SeparableConv2D(8, 3, depth_multiplier=2, name="e"),
                 (None, 6, 6, 3)) == (
        [("depthwise_kernel", (3, 3, 3, 2)), ("pointwise_kernel", (1, 1, 6, 8)),
         ("bias", (8,))], 54 + 48 + 8)
    assert built(layers.SeparableConv1D(4, 2, use_bias=False, data_format="channels_first",
                                        name="f"), (None, 3, 9)) == (
        [("depthwise_kernel", (2, 3, 1)), ("pointwise_kernel", (1, 3, 4))], 18)


@pytest.fixture
def one_thread():
    """Kernels on one thread: finite differences make hundreds of tiny calls,
    for which waking threads costs more than the work."""
    threads = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(threads)


# ----------------------------------------------------------------------------
# gradients: inputs and weights against central differences


GRADIENT_LAYERS = [
    (lambda: layers.Conv1D(3, 3, padding="causal", dilation_rate=2, activation="tanh",
                           dtype=F64), (2, 7, 2)),
    (lambda: layers.Conv1D(4, 2, strides=2, groups=2, padding="same",
                           data_format="channels_first", dtype=F64), (1, 4, 7)),
    (lambda: layers.Conv1D(2, 3, activation="relu", dtype=F64), (2, 6, 2)),
    (lambda: layers.Conv2D(4, 2, groups=2, activation="sigmoid", dtype=F64), (1, 4, 5, 2)),
    (lambda: layers.Conv3D(2, 2, strides=(1, 2, 1), padding="same", dtype=F64), (1, 3, 4, 3, 2)),
    (lambda: layers.Conv3D(2, 2, data_format="channels_first", dtype=F64), (1, 2, 3, 3, 3)),
    (lambda: layers.Conv1DTranspose(2, 3, strides=2, output_padding=1, dtype=F64), (1, 4, 2)),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same", activation="tanh",
                                    data_format="channels_first", dtype=F64), (1, 2, 3, 2)),
    (lambda: layers.Conv3DTranspose(2, 2, strides=2, dtype=F64), (1, 2, 2, 2, 1)),
    (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2, padding="same", dtype=F64), (2, 6, 2)),
    (lambda: layers.DepthwiseConv2D(2, depth_multiplier=2, activation="relu",
                                    data_format="channels_first", dtype=F64), (1, 2, 4, 4)),
    (lambda: layers.SeparableConv1D(3, 3, depth_multiplier=2, activation="tanh", dtype=F64),
     (2, 6, 2)),
    (lambda: layers.SeparableConv2D(3, 2, strides=2, padding="same", dtype=F64), (1, 5, 4, 2)),
]


@pytest.mark.parametrize("make, x_shape", GRADIENT_LAYERS)
@pytest.mark.usefixtures("one_thread")
def test_input_gradient(make, x_shape):
    # Away from relu's kink: the inputs are far from making a pre-activation 0.
    check_input_gradient(make(), rand(x_shape, 9))


@pytest.mark.parametrize("make, x_shape", GRADIENT_LAYERS)
@pytest.mark.usefixtures("one_thread")
def test_weight_gradients(make, x_shape):
    layer = make()
    out = layer.compute_output_shape((None, *x_shape[1:]))
    assert_gradients([layer, layers.Flatten(dtype=F64)],
                     x_shape, (x_shape[0], int(np.prod(out[1:]))))


def test_backward_accumulates_and_skips_what_is_not_needed():
    layer = layers.SeparableConv1D(2, 2, dtype=F64)
    x = rand((2, 5, 3))
    layer.ensure_built(x.shape)
    y, ctx = layer.forward(x)
    dx = layer.backward(ctx, np.ones_like(y))
    grads = [w.grad.copy() for w in layer.weights]
    layer.backward(layer.forward(x)[1], np.ones_like(y), need_dx=False)
    for w, g in zip(layer.weights, grads):
        np.testing.assert_allclose(w.grad, 2 * g)  # a second call adds its gradients
    layer.trainable = False
    assert layer.backward(ctx, np.ones_like(y), need_dx=False) is None
    assert dx.shape == x.shape


# ----------------------------------------------------------------------------
# Keras' argument errors, naming the argument


@pytest.mark.parametrize("make, argument", [
    (lambda: layers.Conv2D(4, 3, padding="causal"), "padding"),
    (lambda: layers.Conv3D(4, 3, padding="causal"), "padding"),
    (lambda: layers.Conv1DTranspose(4, 3, padding="causal"), "padding"),
    (lambda: layers.DepthwiseConv1D(3, padding="causal"), "padding"),
    (lambda: layers.Conv1D(4, 3, strides=2, dilation_rate=2), "strides"),
    (lambda: layers.Conv2D(4, 3, strides=(1, 2), dilation_rate=(2, 1)), "dilation_rate"),
    (lambda: layers.Conv2DTranspose(4, 3, strides=2, dilation_rate=2), "strides"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier"),
    (lambda: layers.SeparableConv1D(4, 3, depth_multiplier=-1), "depth_multiplier"),
    (lambda: layers.DepthwiseConv1D(3, depth_multiplier=1.5), "depth_multiplier"),
    (lambda: layers.Conv1D(6, 3, groups=4), "groups"),
    (lambda: layers.Conv3D(4, 3, groups=0), "groups"),
    (lambda: layers.Conv2D(4, 3, groups="2"), "groups"),
    (lambda: layers.Conv1D(4, (3, 3)), "kernel_size"),
    (lambda: layers.Conv3D(4, (3, 3)), "kernel_size"),
    (lambda: layers.Conv3D(4, 3, strides=(1, 1)), "strides"),
    (lambda: layers.Conv1DTranspose(4, 3, strides=2, output_padding=2), "output_padding"),
    (lambda: layers.Conv2DTranspose(4, 3, output_padding=(0, 1)), "output_padding"),
    (lambda: layers.Conv3DTranspose(4, 3, output_padding=-1), "output_padding"),
    (lambda: layers.Conv2DTranspose(4, 3, output_padding=(1, 1, 1)), "output_padding"),
    (lambda: layers.SeparableConv2D(0, 3), "filters"),
    (lambda: layers.Conv3DTranspose(None, 3), "filters"),
    (lambda: layers.DepthwiseConv2D(3, data_format="NCHW"), "data_format"),
])
def test_bad_arguments_name_the_argument(make, argument):
    with pytest.raises((ValueError, TypeError), match=f"`{argument}`"):
        make()


def test_groups_must_divide_the_input_channels():
    with pytest.raises(ValueError, match=r"`groups`.*groups=2.*3 channels"):
        layers.Conv1D(4, 3, groups=2)(fastconv.Input((8, 3)))


@pytest.mark.parametrize("layer, shape", [
    (layers.Conv1D(2, 3), (1, 5, 5, 1)),
    (layers.Conv3D(2, 3), (1, 5, 5, 1)),
    (layers.Conv1DTranspose(2, 3), (1, 5)),
    (layers.DepthwiseConv2D(3), (1, 5, 5, 5, 1)),
    (layers.SeparableConv1D(2, 3), (1, 5, 5, 1)),
])
def test_inputs_of_the_wrong_rank_are_rejected(layer, shape):
    with pytest.raises(ValueError, match=f"expected ndim={layer.rank + 2}, found ndim={len(shape)}"):
        layer(np.zeros(shape))


def test_valid_window_larger_than_the_input_is_rejected():
    with pytest.raises(ValueError, match="smaller than"):
        layers.Conv1D(2, 4, dilation_rate=2).compute_output_shape((None, 6, 1))
    with pytest.raises(ValueError, match="smaller than"):
        layers.DepthwiseConv2D(3).compute_output_shape((None, 2, 5, 1))
    assert layers.Conv1D(2, 9, padding="causal").compute_output_shape((None, 4, 1)) == (
        None, 4, 2)


# ----------------------------------------------------------------------------
# configs and names


CONFIG_CASES = [
    (lambda: layers.Conv1D(4, 3, strides=1, padding="causal", dilation_rate=2, groups=2,
                           activation="relu", kernel_regularizer="l2", dtype=F64), (2, 9, 4)),
    (lambda: layers.Conv3D(2, (1, 2, 2), data_format="channels_first", use_bias=False,
                           bias_constraint="non_neg", dtype=F64), (1, 3, 3, 4, 4)),
    (lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1,
                                    activation="tanh", dtype=F64), (2, 3, 3, 2)),
    (lambda: layers.Conv3DTranspose(2, 2, dilation_rate=(1, 2, 1), kernel_initializer="ones",
                                    dtype=F64), (1, 2, 3, 2, 2)),
    (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2, depthwise_regularizer="l1",
                                    depthwise_constraint="non_neg", dtype=F64), (2, 6, 2)),
    (lambda: layers.DepthwiseConv2D(2, strides=2, data_format="channels_first",
                                    bias_initializer="ones", dtype=F64), (1, 2, 4, 4)),
    (lambda: layers.SeparableConv1D(3, 2, depth_multiplier=2, pointwise_regularizer="l2",
                                    pointwise_constraint="non_neg", dtype=F64), (2, 7, 2)),
    (lambda: layers.SeparableConv2D(2, 3, padding="same", use_bias=False,
                                    activity_regularizer="l2", dtype=F64), (1, 5, 5, 3)),
]


@pytest.mark.parametrize("make, x_shape", CONFIG_CASES)
def test_config_round_trip(make, x_shape):
    layer = make()
    x = rand(x_shape, 11)
    y = layer(x)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone.ensure_built(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), y)
    assert "rank" not in config  # a thin class's config is Keras'


def test_config_contents_follow_keras():
    config = layers.Conv1D(8, 3, padding="CAUSAL").get_config()
    assert config["kernel_size"] == [3] and config["strides"] == [1]
    assert config["padding"] == "causal" and config["groups"] == 1
    config = layers.Conv2DTranspose(8, 3).get_config()
    assert config["output_padding"] is None and config["dilation_rate"] == [1, 1]
    assert layers.Conv3DTranspose(8, 3, output_padding=0).get_config()["output_padding"] == [
        0, 0, 0]
    config = layers.DepthwiseConv2D(3, depth_multiplier=2).get_config()
    assert config["depth_multiplier"] == 2 and "filters" not in config
    assert config["depthwise_initializer"]["class_name"] == "GlorotUniform"
    config = layers.SeparableConv1D(4, 3).get_config()
    assert {"depthwise_initializer", "pointwise_initializer", "pointwise_regularizer",
            "depthwise_constraint"} <= set(config)


def test_automatic_names_and_aliases_follow_keras():
    fastconv.backend.clear_session()
    names = [cls(2, 3).name for cls in (layers.Conv1D, layers.Conv3D, layers.Conv1DTranspose,
                                        layers.Conv2DTranspose, layers.Conv3DTranspose,
                                        layers.SeparableConv1D, layers.SeparableConv2D)]
    names += [layers.DepthwiseConv1D(3).name, layers.DepthwiseConv2D(3).name]
    assert names == ["conv1d", "conv3d", "conv1d_transpose", "conv2d_transpose",
                     "conv3d_transpose", "separable_conv1d", "separable_conv2d",
                     "depthwise_conv1d", "depthwise_conv2d"]
    assert layers.Convolution1D is layers.Conv1D and layers.Convolution3D is layers.Conv3D
    assert layers.Convolution2DTranspose is layers.Conv2DTranspose
    assert layers.SeparableConvolution2D is layers.SeparableConv2D
    # a config may name the alias
    from fastconv.layers import registry
    assert registry.resolve("Convolution1DTranspose") is layers.Conv1DTranspose


# ----------------------------------------------------------------------------
# Conv1D(relu) + MaxPooling1D: one fused kernel call, the unfused bits


def plan_groups(model):
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    model._invalidate_plan()
    return [tuple(index[id(layer)] for layer in step.layers)
            for step in model._graph_plan().steps]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv1d_max_pool1d_fusion_gives_the_unfused_bits(monkeypatch, dtype):
    fastconv.utils.set_random_seed(4)
    model = models.Sequential([
        layers.InputLayer((17, 3), dtype=dtype),
        layers.Conv1D(6, 3, activation="relu", padding="causal", dilation_rate=2, dtype=dtype),
        layers.MaxPooling1D(2, dtype=dtype),
        layers.Conv1D(4, 2, activation="relu", strides=2, padding="same", dtype=dtype),
        layers.MaxPooling1D(3, strides=1, padding="same", dtype=dtype),
        layers.Conv1D(4, 2, activation="relu", groups=2, dtype=dtype),  # groups: not fused
        layers.MaxPooling1D(2, dtype=dtype),
        layers.Flatten(dtype=dtype), layers.Dense(3, activation="softmax", dtype=dtype),
    ])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((5, 17, 3)).astype(dtype)
    y = np.arange(5) % 3
    assert plan_groups(model) == [(0, 1), (2, 3), (4,), (5,), (6,), (7,)]

    def outputs_and_gradients():
        outputs, state = model.compute_forward(x, training=True)
        model.compute_gradients(state, y, outputs)
        return [outputs[0], *(w.grad.copy() for w in model.trainable_weights)]

    fused = outputs_and_gradients()
    monkeypatch.setattr(passes, "conv_pool_fusable", lambda conv, pool: False)
    assert plan_groups(model) == [(i,) for i in range(8)]
    unfused = outputs_and_gradients()
    for a, b in zip(fused, unfused):
        np.testing.assert_array_equal(a, b)
    assert all(np.abs(a).sum() > 0 for a in fused[1:])


def test_only_same_rank_max_pools_fuse():
    conv1, conv2 = layers.Conv1D(2, 3, activation="relu"), layers.Conv2D(2, 3, activation="relu")
    assert passes.conv_pool_fusable(conv1, layers.MaxPooling1D())
    assert not passes.conv_pool_fusable(conv1, layers.MaxPooling2D())
    assert not passes.conv_pool_fusable(conv2, layers.MaxPooling1D())
    assert not passes.conv_pool_fusable(conv1, layers.AveragePooling1D())
    assert not passes.conv_pool_fusable(layers.Conv3D(2, 3, activation="relu"),
                                        layers.MaxPooling3D())
    conv1.build((None, 8, 2))
    with pytest.raises(TypeError, match="MaxPooling1D"):
        conv1.forward_max_pooled(np.zeros((1, 8, 2), np.float32), layers.MaxPooling2D())

"""fastconv.layers: shapes, parameter counts, weights, forward values,
gradients, Dropout, constraints, argument checking, configs, names and
symbolic calls, for every layer type.

Every expected value comes from outside the layer code: Keras' documented
rules and numbers, hand-computed arrays, or the plain NumPy below
(``naive_conv2d`` / ``naive_pool2d`` pad explicitly, as TensorFlow does,
and slide over the padded input; they share nothing with
``fastconv.reference`` or ``fastconv.ops``). Gradients are checked against
central differences: the weights' through ``fastconv.testing.check_gradients``
on a small float64 model, the inputs' with :func:`check_input_gradient`.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import fastconv
from fastconv import backend, constraints, layers, models, regularizers, utils
from fastconv.testing import check_gradients

F64 = "float64"


# ----------------------------------------------------------------------------
# independent NumPy computations


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after), odd extra after."""
    extent = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def naive_conv2d(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """NHWC x, HWIO w: pad explicitly, then add one shifted slice per kernel tap."""
    (sh, sw), (dh, dw) = strides, dilation
    kh, kw = w.shape[:2]
    if padding == "same":
        ph = same_padding(x.shape[1], kh, sh, dh)
        pw = same_padding(x.shape[2], kw, sw, dw)
        x = np.pad(x, ((0, 0), ph, pw, (0, 0)))
    oh = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            y += np.einsum("nhwc,cf->nhwf", patch, w[i, j])
    return y if b is None else y + b


def naive_pool2d(x, pool, strides, padding, mode):
    """NHWC pooling; "same" pads with NaN, which neither max nor mean counts (Keras)."""
    (kh, kw), (sh, sw) = pool, strides
    x = x.astype(np.float64)
    if padding == "same":
        ph = same_padding(x.shape[1], kh, sh, 1)
        pw = same_padding(x.shape[2], kw, sw, 1)
        x = np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=np.nan)
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    reduce = np.nanmax if mode == "max" else np.nanmean
    y = np.empty((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            y[:, i, j] = reduce(x[:, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(1, 2))
    return y


def keras_conv_size(n: int, k: int, s: int, d: int, padding: str) -> int:
    """Keras' documented output size: ceil(n / s) for "same", else
    floor((n - (k - 1) d - 1) / s) + 1."""
    if padding == "same":
        return math.ceil(n / s)
    return (n - (k - 1) * d - 1) // s + 1


def check_input_gradient(layer, x, training=True, seed=0, rtol=1e-6, atol=1e-9):
    """Compare ``layer.backward``'s dL/dx with central differences of
    L = sum(forward(x) * r) for a fixed random r."""
    x = np.asarray(x, dtype=F64)
    layer.ensure_built(x.shape)
    r = np.random.default_rng(seed).standard_normal(layer.compute_output_shape(x.shape))

    def loss(xv):
        if isinstance(layer, layers.Dropout) and layer.seed is not None:
            layer._rng = np.random.default_rng(layer.seed)
        value = float(np.sum(layer.forward(xv.copy(), training=training) * r))
        for attr in ("_x", "_z", "_y", "_mask", "_argmax"):
            if hasattr(layer, attr):
                setattr(layer, attr, None)
        return value

    if isinstance(layer, layers.Dropout) and layer.seed is not None:
        layer._rng = np.random.default_rng(layer.seed)
    layer.forward(x.copy(), training=training)
    dx = layer.backward(r.copy(), need_dx=True)
    assert dx.shape == x.shape
    numeric = np.zeros_like(x)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss(up) - loss(down)) / (2 * h)
    np.testing.assert_allclose(dx, numeric, rtol=rtol, atol=atol)


def gradient_model(layer_list, x_shape, y_shape, loss="mean_squared_error", seed=0):
    """A compiled float64 Sequential, with inputs and targets for check_gradients."""
    rng = np.random.default_rng(seed)
    model = models.Sequential([layers.InputLayer(shape=x_shape[1:], dtype=F64), *layer_list])
    model.compile(optimizer="sgd", loss=loss)
    x = rng.standard_normal(x_shape)
    if loss == "categorical_crossentropy":
        y = np.eye(y_shape[-1])[rng.integers(0, y_shape[-1], y_shape[0])]
    elif loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, y_shape[-1], y_shape[0])
    else:
        y = rng.standard_normal(y_shape)
    return model, x, y


def assert_gradients(layer_list, x_shape, y_shape, loss="mean_squared_error"):
    model, x, y = gradient_model(layer_list, x_shape, y_shape, loss)
    errors = check_gradients(model, x, y)
    # every trainable weight was checked
    assert set(errors) == {w.name for w in model.trainable_weights}
    assert errors


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


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
    ((9, 9, 1), 2, 3, 2, "valid", 2, (3, 3)),
    ((9, 9, 1), 2, 3, 2, "same", 2, (5, 5)),
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
    np.testing.assert_array_equal(layer.forward(x), x)


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
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
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
        y = layer.forward(x, training=True)
        assert layer.backward(np.ones_like(y), need_dx=False) is None


def test_conv2d_weight_gradients_by_hand():
    # L = sum(conv(x)): dL/dkernel[i, j] = sum of the pixels tap (i, j) reads; dL/dbias = #outputs
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    conv = layers.Conv2D(1, 2, dtype=F64)
    conv.ensure_built(x.shape)
    y = conv.forward(x, training=True)
    dx = conv.backward(np.ones_like(y))
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
    ({"strides": 2, "dilation_rate": 2, "padding": "same"}, (2, 7, 7, 2), 48),
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

    def wrong_backward(dy, need_dx=True, activation_done=False):
        dx = original(dy, need_dx, activation_done)
        dense.kernel.grad *= 1.01
        return dx

    dense.backward = wrong_backward
    with pytest.raises(AssertionError, match="Gradient check failed"):
        check_gradients(model, x, y)


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
    y = layer.forward(x, training=True)
    dx = layer.backward(np.full_like(x, 3.0))
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
    (lambda: layers.Conv2D(8, 3, groups=2), "groups"),
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
    (lambda: layers.Softmax(axis=1), "axis"),
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

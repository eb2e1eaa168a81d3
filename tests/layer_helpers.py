"""Independent NumPy computations and helpers for the layer tests.

``naive_conv2d`` / ``naive_pool2d`` pad explicitly, as TensorFlow does, and
slide over the padded input; they share nothing with ``fastconv.reference``
or ``fastconv.ops``. Gradients are checked against central differences: the
weights' through ``fastconv.testing.check_gradients`` on a small float64
model, the inputs' with :func:`check_input_gradient`.
"""

from __future__ import annotations

import math

import numpy as np

from fastconv import layers, models
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
        return float(np.sum(layer.forward(xv.copy(), training=training)[0] * r))

    if isinstance(layer, layers.Dropout) and layer.seed is not None:
        layer._rng = np.random.default_rng(layer.seed)
    _, ctx = layer.forward(x.copy(), training=training)
    dx = layer.backward(ctx, r.copy(), need_dx=True)
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

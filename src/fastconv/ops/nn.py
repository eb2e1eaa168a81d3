"""Keras' neural-network ops: every activation op of ``keras.ops`` (relu ...
sparsemax), normalize, layer_normalization, rms_normalization, one_hot, and (from
``fastconv.ops.nn_conv``) convolution and pooling of rank 1 to 3.

The activations reuse ``fastconv.activations`` (forward and backward), so a
layer's ``activation="gelu"`` and ``ops.gelu`` compute the same values and
gradients; note that Keras' ``ops.gelu`` defaults to ``approximate=True``
while the activation defaults to the exact form.

``conv``, ``depthwise_conv``, ``separable_conv``, ``conv_transpose``,
``max_pool`` and ``average_pool`` take Keras' arguments and call fastconv's
kernel functions (channels-last activations, Keras' kernel layouts);
``data_format="channels_first"`` moves the channels around them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv import activations as act
from fastconv.ops import numpy_ops as _np
from fastconv.ops.core import Primitive, apply, check_axis, check_dtype, shape_of
from fastconv.ops.nn_conv import (
    average_pool,
    conv,
    conv_transpose,
    depthwise_conv,
    max_pool,
    separable_conv,
)

__all__ = [
    "average_pool", "batch_normalization", "celu", "conv", "conv_transpose", "depthwise_conv", "elu", "gelu", "glu",
    "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "layer_normalization", "leaky_relu", "log_sigmoid", "log_softmax", "max_pool", "moments", "normalize",
    "one_hot", "relu", "relu6", "rms_normalization", "selu", "separable_conv", "sigmoid",
    "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid",
    "sparsemax", "squareplus", "swish", "tanh_shrink", "threshold",
]


def _activation(name: str, forward: Any, backward: Any) -> Primitive:
    """A Primitive from an activation's ``forward(x, **kw)`` and
    ``backward(dy, x, y, **kw)``."""
    return Primitive(name, forward, lambda dy, out, x, **kw: (backward(dy, x, out, **kw),),
                     ("x",))


_RELU = _activation("relu", act.relu, act.relu_backward)
_RELU6 = _activation("relu6", act.relu6, act.relu6_backward)
_SIGMOID = _activation("sigmoid", act.sigmoid, act.sigmoid_backward)
_SPARSE_SIGMOID = _activation("sparse_sigmoid", act.sparse_sigmoid, act.sparse_sigmoid_backward)
_HARD_SIGMOID = _activation("hard_sigmoid", act.hard_sigmoid, act.hard_sigmoid_backward)
_HARD_SILU = _activation("hard_silu", act.hard_silu, act.hard_silu_backward)
_LOG_SIGMOID = _activation("log_sigmoid", act.log_sigmoid, act.log_sigmoid_backward)
_SOFTMAX = _activation("softmax", act.softmax, act.softmax_backward)
_LOG_SOFTMAX = _activation("log_softmax", act.log_softmax, act.log_softmax_backward)
_SPARSEMAX = _activation("sparsemax", act.sparsemax, act.sparsemax_backward)
_GELU = _activation("gelu", act.gelu, act.gelu_backward)
_SILU = _activation("silu", act.silu, act.silu_backward)
_LEAKY_RELU = _activation("leaky_relu", act.leaky_relu, act.leaky_relu_backward)
_ELU = _activation("elu", act.elu, act.elu_backward)
_SELU = _activation("selu", act.selu, act.selu_backward)
_CELU = _activation("celu", act.celu, act.celu_backward)
_GLU = _activation("glu", act.glu, act.glu_backward)
_SOFTPLUS = _activation("softplus", act.softplus, act.softplus_backward)
_SOFTSIGN = _activation("softsign", act.softsign, act.softsign_backward)
_SQUAREPLUS = _activation("squareplus", act.squareplus, act.squareplus_backward)
_SOFT_SHRINK = _activation("soft_shrink", act.soft_shrink, act.soft_shrink_backward)
_HARD_SHRINK = _activation("hard_shrink", act.hard_shrink, act.hard_shrink_backward)
_TANH_SHRINK = _activation("tanh_shrink", act.tanh_shrink, act.tanh_shrink_backward)
_HARD_TANH = _activation("hard_tanh", act.hard_tanh, act.hard_tanh_backward)
_SPARSE_PLUS = _activation("sparse_plus", act.sparse_plus, act.sparse_plus_backward)
_THRESHOLD = _activation("threshold", act.threshold, act.threshold_backward)


def _number(value: Any, name: str, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Invalid value for argument `{name}` of `{op}`: expected a number, "
                        f"received {name}={value!r}.")
    return float(value)


def relu(x: Any) -> Any:
    """``max(x, 0)``.

    Returns
    -------
    tensor
    """
    return apply(_RELU, (x,))


def relu6(x: Any) -> Any:
    """``min(max(x, 0), 6)``.

    Returns
    -------
    tensor
    """
    return apply(_RELU6, (x,))


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))``.

    Returns
    -------
    tensor
    """
    return apply(_SIGMOID, (x,))


def hard_sigmoid(x: Any) -> Any:
    """``relu6(x + 3) / 6``, Keras 3's piecewise-linear sigmoid.

    Returns
    -------
    tensor
    """
    return apply(_HARD_SIGMOID, (x,))


def softmax(x: Any, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x))`` over ``axis``.

    Returns
    -------
    tensor
    """
    return apply(_SOFTMAX, (x,), {"axis": check_axis(axis, allow_none=False)})


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``log(softmax(x))`` over ``axis``, computed without forming the softmax.

    Returns
    -------
    tensor
    """
    return apply(_LOG_SOFTMAX, (x,), {"axis": check_axis(axis, allow_none=False)})


def gelu(x: Any, approximate: bool = True) -> Any:
    """Gaussian error linear unit; the tanh approximation by default, as Keras' op.

    Returns
    -------
    tensor
    """
    if not isinstance(approximate, (bool, np.bool_)):
        raise TypeError("Invalid value for argument `approximate` of `gelu`: expected True "
                        f"or False, received approximate={approximate!r}.")
    return apply(_GELU, (x,), {"approximate": bool(approximate)})


def silu(x: Any) -> Any:
    """``x * sigmoid(x)``.

    Returns
    -------
    tensor
    """
    return apply(_SILU, (x,))


def swish(x: Any) -> Any:
    """``x * sigmoid(x)`` (the same as ``silu``).

    Returns
    -------
    tensor
    """
    return apply(_SILU, (x,), name="swish")


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Any:
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Returns
    -------
    tensor
    """
    return apply(_LEAKY_RELU, (x,),
                 {"negative_slope": _number(negative_slope, "negative_slope", "leaky_relu")})


def elu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Returns
    -------
    tensor
    """
    return apply(_ELU, (x,), {"alpha": _number(alpha, "alpha", "elu")})


def selu(x: Any) -> Any:
    """Scaled ELU with Keras' constants.

    Returns
    -------
    tensor
    """
    return apply(_SELU, (x,))


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))``, never overflowing.

    Returns
    -------
    tensor
    """
    return apply(_SOFTPLUS, (x,))


def softsign(x: Any) -> Any:
    """``x / (1 + |x|)``.

    Returns
    -------
    tensor
    """
    return apply(_SOFTSIGN, (x,))


def hard_silu(x: Any) -> Any:
    """``x * hard_sigmoid(x)``: 0 below -3, ``x`` above 3, ``x (x + 3) / 6`` between.

    Returns
    -------
    tensor
    """
    return apply(_HARD_SILU, (x,))


def hard_swish(x: Any) -> Any:
    """The same as ``hard_silu``.

    Returns
    -------
    tensor
    """
    return apply(_HARD_SILU, (x,), name="hard_swish")


def sparse_sigmoid(x: Any) -> Any:
    """0 for ``x <= -1``, ``(x + 1) / 2`` for ``-1 < x < 1``, 1 from 1 up.

    Returns
    -------
    tensor
    """
    return apply(_SPARSE_SIGMOID, (x,))


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x)) = -softplus(-x)``.

    Returns
    -------
    tensor
    """
    return apply(_LOG_SIGMOID, (x,))


def celu(x: Any, alpha: float = 1.0) -> Any:
    """``max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``.

    Returns
    -------
    tensor
    """
    alpha = _number(alpha, "alpha", "celu")
    if alpha == 0:
        raise ValueError("Invalid value for argument `alpha` of `celu`: expected a non-zero "
                         "number, received alpha=0.")
    return apply(_CELU, (x,), {"alpha": alpha})


def glu(x: Any, axis: int = -1) -> Any:
    """``a * sigmoid(b)``, ``a`` and ``b`` the halves of ``x`` along ``axis``
    (whose size must be even).

    Returns
    -------
    tensor, half as long as ``x`` along ``axis``
    """
    return apply(_GLU, (x,), {"axis": _int_axis(axis, "glu")})


def sparsemax(x: Any, axis: int = -1) -> Any:
    """The projection of ``x`` onto the probability simplex along ``axis``:
    ``max(x - tau, 0)`` summing to 1.

    Returns
    -------
    tensor
    """
    return apply(_SPARSEMAX, (x,), {"axis": _int_axis(axis, "sparsemax")})


def squareplus(x: Any, b: float = 4) -> Any:
    """``(x + sqrt(x^2 + b)) / 2``.

    Returns
    -------
    tensor
    """
    b = _number(b, "b", "squareplus")
    if b < 0:
        raise ValueError("Invalid value for argument `b` of `squareplus`: expected a "
                         f"non-negative number, received b={b!r}.")
    return apply(_SQUAREPLUS, (x,), {"b": b})


def soft_shrink(x: Any, threshold: float = 0.5) -> Any:
    """``x - threshold`` above ``threshold``, ``x + threshold`` below
    ``-threshold``, else 0.

    Returns
    -------
    tensor
    """
    return apply(_SOFT_SHRINK, (x,),
                 {"threshold": _number(threshold, "threshold", "soft_shrink")})


def hard_shrink(x: Any, threshold: float = 0.5) -> Any:
    """``x`` where ``|x| > threshold``, else 0.

    Returns
    -------
    tensor
    """
    return apply(_HARD_SHRINK, (x,),
                 {"threshold": _number(threshold, "threshold", "hard_shrink")})


def tanh_shrink(x: Any) -> Any:
    """``x - tanh(x)``.

    Returns
    -------
    tensor
    """
    return apply(_TANH_SHRINK, (x,))


def hard_tanh(x: Any) -> Any:
    """``x`` clipped to ``[-1, 1]``.

    Returns
    -------
    tensor
    """
    return apply(_HARD_TANH, (x,))


def sparse_plus(x: Any) -> Any:
    """0 for ``x <= -1``, ``(x + 1)^2 / 4`` for ``-1 < x < 1``, ``x`` from 1 up.

    Returns
    -------
    tensor
    """
    return apply(_SPARSE_PLUS, (x,))


def threshold(x: Any, threshold: float, default_value: float) -> Any:
    """``x`` where ``x > threshold``, else ``default_value``.

    Returns
    -------
    tensor
    """
    return apply(_THRESHOLD, (x,),
                 {"threshold": _number(threshold, "threshold", "threshold"),
                  "default_value": _number(default_value, "default_value", "threshold")})


def _int_axis(axis: Any, op: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"Invalid value for argument `axis` of `{op}`: expected an int, "
                        f"received axis={axis!r}.")
    return int(axis)


# ----------------------------------------------------------------------------
# normalization, written with the NumPy-like ops (so they differentiate as any
# composition does)

_EPSILON = 1e-7  # Keras' backend.epsilon()


def _norm_axes(x: Any, axis: Any, op: str) -> list[int]:
    axis = check_axis(axis, allow_none=False)
    rank = len(shape_of(x))
    axes = [axis] if isinstance(axis, int) else list(axis)
    if any(not -rank <= a < rank for a in axes):
        raise ValueError(f"Invalid value for argument `axis` of `{op}`: expected axes of a "
                         f"rank-{rank} tensor, received axis={axis!r}.")
    return sorted(a % rank for a in axes)


def _epsilon(epsilon: Any, op: str) -> float:
    return _EPSILON if epsilon is None else _number(epsilon, "epsilon", op)


def normalize(x: Any, axis: Any = -1, order: int = 2, epsilon: float | None = None) -> Any:
    """``x / max(norm(x), epsilon)`` over ``axis``; for ``order=2``
    ``x * rsqrt(max(sum(x^2), epsilon^2))``, as Keras.

    Parameters
    ----------
    order : int >= 1
    epsilon : float, optional
        Keras' ``backend.epsilon()`` (1e-7) when None.

    Returns
    -------
    tensor
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError("Invalid value for argument `order` of `normalize`: expected an int "
                         f">= 1, received order={order!r}.")
    axes = tuple(_norm_axes(x, axis, "normalize"))
    eps = _epsilon(epsilon, "normalize")
    if order == 2:
        square_sum = _np.sum(_np.square(x), axis=axes, keepdims=True)
        return _np.divide(x, _np.sqrt(_np.maximum(square_sum, eps * eps)))
    norm = _np.power(_np.sum(_np.power(_np.abs(x), order), axis=axes, keepdims=True),
                     1.0 / order)
    return _np.divide(x, _np.maximum(norm, eps))


def layer_normalization(x: Any, gamma: Any = None, beta: Any = None, axis: Any = -1,
                        epsilon: float | None = None) -> Any:
    """``(x - mean) / sqrt(var + epsilon) * gamma + beta``, mean and (biased)
    variance over ``axis``; gamma and beta span those axes.

    Returns
    -------
    tensor
    """
    axes = _norm_axes(x, axis, "layer_normalization")
    eps = _epsilon(epsilon, "layer_normalization")
    mean = _np.mean(x, axis=tuple(axes), keepdims=True)
    centered = _np.subtract(x, mean)
    var = _np.mean(_np.square(centered), axis=tuple(axes), keepdims=True)
    out = _np.divide(centered, _np.sqrt(_np.add(var, eps)))
    rank = len(shape_of(x))
    shape = [shape_of(x)[a] if a in axes else 1 for a in range(rank)]
    if gamma is not None:
        out = _np.multiply(out, _np.reshape(gamma, shape))
    if beta is not None:
        out = _np.add(out, _np.reshape(beta, shape))
    return out


def rms_normalization(x: Any, scale: Any = None, axis: Any = -1,
                      epsilon: float | None = None) -> Any:
    """``x / sqrt(mean(x^2) + epsilon) * scale`` over ``axis``.

    Returns
    -------
    tensor
    """
    axes = tuple(_norm_axes(x, axis, "rms_normalization"))
    eps = _epsilon(epsilon, "rms_normalization")
    out = _np.divide(x, _np.sqrt(_np.add(_np.mean(_np.square(x), axis=axes, keepdims=True),
                                         eps)))
    return out if scale is None else _np.multiply(out, scale)


def moments(x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False) -> Any:
    """The mean and (biased) variance of ``x`` over ``axes``, as Keras'
    ``ops.moments``; ``synchronized`` (cross-device statistics) must be False.

    Returns
    -------
    (mean, variance)
    """
    if synchronized:
        raise ValueError("Invalid value for argument `synchronized` of `moments`: "
                         "cross-device statistics are not supported, received "
                         "synchronized=True.")
    reduced = tuple(_norm_axes(x, axes, "moments"))
    mean = _np.mean(x, axis=reduced, keepdims=True)
    variance = _np.mean(_np.square(_np.subtract(x, mean)), axis=reduced, keepdims=keepdims)
    return (mean if keepdims else _np.squeeze(mean, axis=reduced)), variance


def batch_normalization(x: Any, mean: Any, variance: Any, axis: int, offset: Any = None,
                        scale: Any = None, epsilon: float = 1e-3) -> Any:
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset`` with per-channel
    vectors along ``axis``, as Keras' ``ops.batch_normalization`` (computed as
    ``x * inv + (offset - mean * inv)``, inv = scale / sqrt(variance + epsilon)).

    Returns
    -------
    tensor
    """
    (channel,) = _norm_axes(x, axis, "batch_normalization")
    rank = len(shape_of(x))
    shape = [-1 if a == channel else 1 for a in range(rank)]
    inv = _np.divide(1.0, _np.sqrt(_np.add(variance, _number(epsilon, "epsilon",
                                                             "batch_normalization"))))
    if scale is not None:
        inv = _np.multiply(inv, scale)
    shift = _np.negative(_np.multiply(mean, inv))
    if offset is not None:
        shift = _np.add(shift, offset)
    return _np.add(_np.multiply(x, _np.reshape(inv, shape)), _np.reshape(shift, shape))


# ----------------------------------------------------------------------------
# one_hot

def _one_hot(x: Any, num_classes: int, axis: int, dtype: str) -> np.ndarray:
    x = np.asarray(x).astype(np.int64, copy=False)
    # Indices outside [0, num_classes) give all-zero vectors, as in TensorFlow.
    out = (x[..., None] == np.arange(num_classes)).astype(dtype)
    return np.moveaxis(out, -1, axis)


_ONE_HOT = Primitive("one_hot", _one_hot, None, ("x",))


def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None,
            sparse: bool = False) -> Any:
    """One-hot vectors of length ``num_classes`` for the integer labels ``x``,
    along the new axis ``axis``; labels out of range give zeros.

    Parameters
    ----------
    x : tensor of ints
    num_classes : int
    axis : int
    dtype : str or dtype, optional
        float32 when None.
    sparse : False
        Sparse results are not supported.

    Returns
    -------
    tensor, ``x.shape`` with ``num_classes`` inserted at ``axis``
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes <= 0:
        raise ValueError("Invalid value for argument `num_classes` of `one_hot`: expected a "
                         f"positive int, received num_classes={num_classes!r}.")
    if sparse:
        raise ValueError("Invalid value for argument `sparse` of `one_hot`: sparse tensors "
                         "are not supported, received sparse=True.")
    axis = check_axis(axis, allow_none=False)
    rank = len(shape_of(x)) + 1
    if not isinstance(axis, int) or not -rank <= axis < rank:
        raise ValueError(f"Invalid value for argument `axis` of `one_hot`: expected an int in "
                         f"[{-rank}, {rank}), received axis={axis!r}.")
    return apply(_ONE_HOT, (x,), {"num_classes": int(num_classes), "axis": axis,
                                  "dtype": check_dtype(dtype) or "float32"})

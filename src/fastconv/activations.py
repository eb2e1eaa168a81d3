"""Activation functions with Keras 3's names, defaults and formulas, each
followed by its backward: every function of ``keras.activations`` (linear,
relu, leaky_relu, relu6, sigmoid, tanh, softmax, log_softmax, softplus,
softsign, elu, selu, celu, gelu, silu / swish, mish, exponential,
hard_sigmoid, hard_silu / hard_swish, hard_tanh, log_sigmoid, tanh_shrink,
soft_shrink, hard_shrink, sparse_plus, sparse_sigmoid, squareplus, glu,
sparsemax, threshold).

Every activation ``f`` has a forward ``f(x) -> y`` and a backward
``f_backward(dy, x, y) -> dx`` that takes the forward's input and output as
well as dL/dy and returns dL/dx, using whichever of ``x`` and ``y`` is
cheaper. Results keep the dtype of ``x`` (float32 stays float32); integer
inputs are computed in float32. The forwards are written so that no finite
input raises an overflow, divide-by-zero or invalid-value warning (values may
underflow to 0, which NumPy ignores by default); ``exponential`` overflows to
inf as ``exp`` does. Given a symbolic tensor (inside a Keras-style ``call``)
a forward records itself as a differentiable op instead.

:class:`Activation` bundles a name, a forward and a backward; :func:`get`
turns the identifiers the layers accept (None, a name, an Activation or a
function) into one.

Shapes: any; ``softmax``, ``log_softmax`` and ``sparsemax`` normalise over
``axis``; ``glu`` halves ``axis``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

# SELU's constants (Klambauer et al., 2017), at Keras' precision.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715

# W. J. Cody's rational Chebyshev approximations of erf / erfc (Math. Comp.
# 23, 1969; Netlib SPECFUN CALERF), coefficients highest degree first for
# np.polyval. Interval 1 (|z| <= 0.46875): erf(z) = z * P1(z^2) / Q1(z^2).
_P1 = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02,
       3.77485237685302021e02, 3.20937758913846947e03)
_Q1 = (1.0, 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
       2.84423683343917062e03)
# Interval 2 (0.46875 < |z| <= 4): erfc(|z|) = exp(-z^2) * P2(|z|) / Q2(|z|).
_P2 = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00,
       6.61191906371416295e01, 2.98635138197400131e02, 8.81952221241769090e02,
       1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03)
_Q2 = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
       1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
       3.43936767414372164e03, 1.23033935480374942e03)
# Interval 3 (4 < |z| < 26.543): erfc(|z|) = exp(-z^2) / |z| *
# (1/sqrt(pi) - t * P3(t) / Q3(t)) with t = 1 / z^2; beyond, erfc underflows.
_P3 = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
       1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4)
_Q3 = (1.0, 2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
       6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1
_ERFC_UNDERFLOW = 26.543


def _exp_minus_square(s: np.ndarray) -> np.ndarray:
    """exp(-s^2) as exp(-r^2) * exp(-(s - r)(s + r)), r = s rounded down to a
    multiple of 1/16: r^2 is exact, which keeps erfc's tail accurate (Cody's trick)."""
    r = np.trunc(16.0 * s) / 16.0
    return np.exp(-r * r) * np.exp(-(s - r) * (s + r))


def _erfc(z: np.ndarray) -> np.ndarray:
    """erfc of a float64 array, to about 1e-15 relative error (checked against math.erfc)."""
    # Each interval works on the flat indices of its elements: on the
    # scattered masks an activation map gives, NumPy's boolean indexing is
    # several times slower than flatnonzero plus integer indexing.
    shape, z = z.shape, np.ravel(z)
    y = np.abs(z)
    out = np.full_like(y, np.nan)
    out[np.flatnonzero(y >= _ERFC_UNDERFLOW)] = 0.0

    i = np.flatnonzero(y <= 0.46875)
    w = z[i]
    t = w * w
    out[i] = 1.0 - w * np.polyval(_P1, t) / np.polyval(_Q1, t)

    i = np.flatnonzero((y > 0.46875) & (y <= 4.0))
    s = y[i]
    out[i] = _exp_minus_square(s) * np.polyval(_P2, s) / np.polyval(_Q2, s)

    i = np.flatnonzero((y > 4.0) & (y < _ERFC_UNDERFLOW))
    s = y[i]
    t = 1.0 / (s * s)
    out[i] = (_exp_minus_square(s) / s
              * (_INV_SQRT_PI - t * np.polyval(_P3, t) / np.polyval(_Q3, t)))

    # Intervals 2 and 3 computed erfc(|z|); erfc(z) = 2 - erfc(-z).
    i = np.flatnonzero((z < 0) & (y > 0.46875))
    out[i] = 2.0 - out[i]
    return out.reshape(shape)


def _as_float(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def linear(x: np.ndarray) -> np.ndarray:
    """The identity (Keras returns the input itself)."""
    return _as_float(x)


def linear_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy


def relu(x: np.ndarray, negative_slope: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0) -> np.ndarray:
    """``max(x, 0)`` by default; in general Keras' ``relu``: ``min(x, max_value)``
    for ``x > threshold``, else ``negative_slope * (x - threshold)``.

    At ``x == threshold`` the output is 0 (Keras' example:
    ``relu([-10, -5, 0, 5, 10], threshold=5) == [0, 0, 0, 0, 10]``).
    """
    x = _as_float(x)
    if negative_slope == 0 and max_value is None and threshold == 0:
        return np.maximum(x, 0)
    t = x.dtype.type(threshold)
    y = np.where(x > t, x, x.dtype.type(negative_slope) * (x - t))
    if max_value is not None:
        y = np.minimum(y, x.dtype.type(max_value))
    return y


def relu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray, negative_slope: float = 0.0,
                  max_value: float | None = None, threshold: float = 0.0) -> np.ndarray:
    """``dy`` where ``x > threshold`` (0 at ``x = 0`` for the plain ReLU, as
    TensorFlow and JAX), ``negative_slope * dy`` below, 0 from ``max_value`` up."""
    if (not negative_slope and max_value is None and threshold == 0
            and isinstance(dy, np.ndarray) and isinstance(y, np.ndarray)
            and dy.shape == y.shape and dy.dtype == y.dtype and dy.dtype.kind == "f"
            and dy.dtype.itemsize in (4, 8)):
        # The plain ReLU: y > 0 exactly where x > 0; the compiled kernel is
        # one multithreaded pass.
        from fastconv.ops import kernels

        return kernels.relu_backward(dy, y)
    slope = np.where(x > threshold, dy, negative_slope * dy) if negative_slope else \
        np.where(x > threshold, dy, 0)
    if max_value is not None:
        slope = np.where(x >= max_value, 0, slope)
    return slope


def leaky_relu(x: np.ndarray, negative_slope: float = 0.2) -> np.ndarray:
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise."""
    x = _as_float(x)
    return np.where(x >= 0, x, float(negative_slope) * x)


def leaky_relu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                        negative_slope: float = 0.2) -> np.ndarray:
    return np.where(x > 0, dy, float(negative_slope) * dy)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, computed from ``exp(-|x|)`` so it never overflows."""
    x = _as_float(x)
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * y * (1 - y)


def tanh(x: np.ndarray) -> np.ndarray:
    """The hyperbolic tangent."""
    return np.tanh(_as_float(x))


def tanh_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * (1 - y * y)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` over ``axis``, shifted by the maximum so exp never overflows."""
    x = _as_float(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                     axis: int = -1) -> np.ndarray:
    """``y * (dy - sum(dy * y))`` over ``axis`` (the Jacobian-vector product)."""
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))``, as ``logaddexp(x, 0)`` so it never overflows."""
    return np.logaddexp(_as_float(x), 0)


def softplus_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * sigmoid(x)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    x = _as_float(x)
    # np.where evaluates both branches: clamping keeps expm1 from
    # overflowing on the large positive inputs it then discards.
    return np.where(x > 0, x, float(alpha) * np.expm1(np.minimum(x, 0)))


def elu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                 alpha: float = 1.0) -> np.ndarray:
    """``dy`` for ``x > 0``, else ``dy * alpha * exp(x) = dy * (y + alpha)``."""
    return np.where(x > 0, dy, dy * (y + float(alpha)))


def selu(x: np.ndarray) -> np.ndarray:
    """``scale * elu(x, alpha)`` with Keras' constants."""
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def selu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``scale * dy`` for ``x > 0``, else ``dy * (y + scale * alpha)``."""
    return np.where(x > 0, _SELU_SCALE * dy, dy * (y + _SELU_SCALE * _SELU_ALPHA))


def gelu(x: np.ndarray, approximate: bool = False) -> np.ndarray:
    """Gaussian error linear unit ``x * P(N(0, 1) <= x)``.

    With ``approximate=False`` (Keras' default) this is
    ``0.5 * x * erfc(-x / sqrt(2))``, the exact form written with erfc
    (as TensorFlow and JAX do) so that the tail for negative ``x`` keeps its
    relative accuracy; erfc is computed in float64 by Cody's approximations
    (relative error about 1e-15) and the result rounded to ``x``'s dtype.
    With ``approximate=True`` it is
    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))``.
    """
    x = _as_float(x)
    if approximate:
        return 0.5 * x * (1 + np.tanh(_gelu_tanh_argument(x)))
    x64 = x.astype(np.float64, copy=False)
    y = 0.5 * x64 * _erfc(-_SQRT_HALF * x64)
    return y.astype(x.dtype, copy=False)


def _gelu_tanh_argument(x: np.ndarray) -> np.ndarray:
    # tanh(u) rounds to +-1 in float64 once |u| > 19.1, i.e. |x| > 7.3, so
    # clipping x to [-10, 10] changes no result but keeps x ** 3 finite.
    xc = np.clip(x, -10, 10)
    return _SQRT_2_OVER_PI * (xc + _GELU_CUBIC * xc * xc * xc)


def gelu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                  approximate: bool = False) -> np.ndarray:
    """``dy * (Phi(x) + x * phi(x))`` (exact) or the derivative of the tanh form."""
    if approximate:
        t = np.tanh(_gelu_tanh_argument(x))
        xc = np.clip(x, -10, 10)
        du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * xc * xc)
        return dy * (0.5 * (1 + t) + 0.5 * xc * (1 - t * t) * du)
    x = _as_float(x)
    x64 = x.astype(np.float64, copy=False)
    cdf = 0.5 * _erfc(-_SQRT_HALF * x64)
    # phi(40) = exp(-800) is already 0 in float64; clamping keeps x ** 2 finite.
    xc = np.minimum(np.abs(x64), 40.0)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * xc * xc)
    return dy * (cdf + x64 * pdf).astype(x.dtype, copy=False)


def silu(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)``, also called swish."""
    x = _as_float(x)
    return x * sigmoid(x)


def silu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy * (s + y * (1 - s))`` with ``s = sigmoid(x)``: ``d(x s)/dx = s + x s (1 - s)``."""
    s = sigmoid(x)
    return dy * (s + y * (1 - s))


swish = silu
swish_backward = silu_backward


def relu6(x: np.ndarray) -> np.ndarray:
    """``min(max(x, 0), 6)``."""
    return np.minimum(np.maximum(_as_float(x), 0), 6)


def relu6_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy`` for ``0 < x < 6``, else 0 (as TensorFlow's Relu6Grad)."""
    return np.where((x > 0) & (x < 6), dy, 0)


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """``x / 6 + 0.5`` clipped to ``[0, 1]`` (Keras 3's piecewise-linear sigmoid)."""
    return np.clip(_as_float(x) / 6 + 0.5, 0, 1)


def hard_sigmoid_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where((x > -3) & (x < 3), dy / 6, 0)


def hard_silu(x: np.ndarray) -> np.ndarray:
    """``x * hard_sigmoid(x)``: 0 below -3, ``x`` above 3, ``x (x + 3) / 6`` between
    (also called hard_swish)."""
    x = _as_float(x)
    return x * hard_sigmoid(x)


def hard_silu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy * (2 x + 3) / 6`` for ``-3 < x < 3``, ``dy`` from 3 up, 0 from -3 down."""
    return np.where(x >= 3, dy, np.where(x > -3, dy * (2 * x + 3) / 6, 0))


hard_swish = hard_silu
hard_swish_backward = hard_silu_backward


def mish(x: np.ndarray) -> np.ndarray:
    """``x * tanh(softplus(x))``."""
    x = _as_float(x)
    return x * np.tanh(softplus(x))


def mish_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy * (t + x (1 - t^2) sigmoid(x))`` with ``t = tanh(softplus(x))``."""
    t = np.tanh(softplus(x))
    return dy * (t + x * (1 - t * t) * sigmoid(x))


def exponential(x: np.ndarray) -> np.ndarray:
    """``exp(x)`` (overflows to inf beyond ~88 in float32, as in Keras)."""
    return np.exp(_as_float(x))


def exponential_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * y


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x - logsumexp(x)`` over ``axis``, shifted by the maximum (never overflows)."""
    x = _as_float(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def log_softmax_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                         axis: int = -1) -> np.ndarray:
    """``dy - softmax(x) * sum(dy)`` over ``axis``, with ``softmax(x) = exp(y)``."""
    return dy - np.exp(y) * np.sum(dy, axis=axis, keepdims=True)


def softsign(x: np.ndarray) -> np.ndarray:
    """``x / (1 + |x|)``."""
    x = _as_float(x)
    return x / (1 + np.abs(x))


def softsign_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy / (1 + |x|)^2``, written ``dy (1 - |y|)^2`` so that it never overflows."""
    return dy * np.square(1 - np.abs(y))


def celu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``."""
    x = _as_float(x)
    return np.maximum(x, 0) + float(alpha) * np.expm1(np.minimum(x, 0) / float(alpha))


def celu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                  alpha: float = 1.0) -> np.ndarray:
    """``dy`` for ``x > 0``, else ``dy * exp(x / alpha) = dy * (y / alpha + 1)``."""
    return np.where(x > 0, dy, dy * (y / float(alpha) + 1))


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return -softplus(-_as_float(x))


def log_sigmoid_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * sigmoid(-x)


def hard_tanh(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to ``[-1, 1]``."""
    return np.clip(_as_float(x), -1, 1)


def hard_tanh_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy`` on ``[-1, 1]`` (ends included, as a clip's gradient), else 0."""
    return np.where((x >= -1) & (x <= 1), dy, 0)


def tanh_shrink(x: np.ndarray) -> np.ndarray:
    """``x - tanh(x)``."""
    x = _as_float(x)
    return x - np.tanh(x)


def tanh_shrink_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * np.square(np.tanh(x))


def soft_shrink(x: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``x - threshold`` above ``threshold``, ``x + threshold`` below ``-threshold``,
    else 0."""
    x = _as_float(x)
    t = x.dtype.type(threshold)
    return np.where(x > t, x - t, np.where(x < -t, x + t, 0))


def soft_shrink_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                         threshold: float = 0.5) -> np.ndarray:
    return np.where(np.abs(x) > threshold, dy, 0)


def hard_shrink(x: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``x`` where ``|x| > threshold``, else 0."""
    x = _as_float(x)
    return np.where(np.abs(x) > x.dtype.type(threshold), x, 0)


def hard_shrink_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                         threshold: float = 0.5) -> np.ndarray:
    return np.where(np.abs(x) > threshold, dy, 0)


def sparse_plus(x: np.ndarray) -> np.ndarray:
    """0 for ``x <= -1``, ``(x + 1)^2 / 4`` for ``-1 < x < 1``, ``x`` from 1 up."""
    x = _as_float(x)
    inside = np.clip(x, -1, 1) + 1
    return np.where(x <= -1, 0, np.where(x < 1, inside * inside / 4, x))


def sparse_plus_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(x <= -1, 0, np.where(x < 1, dy * (x + 1) / 2, dy))


def sparse_sigmoid(x: np.ndarray) -> np.ndarray:
    """0 for ``x <= -1``, ``(x + 1) / 2`` for ``-1 < x < 1``, 1 from 1 up."""
    return np.clip((_as_float(x) + 1) / 2, 0, 1)


def sparse_sigmoid_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where((x > -1) & (x < 1), dy / 2, 0)


def squareplus(x: np.ndarray, b: float = 4) -> np.ndarray:
    """``(x + sqrt(x^2 + b)) / 2``, the root taken as ``hypot(x, sqrt(b))`` so
    that it never overflows."""
    x = _as_float(x)
    return (x + np.hypot(x, x.dtype.type(math.sqrt(b)))) / 2


def squareplus_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                        b: float = 4) -> np.ndarray:
    """``dy * (1 + x / sqrt(x^2 + b)) / 2``."""
    root = np.hypot(x, x.dtype.type(math.sqrt(b)))
    with np.errstate(invalid="ignore", divide="ignore"):  # b = 0 at x = 0
        ratio = np.where(root > 0, x / root, 0)
    return dy * (1 + ratio) / 2


def threshold(x: np.ndarray, threshold: float, default_value: float) -> np.ndarray:
    """``x`` where ``x > threshold``, else ``default_value``."""
    x = _as_float(x)
    return np.where(x > x.dtype.type(threshold), x, x.dtype.type(default_value))


def threshold_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray, threshold: float,
                       default_value: float) -> np.ndarray:
    return np.where(x > threshold, dy, 0)


def glu(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``a * sigmoid(b)`` where ``a`` and ``b`` are the two halves of ``x``
    along ``axis`` (whose size must be even): the output is half as long there."""
    x = _as_float(x)
    if x.shape[axis] % 2:
        raise ValueError(f"Invalid input for `glu`: the size of axis {axis} must be even, "
                         f"received an input of shape {x.shape}.")
    a, b = np.split(x, 2, axis=axis)
    return a * sigmoid(b)


def glu_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """``[dy * s, dy * a * s * (1 - s)]`` along ``axis``, with ``s = sigmoid(b)``."""
    a, b = np.split(x, 2, axis=axis)
    s = sigmoid(b)
    return np.concatenate([dy * s, dy * a * s * (1 - s)], axis=axis)


def sparsemax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The Euclidean projection of ``x`` onto the probability simplex along
    ``axis``: ``max(x - tau, 0)``, ``tau`` chosen so that the result sums to 1
    (Martins & Astudillo, 2016)."""
    x = _as_float(x)
    z = np.moveaxis(x, axis, -1)
    # The projection is shift-invariant; shifting by the maximum keeps the
    # support test exact for the largest entry (it is never empty).
    z = z - np.max(z, axis=-1, keepdims=True)
    ranked = -np.sort(-z, axis=-1)
    cumsum = np.cumsum(ranked, axis=-1)
    k = np.arange(1, z.shape[-1] + 1, dtype=x.dtype)
    support = ranked - (cumsum - 1) / k > 0
    size = np.sum(support, axis=-1, keepdims=True)
    tau = (np.take_along_axis(cumsum, size - 1, axis=-1) - 1) / size.astype(x.dtype)
    return np.moveaxis(np.maximum(z - tau, 0), -1, axis)


def sparsemax_backward(dy: np.ndarray, x: np.ndarray, y: np.ndarray,
                       axis: int = -1) -> np.ndarray:
    """``s * (dy - mean of dy over the support)`` with ``s = (y > 0)``."""
    s = (y > 0).astype(dy.dtype)
    mean = np.sum(dy * s, axis=axis, keepdims=True) / np.sum(s, axis=axis, keepdims=True)
    return s * (dy - mean)


class Activation:
    """An activation function with its backward, as the layers use it.

    Parameters
    ----------
    name : str
        What :func:`serialize` writes.
    forward : callable
        ``forward(x) -> y``.
    backward : callable or None
        ``backward(dy, x, y) -> dx``; None for a forward-only function, which
        can run inference but raises when a gradient is requested.
    """

    def __init__(self, name: str, forward: Callable[[np.ndarray], np.ndarray],
                 backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
                 | None = None) -> None:
        self.name = name
        self._forward = forward
        self._backward = backward

    @property
    def has_backward(self) -> bool:
        return self._backward is not None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``y = f(x)``."""
        return self._forward(x)

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dL/dx given dL/dy and the forward's input ``x`` and output ``y``."""
        if self._backward is None:
            raise NotImplementedError(
                f"The activation {self.name!r} is a plain function without a backward, so it "
                "can only be used for inference: to train with it, pass "
                "fastconv.activations.Activation(name, forward, backward)."
            )
        return self._backward(dy, x, y)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x)

    def __repr__(self) -> str:
        return f"<Activation {self.name}>"


def _symbolic_aware(forward: Callable[..., np.ndarray],
                    backward: Callable[..., np.ndarray]) -> Callable[..., Any]:
    """``forward`` that, given a symbolic tensor (inside a Keras-style
    ``call``), records itself as a differentiable op with its backward, as
    ``keras.activations.gelu(x)`` works on Keras tensors; arrays go straight
    to the NumPy forward."""
    signature = inspect.signature(forward)

    @functools.wraps(forward)
    def function(x: Any, *args: Any, **kwargs: Any) -> Any:
        from fastconv.graph.node import KerasTensor  # the graph imports this module
        if not isinstance(x, KerasTensor):
            return forward(x, *args, **kwargs)
        from fastconv.ops.core import Primitive, apply
        bound = signature.bind(x, *args, **kwargs)
        bound.apply_defaults()
        static = dict(list(bound.arguments.items())[1:])
        primitive = Primitive(forward.__name__, forward,
                              lambda dy, out, x, **kw: (backward(dy, x, out, **kw),), ("x",))
        return apply(primitive, (x,), static)

    return function


_NAMES_OF_FUNCTIONS = (
    "linear", "relu", "leaky_relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax",
    "softplus", "softsign", "elu", "selu", "celu", "gelu", "silu", "mish", "exponential",
    "hard_sigmoid", "hard_silu", "hard_tanh", "log_sigmoid", "tanh_shrink", "soft_shrink",
    "hard_shrink", "sparse_plus", "sparse_sigmoid", "squareplus", "glu", "sparsemax",
    "threshold")
# Each public activation takes NumPy arrays and symbolic tensors alike.
for _name in _NAMES_OF_FUNCTIONS:
    globals()[_name] = _symbolic_aware(globals()[_name], globals()[f"{_name}_backward"])
swish, hard_swish = silu, hard_silu


# The names a string may give: every function but threshold, which needs arguments.
_NAMES = tuple(name for name in _NAMES_OF_FUNCTIONS if name != "threshold")
_BUILTINS: dict[str, Activation] = {
    name: Activation(name, globals()[name], globals()[f"{name}_backward"]) for name in _NAMES
}
# Keras' aliases: "swish" is silu and "hard_swish" hard_silu, and they
# serialize under the function's own name.
_BY_NAME: dict[str, Activation] = {**_BUILTINS, "swish": _BUILTINS["silu"],
                                   "hard_swish": _BUILTINS["hard_silu"]}
_BY_FUNCTION: dict[Callable[..., np.ndarray], Activation] = {
    a._forward: a for a in _BUILTINS.values()
}
# Functions whose arguments have no defaults: a name alone cannot stand for them.
_NEEDS_ARGUMENTS = {"threshold": threshold}
_KNOWN = sorted([*_BY_NAME, *_NEEDS_ARGUMENTS])


def _from_partial(identifier: functools.partial) -> Activation | None:
    """``functools.partial(activations.f, keyword=value, ...)`` of a built-in (or
    of ``threshold``) as an Activation with the same keywords on its backward."""
    forward = identifier.func
    if identifier.args or forward not in (*_BY_FUNCTION, threshold):
        return None
    backward = globals()[f"{forward.__name__}_backward"]
    keywords = dict(identifier.keywords)
    try:
        inspect.signature(forward).bind(np.zeros(1), **keywords)
    except TypeError as error:
        raise TypeError(f"Invalid value for argument `activation`: {error}, received "
                        f"activation={identifier!r}.") from None
    return Activation(forward.__name__, identifier, functools.partial(backward, **keywords))


def get(identifier: Any, *, keeps_shape: bool = False) -> Activation:
    """The activation that ``identifier`` names.

    Parameters
    ----------
    identifier : None, str, Activation or callable
        None (linear), a name ("relu", "swish", ...), an :class:`Activation`
        (returned as is), one of this module's functions (its Activation,
        with the backward), a ``functools.partial`` of one with keyword
        arguments (``partial(leaky_relu, negative_slope=0.1)``: trainable
        too, not serializable) or any other function ``f(x) -> y`` (wrapped
        forward-only: fine for inference, an error in training).
    keeps_shape : bool
        Refuse activations that change the shape (``glu``): what the layers
        with a kernel ask, whose output shape is that of their kernel.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        For an unknown name, or with ``keeps_shape`` for ``glu``.
    TypeError
        For any other kind of identifier.
    """
    activation = _resolve(identifier)
    if keeps_shape and _glu_axis(activation) is not None:
        raise ValueError(
            "Invalid value for argument `activation`: 'glu' halves its axis, which a layer "
            "with a kernel cannot give as its output shape; apply layers.Activation('glu') "
            f"after the layer, received activation={identifier!r}.")
    return activation


def _resolve(identifier: Any) -> Activation:
    if identifier is None:
        return _BUILTINS["linear"]
    if isinstance(identifier, str):
        if identifier in _NEEDS_ARGUMENTS:
            raise ValueError(
                f"Invalid value for argument `activation`: {identifier!r} needs the "
                f"arguments {list(inspect.signature(threshold).parameters)[1:]}, which a name "
                "cannot give; pass functools.partial(fastconv.activations."
                f"{identifier}, ...), received activation={identifier!r}.")
        if identifier not in _BY_NAME:
            raise ValueError(
                "Invalid value for argument `activation`: expected None, a callable or one "
                f"of {_KNOWN}, received activation={identifier!r}."
            )
        return _BY_NAME[identifier]
    if isinstance(identifier, Activation):
        return identifier
    if callable(identifier):
        if identifier in _BY_FUNCTION:
            return _BY_FUNCTION[identifier]
        if isinstance(identifier, functools.partial):
            found = _from_partial(identifier)
            if found is not None:
                return found
        return Activation(getattr(identifier, "__name__", repr(identifier)), identifier)
    raise TypeError(
        "Invalid value for argument `activation`: expected None, a callable or one of "
        f"{_KNOWN}, received activation={identifier!r}."
    )


def serialize(activation: Any) -> str:
    """The name that :func:`get` turns back into ``activation``.

    Parameters
    ----------
    activation : None, str, Activation or callable
        Anything :func:`get` accepts.

    Returns
    -------
    str
        "linear" for None; a built-in's name ("silu" for swish, as Keras).

    Raises
    ------
    ValueError
        For an activation that is not one of this module's built-ins, which
        a name alone cannot restore.
    """
    resolved = get(activation)
    if _BY_NAME.get(resolved.name) is not resolved:
        raise ValueError(
            "Invalid value for argument `activation`: only the built-in activations "
            f"{sorted(_BY_NAME)} can be serialized, received activation={activation!r}."
        )
    return resolved.name


def deserialize(config: Any, custom_objects: dict | None = None) -> Activation:
    """The activation a name written by :func:`serialize` stands for (Keras'
    ``keras.activations.deserialize``); ``custom_objects`` may map further
    names to functions or Activations.

    Returns
    -------
    Activation
    """
    if isinstance(config, str) and custom_objects and config in custom_objects:
        return get(custom_objects[config])
    if not isinstance(config, str):
        raise TypeError("Invalid value for argument `config`: expected an activation's name, "
                        f"received config={config!r}.")
    return get(config)


def output_shape(activation: Activation, input_shape: tuple) -> tuple:
    """The shape ``activation`` gives inputs of ``input_shape`` (batch first,
    None for unknown sizes): the input's, except for ``glu``, which halves its axis.

    Returns
    -------
    tuple
    """
    axis = _glu_axis(activation)
    if axis is None:
        return tuple(input_shape)
    shape = list(input_shape)
    size = shape[axis]
    if size is not None and size % 2:
        raise ValueError(f"Invalid input for `glu`: the size of axis {axis} must be even, "
                         f"received an input of shape {tuple(input_shape)}.")
    shape[axis] = None if size is None else size // 2
    return tuple(shape)


def _glu_axis(activation: Activation) -> int | None:
    """The axis ``activation`` halves when it is glu, else None."""
    forward = activation._forward
    if forward is glu:
        return -1
    if isinstance(forward, functools.partial) and forward.func is glu:
        return forward.keywords.get("axis", -1)
    return None

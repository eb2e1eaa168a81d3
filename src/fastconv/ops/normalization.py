"""Batch normalization on NumPy arrays, in compiled kernels: the training
pass (the batch's statistics), the inference pass (given statistics) and
their gradient. ``fastconv.reference_norm`` has the same functions in plain
NumPy, with the same signatures and argument checks.

Every pass is one or two sweeps over the data (``fastconv._kernels.batchnorm``):

- a per-channel sum sweep: sum(x - K) and sum((x - K)**2) around a shift K
  (the first sample's values, so that the variance is not the difference of
  two large numbers), or sum(dy) and sum(dy * (x - mean)) for the gradient,
  accumulated in float64 over fixed chunks and combined in a fixed order;
- a per-channel affine sweep: y = a * x + b for the forward passes, and
  dx = a * dy + p * x + q for the gradient, whose coefficients (C values
  each) are worked out here in float64 and rounded once to x's dtype.

So the results are bitwise identical for any thread count and instruction
set. With axis = -1 (channels last) the channels are the vector lanes; with
another axis each channel is a set of contiguous runs.
"""

from __future__ import annotations

import math

import numpy as np

from fastconv import _validation_norm as v
from fastconv._kernels import batchnorm as _bn
from fastconv.runtime import settings as _settings

__all__ = ["batch_norm", "batch_norm_backward", "batch_norm_inference"]


def _layout(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """x seen as (outer, C, inner), C = shape[axis]."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _threads(items: int, elements: int) -> int:
    """No more threads than items, and one per 32k elements at most: these
    sweeps do little work per element, so below that waking a thread costs
    more than it saves."""
    return _settings.threads_for(min(items, elements >> 15))


def _sums(x3: np.ndarray, center: np.ndarray, dy3: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Per channel (float64, (C,)): sum(u) and sum(u * (x - center)) over
    x3 (outer, C, inner), u = dy3 if given, else x - center."""
    outer, c, inner = x3.shape
    use_dy = dy3 is not None
    isa = _settings.isa_code()
    if inner == 1:
        x2 = x3.reshape(outer, c)
        chunk_rows = -(-_bn.CHUNK // c)
        chunks = -(-outer // chunk_rows)
        s1, s2 = np.empty((chunks, c)), np.empty((chunks, c))
        _bn.sums_rows(s1, s2, dy3.reshape(outer, c) if use_dy else x2, x2, center, use_dy,
                      chunk_rows, isa, _threads(chunks, x3.size))
        s1, s2 = s1.reshape(chunks, c, 1), s2.reshape(chunks, c, 1)
    else:
        pieces = -(-inner // _bn.PIECE)
        s1, s2 = np.empty((outer, c, pieces)), np.empty((outer, c, pieces))
        _bn.sums_runs(s1, s2, dy3 if use_dy else x3, x3, center, use_dy, _bn.PIECE, isa,
                      _threads(s1.size, x3.size))
    t1, t2 = np.empty(c), np.empty(c)
    _bn.combine(t1, t2, s1, s2)
    return t1, t2


def _apply(u3: np.ndarray, a: np.ndarray, q: np.ndarray | None = None,
           v3: np.ndarray | None = None, p: np.ndarray | None = None) -> np.ndarray:
    """a * u + p * v + q per channel of u3 (outer, C, inner); the float64
    coefficients are rounded to u's dtype first."""
    outer, c, inner = u3.shape
    dt = u3.dtype
    a = a.astype(dt)
    q = a if q is None else q.astype(dt)  # a placeholder when unused
    p = a if p is None else p.astype(dt)
    use_v, use_q = v3 is not None, q is not a
    out = np.empty_like(u3)
    isa = _settings.isa_code()
    if inner == 1:
        u2 = u3.reshape(outer, c)
        _bn.apply_rows(out.reshape(outer, c), u2, a, v3.reshape(outer, c) if use_v else u2, p, q,
                       use_v, use_q, isa, _threads(outer, u3.size))
    else:
        _bn.apply_runs(out, u3, a, v3 if use_v else u3, p, q, use_v, use_q, isa,
                       _threads(outer * c, u3.size))
    return out


def _scale(variance: np.ndarray, gamma: np.ndarray | None, epsilon: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """1 / sqrt(variance + epsilon) and gamma times it, in float64."""
    inv = 1.0 / np.sqrt(variance.astype(np.float64) + epsilon)
    return inv, inv if gamma is None else inv * gamma


def batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
               epsilon: float = 1e-3, axis: int = -1
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalization in training mode, with the batch's own statistics.

    ``y = gamma * (x - mean) / sqrt(variance + epsilon) + beta``, mean and
    variance (the biased one, as Keras) taken per channel over every axis but
    ``axis``.

    Parameters
    ----------
    x : ndarray, shape (..., C, ...)
        float32 or float64, at least 2 dimensions, C = x.shape[axis].
    gamma, beta : ndarray, shape (C,), or None
        Scale and offset (None: 1 and 0).
    epsilon : float
    axis : int
        The channel axis.

    Returns
    -------
    y : ndarray, shape of x
    mean, variance : ndarray, shape (C,)
        The batch statistics (to update moving averages and for the gradient).
    """
    x, gamma, beta, epsilon, axis = v.check_batch_norm(x, gamma, beta, epsilon, axis)
    x3 = x.reshape(_layout(x.shape, axis))
    center = np.ascontiguousarray(x3[0, :, 0])
    s1, s2 = _sums(x3, center)
    count = x3.shape[0] * x3.shape[2]
    shift = s1 / count
    mean = center + shift
    variance = np.maximum(s2 / count - shift * shift, 0.0)
    _, a = _scale(variance, gamma, epsilon)
    b = -mean * a if beta is None else beta - mean * a
    y = _apply(x3, a, b).reshape(x.shape)
    return y, mean.astype(x.dtype), variance.astype(x.dtype)


def batch_norm_inference(x: np.ndarray, mean: np.ndarray, variance: np.ndarray,
                         gamma: np.ndarray | None, beta: np.ndarray | None,
                         epsilon: float = 1e-3, axis: int = -1) -> np.ndarray:
    """Batch normalization with given statistics (the moving ones, at
    inference): ``y = gamma * (x - mean) / sqrt(variance + epsilon) + beta``,
    computed as one multiply-add per element.

    Parameters
    ----------
    x : ndarray, shape (..., C, ...)
    mean, variance : ndarray, shape (C,)
    gamma, beta : ndarray, shape (C,), or None
        Scale and offset (None: 1 and 0).
    epsilon : float
    axis : int

    Returns
    -------
    y : ndarray, shape of x
    """
    x, mean, variance, gamma, beta, epsilon, axis = v.check_batch_norm_inference(
        x, mean, variance, gamma, beta, epsilon, axis)
    if x.size == 0:
        return np.empty_like(x)
    _, a = _scale(variance, gamma, epsilon)
    b = -mean * a if beta is None else beta - mean * a
    return _apply(x.reshape(_layout(x.shape, axis)), a, b).reshape(x.shape)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, mean: np.ndarray, variance: np.ndarray,
                        gamma: np.ndarray | None, epsilon: float = 1e-3, axis: int = -1,
                        training: bool = True
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``batch_norm`` (``training=True``: mean and variance are
    the batch's, functions of x) or of ``batch_norm_inference``
    (``training=False``: constants).

    With xhat = (x - mean) / sqrt(variance + epsilon) and M values per
    channel: dbeta = sum(dy), dgamma = sum(dy * xhat) and
    dx = gamma / sqrt(variance + epsilon) * (dy - dbeta / M - xhat * dgamma / M)
    in training, or gamma / sqrt(variance + epsilon) * dy with constant
    statistics.

    Parameters
    ----------
    dy, x : ndarray, same shape
    mean, variance : ndarray, shape (C,)
        The statistics the forward pass normalized with.
    gamma : ndarray, shape (C,), or None
    epsilon : float
    axis : int
    training : bool

    Returns
    -------
    dx : ndarray, shape of x
    dgamma, dbeta : ndarray, shape (C,)
    """
    dy, x, mean, variance, gamma, epsilon, axis, training = v.check_batch_norm_backward(
        dy, x, mean, variance, gamma, epsilon, axis, training)
    if x.size == 0:
        zeros = np.zeros(mean.shape, dtype=x.dtype)
        return np.empty_like(x), zeros, zeros.copy()
    shape = _layout(x.shape, axis)
    x3, dy3 = x.reshape(shape), dy.reshape(shape)
    sum_dy, sum_dyx = _sums(x3, mean, dy3)
    inv, a = _scale(variance, gamma, epsilon)
    if training:
        count = shape[0] * shape[2]
        p = -a * inv * inv * sum_dyx / count
        q = -a * sum_dy / count - p * mean
        dx = _apply(dy3, a, q, x3, p)
    else:
        dx = _apply(dy3, a)
    return dx.reshape(x.shape), (sum_dyx * inv).astype(x.dtype), sum_dy.astype(x.dtype)

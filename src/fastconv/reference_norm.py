"""Plain-NumPy batch normalization: the statement of what the functions of
the same names in :mod:`fastconv.ops.normalization` compute, with the same
signatures and argument checks (:mod:`fastconv._validation_norm`).

The statistics and the normalization are computed in float64 and rounded
once to the input's dtype; the compiled kernels compute the same values with
a different summation order, so the two agree to rounding.
"""

from __future__ import annotations

import numpy as np

from fastconv import _validation_norm as v


def _per_channel(vector: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A (C,) vector shaped to broadcast along ``axis`` of an ndim array."""
    shape = [1] * ndim
    shape[axis] = -1
    return vector.astype(np.float64).reshape(shape)


def _others(ndim: int, axis: int) -> tuple[int, ...]:
    return tuple(i for i in range(ndim) if i != axis)


def batch_norm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
               epsilon: float = 1e-3, axis: int = -1
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode batch normalization; see fastconv.ops.batch_norm.

    Returns
    -------
    y : ndarray, shape of x
    mean, variance : ndarray, shape (C,)
    """
    x, gamma, beta, epsilon, axis = v.check_batch_norm(x, gamma, beta, epsilon, axis)
    x64, axes = x.astype(np.float64), _others(x.ndim, axis)
    mean = x64.mean(axis=axes)
    variance = ((x64 - _per_channel(mean, x.ndim, axis)) ** 2).mean(axis=axes)
    y = _normalize(x64, mean, variance, gamma, beta, epsilon, axis)
    return y.astype(x.dtype), mean.astype(x.dtype), variance.astype(x.dtype)


def _normalize(x64: np.ndarray, mean: np.ndarray, variance: np.ndarray,
               gamma: np.ndarray | None, beta: np.ndarray | None, epsilon: float,
               axis: int) -> np.ndarray:
    nd = x64.ndim
    y = (x64 - _per_channel(mean, nd, axis)) / np.sqrt(_per_channel(variance, nd, axis) + epsilon)
    if gamma is not None:
        y = y * _per_channel(gamma, nd, axis)
    if beta is not None:
        y = y + _per_channel(beta, nd, axis)
    return y


def batch_norm_inference(x: np.ndarray, mean: np.ndarray, variance: np.ndarray,
                         gamma: np.ndarray | None, beta: np.ndarray | None,
                         epsilon: float = 1e-3, axis: int = -1) -> np.ndarray:
    """Batch normalization with given statistics; see
    fastconv.ops.batch_norm_inference.

    Returns
    -------
    y : ndarray, shape of x
    """
    x, mean, variance, gamma, beta, epsilon, axis = v.check_batch_norm_inference(
        x, mean, variance, gamma, beta, epsilon, axis)
    return _normalize(x.astype(np.float64), mean, variance, gamma, beta, epsilon,
                      axis).astype(x.dtype)


def batch_norm_backward(dy: np.ndarray, x: np.ndarray, mean: np.ndarray, variance: np.ndarray,
                        gamma: np.ndarray | None, epsilon: float = 1e-3, axis: int = -1,
                        training: bool = True
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of batch normalization; see fastconv.ops.batch_norm_backward.

    Returns
    -------
    dx : ndarray, shape of x
    dgamma, dbeta : ndarray, shape (C,)
    """
    dy, x, mean, variance, gamma, epsilon, axis, training = v.check_batch_norm_backward(
        dy, x, mean, variance, gamma, epsilon, axis, training)
    nd, axes = x.ndim, _others(x.ndim, axis)
    dy64 = dy.astype(np.float64)
    inv = 1.0 / np.sqrt(_per_channel(variance, nd, axis) + epsilon)
    xhat = (x.astype(np.float64) - _per_channel(mean, nd, axis)) * inv
    dbeta = dy64.sum(axis=axes)
    dgamma = (dy64 * xhat).sum(axis=axes)
    scale = inv if gamma is None else inv * _per_channel(gamma, nd, axis)
    if training and x.size:
        count = x.size // x.shape[axis]
        dx = scale * (dy64 - _per_channel(dbeta, nd, axis) / count
                      - xhat * _per_channel(dgamma, nd, axis) / count)
    else:
        dx = scale * dy64
    return dx.astype(x.dtype), dgamma.astype(x.dtype), dbeta.astype(x.dtype)

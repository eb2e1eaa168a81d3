"""Regression losses, with Keras 3's formulas, and their gradients.

``y_true`` and ``y_pred`` have the same shape ``(N, ..., D)`` (a trailing
axis of size 1 may be added or dropped on ``y_true``, as Keras'
``squeeze_or_expand_to_same_rank``); the per-sample loss is the mean over
the last axis, of shape ``(N, ...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.losses.loss import Loss, check_dense_true

__all__ = ["MeanSquaredError"]


class _ElementwiseMean(Loss):
    """``L = mean(f(t, p))`` over the last axis; subclasses give ``f`` and ``df/dp``."""

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        t, p = check_dense_true(y_true, y_pred)
        shape = y_pred.shape
        return t, p, lambda dp: dp.reshape(shape)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self._elements(t, p).mean(axis=-1)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        return self._elements_backward(t, p) * (dL[..., None] / p.dtype.type(p.shape[-1]))


class MeanSquaredError(_ElementwiseMean):
    """``L = mean((y_true - y_pred)**2)`` over the last axis.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "mean_squared_error"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.square(t - p)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return 2 * (p - t)

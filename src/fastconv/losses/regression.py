"""Regression losses, with Keras 3's formulas, and their gradients.

``y_true`` and ``y_pred`` have the same shape ``(N, ..., D)`` (a trailing
axis of size 1 may be added or dropped on ``y_true``, as Keras'
``squeeze_or_expand_to_same_rank``). Except for the cosine similarity, the
per-sample loss is the mean over the last axis of an element loss
``f(t, p)``, of shape ``(N, ...)`` (``eps = 1e-7``):

============================  ===============================================
loss                          ``f(t, p)``
============================  ===============================================
mean squared error            ``(t - p)**2``
mean absolute error           ``|t - p|``
mean absolute percentage      ``100 * |t - p| / max(|t|, eps)``
mean squared logarithmic      ``(log(max(p, eps) + 1) - log(max(t, eps) + 1))**2``
Huber (``delta``)             ``e**2 / 2`` if ``|e| <= delta`` else
                              ``delta * |e| - delta**2 / 2``, ``e = p - t``
log-cosh                      ``e + softplus(-2 e) - log(2)`` = ``log(cosh(e))``
============================  ===============================================

Where ``f`` has a kink (``|e|`` at 0, ``max`` at ``eps``) the gradient takes
the one-sided value of the backends' rules: ``sign(0) = 0``, and no gradient
through ``max(p, eps)`` where ``p <= eps``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.losses.crossentropy import move_last, softplus
from fastconv.losses.loss import (
    EPSILON,
    Loss,
    check_axis,
    check_dense_true,
    check_float,
)

__all__ = [
    "CosineSimilarity",
    "Huber",
    "LogCosh",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
]

_REDUCTION = "sum_over_batch_size"


# Element formulas that the metrics of the same names use too.


def log1p_floor(x: np.ndarray) -> np.ndarray:
    """``log(max(x, eps) + 1)``, the two terms of the squared logarithmic error."""
    return np.log(np.maximum(x, x.dtype.type(EPSILON)) + 1)


def log_cosh_elements(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``log(cosh(p - t))`` as ``e + softplus(-2 e) - log(2)``, finite for large errors."""
    e = p - t
    return e + softplus(-2 * e) - p.dtype.type(np.log(2.0))


class ElementwiseMean(Loss):
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


class MeanSquaredError(ElementwiseMean):
    """``L = mean((y_true - y_pred)**2)`` over the last axis.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "mean_squared_error"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = _REDUCTION, name: str = "mean_squared_error",
                 dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.square(t - p)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return 2 * (p - t)


class MeanAbsoluteError(ElementwiseMean):
    """``L = mean(|y_true - y_pred|)`` over the last axis.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "mean_absolute_error"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = _REDUCTION, name: str = "mean_absolute_error",
                 dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.abs(t - p)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.sign(p - t)


class MeanAbsolutePercentageError(ElementwiseMean):
    """``L = 100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))`` over the last axis.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "mean_absolute_percentage_error"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = _REDUCTION,
                 name: str = "mean_absolute_percentage_error", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    @staticmethod
    def _scale(t: np.ndarray) -> np.ndarray:
        return 100 / np.maximum(np.abs(t), t.dtype.type(EPSILON))

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.abs(t - p) * self._scale(t)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.sign(p - t) * self._scale(t)


class MeanSquaredLogarithmicError(ElementwiseMean):
    """``L = mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))**2)``
    over the last axis (``eps = 1e-7``).

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "mean_squared_logarithmic_error"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = _REDUCTION,
                 name: str = "mean_squared_logarithmic_error", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.square(log1p_floor(p) - log1p_floor(t))

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        eps = p.dtype.type(EPSILON)
        diff = log1p_floor(p) - log1p_floor(t)
        return np.where(p > eps, 2 * diff / (np.maximum(p, eps) + 1), 0)


class Huber(ElementwiseMean):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond.

    ``L = mean(f(y_pred - y_true))`` over the last axis with
    ``f(e) = e**2 / 2`` if ``|e| <= delta`` else ``delta * |e| - delta**2 / 2``.

    Parameters
    ----------
    delta : float > 0, default 1.0
        Where the loss turns from quadratic to linear.
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "huber_loss"
    dtype : str or None, default None
    """

    def __init__(self, delta: float = 1.0, reduction: str | None = _REDUCTION,
                 name: str = "huber_loss", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.delta = check_float(delta, "delta", 0.0, open_low=True)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        e = p - t
        a = np.abs(e)
        delta = p.dtype.type(self.delta)
        return np.where(a <= delta, e * e / 2, delta * a - delta * delta / 2)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        e = p - t
        delta = p.dtype.type(self.delta)
        return np.where(np.abs(e) <= delta, e, delta * np.sign(e))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


class LogCosh(ElementwiseMean):
    """``L = mean(log(cosh(y_pred - y_true)))`` over the last axis, computed
    as ``e + softplus(-2 e) - log(2)``, which stays finite for large errors.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "log_cosh"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = _REDUCTION, name: str = "log_cosh",
                 dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return log_cosh_elements(t, p)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.tanh(p - t)


class CosineSimilarity(Loss):
    """Negative cosine similarity along ``axis``: ``L = -sum(t_n * p_n)``.

    ``t_n = t / sqrt(max(sum(t**2), eps**2))`` and the same for ``p``
    (``eps = 1e-7``; Keras' ``normalize``), so ``L`` lies in ``[-1, 1]``:
    -1 for vectors pointing the same way, 0 for orthogonal ones or a zero
    vector. The per-sample losses have ``y_pred``'s shape without ``axis``.

    Parameters
    ----------
    axis : int, default -1
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "cosine_similarity"
    dtype : str or None, default None
    """

    def __init__(self, axis: int = -1, reduction: str | None = _REDUCTION,
                 name: str = "cosine_similarity", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.axis = check_axis(axis)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        t, p = check_dense_true(y_true, y_pred)
        return move_last(t, p, self.axis, y_pred.shape)

    @staticmethod
    def _inverse_norm(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        square_sum = np.square(x).sum(axis=-1, keepdims=True)
        floor = x.dtype.type(EPSILON) ** 2
        return 1 / np.sqrt(np.maximum(square_sum, floor)), square_sum > floor

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        rt, _ = self._inverse_norm(t)
        rp, _ = self._inverse_norm(p)
        return -(t * rt * p * rp).sum(axis=-1)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        rt, _ = self._inverse_norm(t)
        rp, above = self._inverse_norm(p)
        tn = t * rt
        # d(p * rp) / dp: rp, minus the change of the norm where it is not floored.
        dot = (tn * p).sum(axis=-1, keepdims=True)
        return -(tn * rp - np.where(above, dot * rp ** 3, 0) * p) * dL[..., None]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

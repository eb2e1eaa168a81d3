"""Hinge losses, with Keras 3's formulas, and their gradients.

``y_true`` and ``y_pred`` have the same shape ``(N, ..., D)`` (a trailing
axis of size 1 may be added or dropped on ``y_true``).

- hinge: ``L = mean(max(1 - t * p, 0))`` over the last axis;
- squared hinge: ``L = mean(max(1 - t * p, 0)**2)``;
- categorical hinge: ``L = max(max((1 - t) * p) - sum(t * p) + 1, 0)``, the
  maxima and sum over the last axis.

For the first two, targets given as 0/1 (every entry of the batch's
``y_true`` is 0 or 1) are mapped to -1/1 first, as Keras does; other
targets (e.g. already -1/1) are used as they are. At the kinks the
gradient is 0 (``max(x, 0)`` at 0), and a tie in the categorical hinge's
inner maximum shares the gradient equally between the tied classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.losses.loss import Loss
from fastconv.losses.regression import ElementwiseMean

__all__ = ["CategoricalHinge", "Hinge", "SquaredHinge"]


def signed_targets(t: np.ndarray) -> np.ndarray:
    """0/1 labels as -1/1 (when every label is 0 or 1), others unchanged."""
    if np.all((t == 0) | (t == 1)):
        return 2 * t - 1
    return t


class Hinge(ElementwiseMean):
    """``L = mean(max(1 - y_true * y_pred, 0))`` over the last axis.

    ``y_true`` holds -1/1 labels (0/1 labels are mapped to -1/1).

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "hinge"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "hinge",
                 dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        t, p, undo = super()._prepare(y_true, y_pred)
        return signed_targets(t), p, undo

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.maximum(1 - t * p, 0)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.where(1 - t * p > 0, -t, 0)


class SquaredHinge(Hinge):
    """``L = mean(max(1 - y_true * y_pred, 0)**2)`` over the last axis.

    ``y_true`` holds -1/1 labels (0/1 labels are mapped to -1/1).

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "squared_hinge"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "squared_hinge", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.square(np.maximum(1 - t * p, 0))

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return -2 * t * np.maximum(1 - t * p, 0)


def categorical_hinge_values(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``max(max((1 - t) * p) - sum(t * p) + 1, 0)`` over the last axis; the
    metric of the same name uses it too."""
    pos = (t * p).sum(axis=-1)
    neg = ((1 - t) * p).max(axis=-1)
    return np.maximum(neg - pos + 1, 0)


class CategoricalHinge(ElementwiseMean):
    """``L = max(neg - pos + 1, 0)`` with ``pos = sum(y_true * y_pred)`` and
    ``neg = max((1 - y_true) * y_pred)`` over the last axis (one-hot targets).

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "categorical_hinge"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_hinge", dtype: Any = None) -> None:
        Loss.__init__(self, name=name, reduction=reduction, dtype=dtype)

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return categorical_hinge_values(t, p)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        other = (1 - t) * p
        top = other == other.max(axis=-1, keepdims=True)
        share = top / top.sum(axis=-1, keepdims=True)
        active = (self._values(t, p) > 0)[..., None]
        return np.where(active, share * (1 - t) - t, 0) * dL[..., None]

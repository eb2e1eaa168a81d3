"""The Kullback-Leibler divergence and the Poisson loss, with Keras 3's
formulas, and their gradients.

``y_true`` and ``y_pred`` have the same shape ``(N, ..., D)`` (a trailing
axis of size 1 may be added or dropped on ``y_true``); ``eps = 1e-7``:

- KL divergence: ``L = sum(t_c * log(t_c / p_c))`` over the last axis, with
  ``t_c = clip(t, eps, 1)`` and ``p_c = clip(p, eps, 1)``; no gradient where
  ``p`` is clipped.
- Poisson: ``L = mean(p - t * log(p + eps))`` over the last axis (``p`` is
  the predicted rate, not its logarithm).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.losses.loss import EPSILON, Loss
from fastconv.losses.regression import ElementwiseMean

__all__ = ["KLDivergence", "Poisson"]


# Formulas that the metrics of the same names use too.


def _clip_unit(x: np.ndarray) -> np.ndarray:
    return np.clip(x, x.dtype.type(EPSILON), x.dtype.type(1))


def kl_divergence_values(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``sum(t * log(t / p))`` over the last axis, both clipped to ``[eps, 1]``."""
    tc = _clip_unit(t)
    return (tc * np.log(tc / _clip_unit(p))).sum(axis=-1)


def poisson_elements(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``p - t * log(p + eps)``, before the mean over the last axis."""
    return p - t * np.log(p + p.dtype.type(EPSILON))


class KLDivergence(ElementwiseMean):
    """Kullback-Leibler divergence ``sum(t * log(t / p))`` over the last axis,
    with ``y_true`` and ``y_pred`` clipped to ``[1e-7, 1]``.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "kl_divergence"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "kl_divergence", dtype: Any = None) -> None:
        Loss.__init__(self, name=name, reduction=reduction, dtype=dtype)

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return kl_divergence_values(t, p)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        inside = (p >= p.dtype.type(EPSILON)) & (p <= 1)
        return np.where(inside, -_clip_unit(t) / _clip_unit(p), 0) * dL[..., None]


class Poisson(ElementwiseMean):
    """Poisson loss ``mean(y_pred - y_true * log(y_pred + 1e-7))`` over the last axis.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "poisson"
    dtype : str or None, default None
    """

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "poisson",
                 dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _elements(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return poisson_elements(t, p)

    def _elements_backward(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return 1 - t / (p + p.dtype.type(EPSILON))

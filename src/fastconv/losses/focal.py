"""Focal cross-entropy losses (Lin et al., 2017), with Keras 3's formulas,
and their gradients.

With logits, Keras applies the softmax (sigmoid) first and then the
probability formula, clip included; so do these losses, and their
gradient is the exact gradient of that composition. ``eps = 1e-7``.

- categorical: ``q = p / sum(p)``, ``c = clip(q, eps, 1 - eps)``,
  ``L = sum(alpha * (1 - c)**gamma * (-t * log(c)))`` over the class axis;
- binary: ``c = clip(p, eps, 1 - eps)``,
  ``bce = -(t log(c) + (1 - t) log(1 - c))``,
  ``p_t = t p + (1 - t)(1 - p)`` (unclipped ``p``, as Keras),
  ``L = mean(w * (1 - p_t)**gamma * bce)`` over ``axis``, with
  ``w = alpha t + (1 - alpha)(1 - t)`` if ``apply_class_balancing`` else 1.

Label smoothing changes ``t`` first, as for the plain cross-entropies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._validation import check_flag
from fastconv.losses.crossentropy import (
    BinaryTargetsLoss,
    CategoricalTargetsLoss,
    clip_bounds,
    sigmoid,
    softmax,
)
from fastconv.losses.loss import check_axis, check_float

__all__ = ["BinaryFocalCrossentropy", "CategoricalFocalCrossentropy"]


def _power_grad(base: np.ndarray, gamma: float) -> np.ndarray:
    """``d base**gamma / d base`` for ``base >= 0``; at ``base = 0`` the
    one-sided value for ``gamma >= 1`` (1 if ``gamma == 1``, else 0), and 0
    for ``gamma < 1``, where it is infinite."""
    positive = base > 0
    safe = np.where(positive, base, 1)
    at_zero = 1.0 if gamma == 1 else 0.0
    return np.where(positive, gamma * safe ** (gamma - 1), at_zero).astype(base.dtype)


class CategoricalFocalCrossentropy(CategoricalTargetsLoss):
    """Focal cross-entropy between one-hot (or soft) targets and class scores.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., K)``; the per-sample
    losses have shape ``(N, ...)``. See the module docstring for the formula.

    Parameters
    ----------
    alpha : float, default 0.25
        Weight of every class's term.
    gamma : float >= 0, default 2.0
        Focusing parameter: ``(1 - c)**gamma`` down-weights easy examples;
        ``gamma=0`` gives ``alpha`` times the categorical cross-entropy.
    from_logits : bool, default False
    label_smoothing : float in [0, 1], default 0.0
    axis : int, default -1
        The class axis.
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "categorical_focal_crossentropy"
    dtype : str or None, default None
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_focal_crossentropy", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_float(alpha, "alpha")
        self.gamma = check_float(gamma, "gamma", 0.0)
        self.from_logits = check_flag(from_logits, "from_logits")
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", 0.0, 1.0)
        self.axis = check_axis(axis)

    def _clipped(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        total = y.sum(axis=-1, keepdims=True)
        q = y / total
        low, high = clip_bounds(y.dtype)
        return q, np.clip(q, low, high), total

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        y = softmax(p) if self.from_logits else p
        _, c, _ = self._clipped(y)
        alpha, gamma = p.dtype.type(self.alpha), p.dtype.type(self.gamma)
        return (alpha * (1 - c) ** gamma * (-t * np.log(c))).sum(axis=-1)

    def _probability_backward(self, t: np.ndarray, y: np.ndarray, dL: np.ndarray
                              ) -> np.ndarray:
        """d ``sum(dL * L)`` / d ``y`` for probabilities ``y``."""
        q, c, total = self._clipped(y)
        low, high = clip_bounds(y.dtype)
        alpha, gamma = y.dtype.type(self.alpha), y.dtype.type(self.gamma)
        one_minus = 1 - c
        dc = alpha * (-t / c * one_minus ** gamma
                      + t * np.log(c) * _power_grad(one_minus, self.gamma))
        dq = np.where((q >= low) & (q <= high), dc, 0) * dL[..., None]
        return (dq - (dq * q).sum(axis=-1, keepdims=True)) / total

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        if not self.from_logits:
            return self._probability_backward(t, p, dL)
        return self._logits_backward(t, softmax(p), dL)

    def _logits_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        dy = self._probability_backward(t, p, dL)
        return p * (dy - (dy * p).sum(axis=-1, keepdims=True))

    def logits_gradient(self, y_true: object, y_prob: object, sample_weight: object = None
                        ) -> np.ndarray:
        """``d loss / d z`` for ``y_prob = softmax(z)``: the loss's gradient
        with respect to ``y_prob`` through the softmax's Jacobian,
        ``y_prob * (g - sum(g * y_prob))``.

        Parameters
        ----------
        y_true, sample_weight
            As for :meth:`__call__`.
        y_prob : array_like of float, shape (N, ..., K)
            Softmax output of the model.

        Returns
        -------
        numpy.ndarray
            Same shape and dtype as ``y_prob``.
        """
        return super().logits_gradient(y_true, y_prob, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis,
                "alpha": self.alpha, "gamma": self.gamma}


class BinaryFocalCrossentropy(BinaryTargetsLoss):
    """Focal cross-entropy between 0/1 (or soft) targets and independent outputs.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., D)`` (a trailing axis of
    size 1 may be added or dropped on ``y_true``); the per-sample loss is
    the mean over ``axis``. See the module docstring for the formula.

    Parameters
    ----------
    apply_class_balancing : bool, default False
        Weigh positives by ``alpha`` and negatives by ``1 - alpha``.
    alpha : float, default 0.25
    gamma : float >= 0, default 2.0
        Focusing parameter; ``gamma=0`` (without class balancing) gives the
        binary cross-entropy.
    from_logits : bool, default False
    label_smoothing : float in [0, 1], default 0.0
    axis : int, default -1
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "binary_focal_crossentropy"
    dtype : str or None, default None
    """

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25,
                 gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str = "binary_focal_crossentropy", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.apply_class_balancing = check_flag(apply_class_balancing, "apply_class_balancing")
        self.alpha = check_float(alpha, "alpha")
        self.gamma = check_float(gamma, "gamma", 0.0)
        self.from_logits = check_flag(from_logits, "from_logits")
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", 0.0, 1.0)
        self.axis = check_axis(axis)

    def _terms(self, t: np.ndarray, y: np.ndarray) -> tuple:
        low, high = clip_bounds(y.dtype)
        c = np.clip(y, low, high)
        bce = -(t * np.log(c) + (1 - t) * np.log(1 - c))
        # 1 - p_t, written so that rounding cannot make it negative.
        base = t * (1 - y) + (1 - t) * y
        if self.apply_class_balancing:
            alpha = y.dtype.type(self.alpha)
            weight = alpha * t + (1 - alpha) * (1 - t)
        else:
            weight = y.dtype.type(1)
        return c, bce, base, weight

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        y = sigmoid(p) if self.from_logits else p
        _, bce, base, weight = self._terms(t, y)
        return (weight * base ** p.dtype.type(self.gamma) * bce).mean(axis=-1)

    def _probability_backward(self, t: np.ndarray, y: np.ndarray, dL: np.ndarray
                              ) -> np.ndarray:
        c, bce, base, weight = self._terms(t, y)
        low, high = clip_bounds(y.dtype)
        dbce = np.where((y >= low) & (y <= high), (c - t) / (c * (1 - c)), 0)
        # d(1 - p_t)/dy = 1 - 2t.
        dfocal = _power_grad(base, self.gamma) * (1 - 2 * t)
        dy = weight * (base ** y.dtype.type(self.gamma) * dbce + bce * dfocal)
        return dy * (dL[..., None] / y.dtype.type(y.shape[-1]))

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        if not self.from_logits:
            return self._probability_backward(t, p, dL)
        return self._logits_backward(t, sigmoid(p), dL)

    def _logits_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        return self._probability_backward(t, p, dL) * p * (1 - p)

    def logits_gradient(self, y_true: object, y_prob: object, sample_weight: object = None
                        ) -> np.ndarray:
        """``d loss / d z`` for ``y_prob = sigmoid(z)``: the loss's gradient
        with respect to ``y_prob`` times ``y_prob * (1 - y_prob)``.

        Parameters
        ----------
        y_true, sample_weight
            As for :meth:`__call__`.
        y_prob : array_like of float, shape (N, ..., D)
            Sigmoid output of the model.

        Returns
        -------
        numpy.ndarray
            Same shape and dtype as ``y_prob``.
        """
        return super().logits_gradient(y_true, y_prob, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis,
                "apply_class_balancing": self.apply_class_balancing,
                "alpha": self.alpha, "gamma": self.gamma}

"""Cross-entropy losses, with Keras 3's formulas, and their gradients.

Per-sample losses (``eps = 1e-7``, Keras' ``backend.epsilon()``; the class
or feature axis ``axis`` is moved last, ``K`` its size):

- categorical / sparse categorical, probabilities: ``q = p / sum(p)`` along
  the class axis, ``c = clip(q, eps, 1 - eps)``, ``L = -sum(t * log(c))``.
  The gradient is that of this exact formula; the clip passes no gradient
  where ``q`` lies outside ``[eps, 1 - eps]``.
- categorical / sparse categorical, logits: ``L = -sum(t * log_softmax(z))``,
  computed with the max subtracted, so logits of +-1000 stay finite.
- binary, probabilities: ``c = clip(p, eps, 1 - eps)``,
  ``L = mean(-(t log(c) + (1 - t) log(1 - c)))`` over the feature axis.
- binary, logits: ``L = mean(t * softplus(-z) + (1 - t) * softplus(z))``
  (the log-sigmoid form of Keras' JAX and TensorFlow backends).
- label smoothing: ``t * (1 - s) + s / K`` (categorical) or
  ``t * (1 - s) + s / 2`` (binary) before the formula.

When the model's last layer applies softmax (sigmoid for the binary losses)
and the loss takes probabilities, the model can skip the activation's
backward pass and call :meth:`Loss.logits_gradient`, which returns
``d loss / d logits`` in closed form.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fastconv._validation import check_flag
from fastconv.losses.loss import (
    EPSILON,
    Loss,
    check_axis,
    check_dense_true,
    check_float,
)

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy"]


# ----------------------------------------------------------------------------
# numerics


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def clip_bounds(dtype: np.dtype) -> tuple[np.floating, np.floating]:
    return dtype.type(EPSILON), dtype.type(1.0 - EPSILON)


def canonical_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"Invalid value for argument `axis`: expected an axis of y_pred, in "
            f"[{-ndim}, {ndim}), received axis={axis}."
        )
    return axis % ndim


def move_last(t: np.ndarray, p: np.ndarray, axis: int, shape: tuple
              ) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``t`` and ``p`` with ``axis`` last, and the map of a gradient shaped
    like the moved ``p`` back to ``y_pred``'s ``shape``."""
    ax = canonical_axis(axis, p.ndim)
    if ax == p.ndim - 1:
        return t, p, lambda dp: dp.reshape(shape)
    return (np.moveaxis(t, ax, -1), np.moveaxis(p, ax, -1),
            lambda dp: np.moveaxis(dp, -1, ax).reshape(shape))


def one_hot(labels: np.ndarray, like: np.ndarray) -> np.ndarray:
    """One-hot rows of ``like``'s shape and dtype for integer ``labels``
    (``like``'s shape without its last axis, each in [0, K))."""
    onehot = np.zeros(like.shape, dtype=like.dtype)
    rows = onehot.reshape(-1, like.shape[-1])  # a view: onehot is C-contiguous
    # Indexing, not put_along_axis: the same ones at a fifth of the cost on
    # a training step's small batch.
    rows[np.arange(len(rows)), labels.reshape(-1)] = 1
    return onehot


# ----------------------------------------------------------------------------
# targets shared by the plain and the focal cross-entropies


class CategoricalTargetsLoss(Loss):
    """A loss on class scores along ``axis`` with dense (one-hot or soft)
    targets and Keras' ``label_smoothing`` over the ``K`` classes; the plain
    and the focal categorical cross-entropies take their targets so."""

    fused_activation = "softmax"

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        t, p = check_dense_true(y_true, y_pred)
        t, p, undo = move_last(t, p, self.axis, y_pred.shape)
        if p.shape[-1] == 1:
            warnings.warn(
                f"{type(self).__name__} expects y_pred of shape (N, ..., K) with "
                f"K > 1 classes, received shape {y_pred.shape}; with one output "
                "use binary cross-entropy.",
                UserWarning,
                stacklevel=4,
            )
        if self.label_smoothing:
            s = p.dtype.type(self.label_smoothing)
            t = t * (1 - s) + s / p.shape[-1]
        return t, p, undo


class BinaryTargetsLoss(Loss):
    """A loss on independent outputs with 0/1 (or soft) targets and Keras'
    ``label_smoothing`` towards 1/2; the plain and the focal binary
    cross-entropies take their targets so."""

    fused_activation = "sigmoid"

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        t, p = check_dense_true(y_true, y_pred)
        t, p, undo = move_last(t, p, self.axis, y_pred.shape)
        if self.label_smoothing:
            s = p.dtype.type(self.label_smoothing)
            t = t * (1 - s) + s / 2
        return t, p, undo


# ----------------------------------------------------------------------------
# categorical


def class_log_probabilities(p: np.ndarray, from_logits: bool) -> np.ndarray:
    """Log-probabilities along the last axis: ``log_softmax`` of logits, or the
    log of probabilities renormalised to sum 1 and clipped to ``[eps, 1 - eps]``.
    The losses and the metrics of fastconv both read class scores so."""
    if from_logits:
        return log_softmax(p)
    low, high = clip_bounds(p.dtype)
    return np.log(np.clip(p / p.sum(axis=-1, keepdims=True), low, high))


def softmax_ce_values(t: np.ndarray, p: np.ndarray, from_logits: bool) -> np.ndarray:
    """``-sum(t * log(probabilities))`` over the last axis."""
    return -(t * class_log_probabilities(p, from_logits)).sum(axis=-1)


def softmax_ce_backward(t: np.ndarray, p: np.ndarray, dL: np.ndarray,
                        from_logits: bool) -> np.ndarray:
    dL = dL[..., None]
    if from_logits:
        return (softmax(p) * t.sum(axis=-1, keepdims=True) - t) * dL
    low, high = clip_bounds(p.dtype)
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    # d L / d q, zero where the clip is active.
    dq = np.where((q >= low) & (q <= high), -t / np.clip(q, low, high), 0)
    # Through q = p / sum(p): d q_j / d p_k = (delta_jk - q_j) / sum(p).
    return (dq - (dq * q).sum(axis=-1, keepdims=True)) / total * dL


class _SoftmaxCrossentropy(CategoricalTargetsLoss):
    """Cross-entropy over the class axis; sparse labels override ``_prepare``."""

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return softmax_ce_values(t, p, self.from_logits)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        return softmax_ce_backward(t, p, dL, self.from_logits)

    def _logits_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        return (p * t.sum(axis=-1, keepdims=True) - t) * dL[..., None]

    def logits_gradient(self, y_true: object, y_prob: object, sample_weight: object = None
                        ) -> np.ndarray:
        """``d loss / d z`` for ``y_prob = softmax(z)`` (along ``axis``), in closed form.

        Per sample it is ``dL * (y_prob * sum(t) - t)`` (``t`` the targets,
        one-hot for sparse labels; ``dL`` the weight and reduction factor of
        the sample, e.g. ``1 / M`` for ``M`` unweighted samples), i.e.
        ``(y_prob - onehot(y_true)) / M`` for one-hot targets. It equals the
        gradient of the clipped loss exactly where the clip is inactive for
        every class with a non-zero target (``1e-7 <= y_prob <= 1 - 1e-7``
        there); elsewhere the clipped loss is flat and this is the gradient
        of the unclipped loss.

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


class CategoricalCrossentropy(_SoftmaxCrossentropy):
    """Cross-entropy between one-hot (or soft) targets and class scores.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., K)`` (a trailing axis of
    size 1 may be added or dropped on ``y_true``); the per-sample losses
    have shape ``(N, ...)``. See the module docstring for the formulas.

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``y_pred`` holds logits instead of probabilities.
    label_smoothing : float in [0, 1], default 0.0
        Targets become ``t * (1 - label_smoothing) + label_smoothing / K``.
    axis : int, default -1
        The class axis.
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "categorical_crossentropy"
    dtype : str or None, default None
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_crossentropy", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = check_flag(from_logits, "from_logits")
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", 0.0, 1.0)
        self.axis = check_axis(axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


def check_sparse_true(y_true: object, y_pred: np.ndarray, axis: int,
                      ignore_class: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer class indices of shape ``y_pred``'s without ``axis`` (as intp,
    0 where ignored) and the mask of the entries that count (None without
    ``ignore_class``)."""
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "iuf":
        raise TypeError(
            f"Invalid dtype for argument `y_true`: expected integer class indices "
            f"(any int, uint or float dtype), received dtype {y_true.dtype}."
        )
    batch_shape = y_pred.shape[:axis] + y_pred.shape[axis + 1:]
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = np.squeeze(y_true, axis=axis)
    if y_true.shape != batch_shape:
        expected = y_pred.shape[:axis] + (1,) + y_pred.shape[axis + 1:]
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected class indices of shape "
            f"{batch_shape} or {expected} for y_pred of shape "
            f"{y_pred.shape}, received shape {y_true.shape}."
        )
    valid = None if ignore_class is None else y_true != ignore_class
    labels = y_true if valid is None else y_true[valid]
    if y_true.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            raise ValueError(
                "Invalid value for argument `y_true`: expected integer class "
                f"indices, received {float(labels[bad].flat[0])}."
            )
    num_classes = y_pred.shape[axis]
    if labels.size:
        low, high = labels.min(), labels.max()
        if low < 0 or high >= num_classes:
            ignored = "" if ignore_class is None else f" (or ignore_class={ignore_class})"
            raise ValueError(
                f"Invalid value for argument `y_true`: class indices must lie in "
                f"[0, {num_classes}){ignored} for y_pred with {num_classes} classes, "
                f"received values in [{low}, {high}]."
            )
    if valid is not None:
        y_true = np.where(valid, y_true, 0)
    return y_true.astype(np.intp), valid


class SparseCategoricalCrossentropy(_SoftmaxCrossentropy):
    """Cross-entropy between integer class indices and class scores.

    ``y_true`` holds class indices of shape ``(N, ...)`` or ``(N, ..., 1)``
    (any int, uint or float dtype with integral values in ``[0, K)``);
    ``y_pred`` has shape ``(N, ..., K)``. The loss is that of
    :class:`CategoricalCrossentropy` with one-hot targets. As in Keras 3,
    there is no ``label_smoothing`` (use :class:`CategoricalCrossentropy`
    with one-hot targets).

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``y_pred`` holds logits instead of probabilities.
    ignore_class : int or None, default None
        A label (e.g. -1 or 255 for unlabelled pixels) whose entries have
        loss 0 and do not count in the reduction's mean (Keras' mask).
    reduction : str or None, default "sum_over_batch_size"
    axis : int, default -1
        The class axis of ``y_pred``.
    name : str, default "sparse_categorical_crossentropy"
    dtype : str or None, default None
    """

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size", axis: int = -1,
                 name: str = "sparse_categorical_crossentropy", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = check_flag(from_logits, "from_logits")
        if ignore_class is not None and (
                isinstance(ignore_class, (bool, np.bool_))
                or not isinstance(ignore_class, (int, np.integer))):
            raise TypeError(
                f"Invalid value for argument `ignore_class`: expected None or an int, "
                f"received ignore_class={ignore_class!r}."
            )
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.axis = check_axis(axis)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        axis = canonical_axis(self.axis, y_pred.ndim)
        labels, valid = check_sparse_true(y_true, y_pred, axis, self.ignore_class)
        last = axis == y_pred.ndim - 1
        p = y_pred if last else np.moveaxis(y_pred, axis, -1)
        t = one_hot(labels, p)
        if valid is not None:
            # Ignored entries get all-zero targets: loss 0, gradient 0.
            t *= valid[..., None]
        return t, p, (lambda dp: dp) if last else (lambda dp: np.moveaxis(dp, -1, axis))

    def _values(self, t: np.ndarray, p: np.ndarray) -> Any:
        values = super()._values(t, p)
        if self.ignore_class is None:
            return values
        return values, t.any(axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class, "axis": self.axis}


# ----------------------------------------------------------------------------
# binary


def binary_ce_elements(t: np.ndarray, p: np.ndarray, from_logits: bool) -> np.ndarray:
    """Element-wise binary cross-entropy, before the mean over the last axis;
    the loss and the metric of fastconv both use it."""
    if from_logits:
        return t * softplus(-p) + (1 - t) * softplus(p)
    low, high = clip_bounds(p.dtype)
    c = np.clip(p, low, high)
    return -(t * np.log(c) + (1 - t) * np.log(1 - c))


class BinaryCrossentropy(BinaryTargetsLoss):
    """Cross-entropy between 0/1 (or soft) targets and independent outputs.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., D)`` (a trailing axis of
    size 1 may be added or dropped on ``y_true``, so ``(N,)`` labels go with
    ``(N, 1)`` outputs). As Keras, the per-sample loss is the mean over
    ``axis``: shape ``(N, ...)``.

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``y_pred`` holds logits instead of probabilities.
    label_smoothing : float in [0, 1], default 0.0
        Targets become ``t * (1 - label_smoothing) + label_smoothing / 2``.
    axis : int, default -1
        The axis the element losses are averaged over.
    reduction : str or None, default "sum_over_batch_size"
    name : str, default "binary_crossentropy"
    dtype : str or None, default None
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str = "binary_crossentropy", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = check_flag(from_logits, "from_logits")
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", 0.0, 1.0)
        self.axis = check_axis(axis)

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        return binary_ce_elements(t, p, self.from_logits).mean(axis=-1)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        dL = dL[..., None] / p.dtype.type(p.shape[-1])
        if self.from_logits:
            return (sigmoid(p) - t) * dL
        low, high = clip_bounds(p.dtype)
        c = np.clip(p, low, high)
        inside = (p >= low) & (p <= high)
        return np.where(inside, (c - t) / (c * (1 - c)), 0) * dL

    def _logits_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        return (p - t) * (dL[..., None] / p.dtype.type(p.shape[-1]))

    def logits_gradient(self, y_true: object, y_prob: object, sample_weight: object = None
                        ) -> np.ndarray:
        """``d loss / d z`` for ``y_prob = sigmoid(z)``, in closed form.

        Per entry it is ``dL * (y_prob - t) / D`` (``D`` the size of
        ``axis``, ``dL`` the sample's weight and reduction factor), i.e.
        ``(y_prob - t) / S`` with ``S = y_prob.size`` unweighted. It equals
        the gradient of the clipped loss exactly where
        ``1e-7 <= y_prob <= 1 - 1e-7``; elsewhere the clipped loss is flat
        and this is the gradient of the unclipped loss.

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
                "label_smoothing": self.label_smoothing, "axis": self.axis}

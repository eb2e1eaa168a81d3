"""Per-sample metric functions with Keras 3's names and formulas.

Each takes ``(y_true, y_pred)`` arrays of shape ``(N, ..., D)`` and returns
one value per sample and position, shape ``(N, ...)`` (the last axis
reduced), in ``y_pred``'s float dtype (float32 for integer input), as the
functions of ``keras.metrics`` / ``keras.losses`` do. The metric classes
average them with :class:`~fastconv.metrics.Mean`'s weighting. Formulas
(``eps = 1e-7``, Keras' ``backend.epsilon()``):

- ``mean_squared_error``: ``mean((t - p)**2)``
- ``mean_absolute_error``: ``mean(|t - p|)``
- ``mean_absolute_percentage_error``: ``100 * mean(|t - p| / max(|t|, eps))``
- ``mean_squared_logarithmic_error``:
  ``mean((log(max(p, eps) + 1) - log(max(t, eps) + 1))**2)``
- ``log_cosh``: ``mean(x + softplus(-2x) - log 2)`` with ``x = p - t``
- ``cosine_similarity``: ``sum(t / ||t|| * p / ||p||)`` along ``axis``
  (a zero vector gives 0)
- ``hinge`` / ``squared_hinge``: ``mean(max(1 - t p, 0))`` (squared); 0/1
  targets are first mapped to -1/1 when every target is 0 or 1
- ``categorical_hinge``: ``max(max((1 - t) p) - sum(t p) + 1, 0)``
- ``kl_divergence``: ``sum(t log(t / p))`` with both clipped to ``[eps, 1]``
- ``poisson``: ``mean(p - t log(p + eps))``
- cross-entropies: as :mod:`fastconv.losses` (probabilities clipped to
  ``[eps, 1 - eps]``, categorical ones renormalised to sum 1; logits through
  a stable log-softmax / softplus), with Keras' ``label_smoothing``.
- accuracies: 1.0 where the prediction matches, else 0.0.
"""

from __future__ import annotations

import numpy as np

from fastconv.losses.crossentropy import (
    binary_ce_elements,
    class_log_probabilities,
    softmax_ce_values,
)
from fastconv.losses.hinge import categorical_hinge_values, signed_targets
from fastconv.losses.probabilistic import kl_divergence_values, poisson_elements
from fastconv.losses.regression import log1p_floor, log_cosh_elements
from fastconv.metrics.base import EPSILON, dense_pair, float_pred, numeric, same_rank

__all__ = [
    "accuracy",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "hinge",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
]


def _check_axis(axis: object) -> None:
    if axis != -1 or isinstance(axis, bool):
        raise ValueError(f"Invalid value for argument `axis`: fastconv supports only "
                         f"axis=-1 (the last axis), received axis={axis!r}.")


def check_label_smoothing(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (
            0 <= value <= 1):
        raise ValueError(f"Invalid value for argument `label_smoothing`: expected a float "
                         f"in [0, 1], received label_smoothing={value!r}.")
    return float(value)


def _sparse_labels(y_true: object, y_pred: np.ndarray, ignore_class: int | None = None
                   ) -> np.ndarray:
    """Integer class indices of shape ``y_pred.shape[:-1]`` (a trailing 1 dropped)."""
    given = numeric(y_true, "y_true")
    batch_shape = y_pred.shape[:-1]
    labels = given
    if labels.shape == batch_shape + (1,):
        labels = labels.reshape(batch_shape)
    if labels.shape != batch_shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected class indices of shape "
            f"{batch_shape} or {batch_shape + (1,)} for y_pred of shape {y_pred.shape}, "
            f"received shape {given.shape}."
        )
    if labels.dtype.kind == "f" and (~np.isfinite(labels) | (labels != np.round(labels))).any():
        raise ValueError("Invalid value for argument `y_true`: expected integer class "
                         "indices, received non-integral values.")
    labels = labels.astype(np.int64)
    valid = labels if ignore_class is None else labels[labels != ignore_class]
    k = y_pred.shape[-1]
    if valid.size and (valid.min() < 0 or valid.max() >= k):
        raise ValueError(
            f"Invalid value for argument `y_true`: class indices must lie in [0, {k}) for "
            f"y_pred with {k} classes, received values in [{valid.min()}, {valid.max()}]."
        )
    return labels


# ----------------------------------------------------------------------------
# accuracies


def accuracy(y_true: object, y_pred: object) -> np.ndarray:
    """1.0 where ``y_pred == y_true`` (same shape, a trailing 1 may differ)."""
    p = numeric(y_pred, "y_pred")
    given = numeric(y_true, "y_true")
    t, p = same_rank(given.astype(p.dtype), p)
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected y_pred's shape {p.shape} (a "
            f"trailing axis of size 1 may be added or dropped), received shape "
            f"{given.shape}.")
    return (t == p).astype(np.float32)


def binary_accuracy(y_true: object, y_pred: object, threshold: float = 0.5) -> np.ndarray:
    """1.0 where ``(y_pred > threshold)`` equals the 0/1 target."""
    t, p = dense_pair(y_true, y_pred)
    return (t == (p > threshold)).astype(np.float32)


def categorical_accuracy(y_true: object, y_pred: object) -> np.ndarray:
    """1.0 where the arg-max of ``y_pred`` is that of the one-hot ``y_true`` (ties: first)."""
    p = float_pred(y_pred)
    t = numeric(y_true, "y_true")
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected one-hot targets of y_pred's "
            f"shape {p.shape}, received shape {t.shape}.")
    return (t.argmax(axis=-1) == p.argmax(axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true: object, y_pred: object) -> np.ndarray:
    """1.0 where the arg-max of ``y_pred`` equals the integer ``y_true`` (ties:
    first). A target that is no valid index never matches, as in Keras."""
    p = float_pred(y_pred)
    t = numeric(y_true, "y_true")
    batch_shape = p.shape[:-1]
    if t.shape == batch_shape + (1,):
        t = t.reshape(batch_shape)
    elif t.shape != batch_shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected class indices of shape "
            f"{batch_shape} or {batch_shape + (1,)} for y_pred of shape {p.shape}, "
            f"received shape {np.shape(y_true)}.")
    return (t == p.argmax(axis=-1)).astype(np.float32)


def _in_top_k(labels: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Keras' ``ops.in_top_k``: the target's score is at least the k-th largest,
    so ties at the boundary count as in the top k."""
    n = scores.shape[-1]
    target = np.take_along_axis(scores, labels[:, None], axis=-1)[:, 0]
    if k >= n:
        return np.ones(labels.shape, dtype=bool)
    kth = np.partition(scores, n - k, axis=-1)[:, n - k]
    return target >= kth


def top_k_categorical_accuracy(y_true: object, y_pred: object, k: int = 5) -> np.ndarray:
    """1.0 where the one-hot target's class is among the ``k`` largest scores."""
    p = float_pred(y_pred)
    t = numeric(y_true, "y_true")
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected one-hot targets of y_pred's "
            f"shape {p.shape}, received shape {t.shape}.")
    labels = t.argmax(axis=-1)
    hits = _in_top_k(labels.reshape(-1), p.reshape(-1, p.shape[-1]), k)
    return hits.reshape(labels.shape).astype(np.float32)


def sparse_top_k_categorical_accuracy(y_true: object, y_pred: object, k: int = 5,
                                      from_sorted_ids: bool = False) -> np.ndarray:
    """1.0 where the integer target is among the ``k`` largest scores; with
    ``from_sorted_ids``, ``y_pred`` holds class ids sorted by score and the
    target is looked for among its first ``k``."""
    p = numeric(y_pred, "y_pred")
    t = numeric(y_true, "y_true")
    if p.ndim < 1:
        raise ValueError(f"Invalid shape for argument `y_pred`: expected at least one "
                         f"dimension, received shape {p.shape}.")
    flat_p = p.reshape(-1, p.shape[-1])
    flat_t = t.reshape(-1)
    if flat_t.shape[0] != flat_p.shape[0]:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected one class index per row of "
            f"y_pred (shape {p.shape}), received shape {t.shape}.")
    if from_sorted_ids:
        hits = (flat_t[:, None] == flat_p[:, :k]).any(axis=1)
    else:
        labels = flat_t.astype(np.int64)
        inside = (labels >= 0) & (labels < flat_p.shape[-1])
        hits = np.zeros(labels.shape, dtype=bool)
        hits[inside] = _in_top_k(labels[inside], flat_p[inside], k)
    return hits.reshape(t.shape).astype(np.float32)


# ----------------------------------------------------------------------------
# regression


def mean_squared_error(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return np.square(t - p).mean(axis=-1)


def mean_absolute_error(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return np.abs(t - p).mean(axis=-1)


def mean_absolute_percentage_error(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    eps = p.dtype.type(EPSILON)
    return p.dtype.type(100) * np.abs((t - p) / np.maximum(np.abs(t), eps)).mean(axis=-1)


def mean_squared_logarithmic_error(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return np.square(log1p_floor(p) - log1p_floor(t)).mean(axis=-1)


def log_cosh(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return log_cosh_elements(t, p).mean(axis=-1)


def _l2_normalize(x: np.ndarray, axis: int) -> np.ndarray:
    # Keras' ops.normalize: x * min(1 / ||x||, 1 / eps), so a zero vector stays 0.
    square_sum = np.square(x).sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.minimum(1 / np.sqrt(square_sum), x.dtype.type(1 / EPSILON))
    return x * inv


def cosine_similarity(y_true: object, y_pred: object, axis: int = -1) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not (
            -p.ndim <= axis < p.ndim):
        raise ValueError(f"Invalid value for argument `axis`: expected an int in "
                         f"[{-p.ndim}, {p.ndim}), received axis={axis!r}.")
    return (_l2_normalize(t, axis) * _l2_normalize(p, axis)).sum(axis=axis)


# ----------------------------------------------------------------------------
# hinge


def hinge(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return np.maximum(1 - signed_targets(t) * p, 0).mean(axis=-1)


def squared_hinge(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return np.square(np.maximum(1 - signed_targets(t) * p, 0)).mean(axis=-1)


def categorical_hinge(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return categorical_hinge_values(t, p)


# ----------------------------------------------------------------------------
# probabilistic


def kl_divergence(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return kl_divergence_values(t, p)


def poisson(y_true: object, y_pred: object) -> np.ndarray:
    t, p = dense_pair(y_true, y_pred)
    return poisson_elements(t, p).mean(axis=-1)


def binary_crossentropy(y_true: object, y_pred: object, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> np.ndarray:
    _check_axis(axis)
    t, p = dense_pair(y_true, y_pred)
    if label_smoothing:
        t = t * p.dtype.type(1 - label_smoothing) + p.dtype.type(0.5 * label_smoothing)
    return binary_ce_elements(t, p, from_logits).mean(axis=-1)


def categorical_crossentropy(y_true: object, y_pred: object, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> np.ndarray:
    _check_axis(axis)
    p = float_pred(y_pred)
    t = numeric(y_true, "y_true").astype(p.dtype)
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected one-hot targets of y_pred's "
            f"shape {p.shape}, received shape {t.shape}.")
    if label_smoothing:
        k = p.shape[-1]
        t = t * p.dtype.type(1 - label_smoothing) + p.dtype.type(label_smoothing / k)
    return softmax_ce_values(t, p, from_logits)


def sparse_categorical_crossentropy(y_true: object, y_pred: object, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1
                                    ) -> np.ndarray:
    """Cross-entropy against integer labels; positions labelled ``ignore_class``
    give 0 (the metric class also leaves them out of the mean)."""
    _check_axis(axis)
    p = float_pred(y_pred)
    labels = _sparse_labels(y_true, p, ignore_class)
    valid = np.ones(labels.shape, dtype=bool) if ignore_class is None else labels != ignore_class
    safe = np.where(valid, labels, 0)
    values = -np.take_along_axis(class_log_probabilities(p, from_logits), safe[..., None], axis=-1)[..., 0]
    return np.where(valid, values, 0).astype(p.dtype)

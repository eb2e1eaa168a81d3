"""F-scores (``keras/src/metrics/f_score_metrics.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.metrics.base import EPSILON, Metric, check_real, numeric

_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """F-beta score of ``(N, K)`` multi-class or multi-label predictions
    (``keras.metrics.FBetaScore``).

    Predictions become 0/1: above ``threshold``, or (``threshold=None``)
    equal to the row's maximum and non-zero. Per class (``average`` other
    than "micro") or over all entries ("micro") the weighted counts ``tp``,
    ``fp``, ``fn`` and the support ``sum(y_true)`` accumulate; then, with
    ``eps = 1e-7`` as Keras::

        precision = tp / (tp + fp + eps);  recall = tp / (tp + fn + eps)
        f = (1 + beta**2) * precision * recall / (beta**2 * precision + recall + eps)

    ``average=None`` returns ``f`` per class; "micro" the single value;
    "macro" the mean over classes; "weighted" the mean weighted by support.
    State: ``true_positives``, ``false_positives``, ``false_negatives``,
    ``intermediate_weights``, created at the first batch.

    Parameters
    ----------
    average : {None, "micro", "macro", "weighted"}, default None
    beta : float, default 1.0
        > 0.
    threshold : float in (0, 1], optional
    name : str, default "fbeta_score"
    dtype : {None, "float32", "float64"}, optional
    """

    _state_names = ("true_positives", "false_positives", "false_negatives",
                    "intermediate_weights")

    def __init__(self, average: str | None = None, beta: float = 1.0,
                 threshold: float | None = None, name: str = "fbeta_score",
                 dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        if average not in _AVERAGES:
            raise ValueError(f"Invalid value for argument `average`: expected one of None, "
                             f"'micro', 'macro', 'weighted', received average={average!r}.")
        beta = check_real(beta, "beta")
        if beta <= 0:
            raise ValueError(f"Invalid value for argument `beta`: expected a float > 0, "
                             f"received beta={beta!r}.")
        if threshold is not None:
            threshold = check_real(threshold, "threshold")
            if not 0 < threshold <= 1:
                raise ValueError(f"Invalid value for argument `threshold`: expected None or "
                                 f"a float in (0, 1], received threshold={threshold!r}.")
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self.true_positives = self.false_positives = None
        self.false_negatives = self.intermediate_weights = None

    def update_state(self, y_true: object, y_pred: object, sample_weight: object = None) -> None:
        """Count one batch.

        Parameters
        ----------
        y_true : array_like, shape (N, K)
            0/1 targets (one-hot or multi-label).
        y_pred : array_like, shape (N, K)
            Scores.
        sample_weight : float or array_like, optional
            A scalar, ``(N,)`` or ``(N, K)``.
        """
        t = numeric(y_true, "y_true").astype(self.dtype)
        p = numeric(y_pred, "y_pred").astype(self.dtype)
        if t.ndim != 2 or p.ndim != 2 or t.shape != p.shape:
            raise ValueError(f"Invalid shape for arguments `y_true`/`y_pred`: {type(self).__name__} "
                             f"expects two arrays of one shape (batch_size, output_dim), "
                             f"received y_true.shape={t.shape} and y_pred.shape={p.shape}.")
        k = p.shape[1]
        if self.true_positives is None:
            shape = () if self.average == "micro" else (k,)
            for state in self._state_names:
                setattr(self, state, np.zeros(shape))
        elif self.average != "micro" and self.true_positives.shape != (k,):
            raise ValueError(f"Invalid shape for argument `y_pred`: expected "
                             f"{self.true_positives.shape[0]} classes as in earlier batches, "
                             f"received shape {p.shape}.")
        if self.threshold is None:
            # Keras: the row maximum is 1, unless it is 0 (an all-zero row stays 0).
            predicted = (p >= p.max(axis=-1, keepdims=True)) & (np.abs(p) > 1e-9)
        else:
            predicted = p > self.threshold
        predicted = predicted.astype(np.float64)
        t = t.astype(np.float64)
        w = None
        if sample_weight is not None:
            w = numeric(sample_weight, "sample_weight").astype(np.float64)
            if w.ndim < 2:
                w = w.reshape(w.shape + (1,) * (2 - w.ndim))
            try:
                np.broadcast_shapes(w.shape, t.shape)
            except ValueError:
                raise ValueError(f"Invalid shape for argument `sample_weight`: expected a "
                                 f"scalar, (N,) or (N, K) for y_true of shape {t.shape}, "
                                 f"received shape {np.shape(sample_weight)}.") from None

        def weighted_sum(values: np.ndarray) -> np.ndarray:
            return (values if w is None else values * w).sum(axis=self.axis)

        self.true_positives += weighted_sum(predicted * t)
        self.false_positives += weighted_sum(predicted * (1 - t))
        self.false_negatives += weighted_sum((1 - predicted) * t)
        self.intermediate_weights += weighted_sum(t)

    def result(self) -> Any:
        """The score: per class for ``average=None``, else one float (0 before any update)."""
        if self.true_positives is None:
            return 0.0
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        b2 = self.beta ** 2
        f = precision * recall / (b2 * precision + recall + EPSILON) * (1 + b2)
        if self.average == "weighted":
            support = self.intermediate_weights
            f = (f * support / (support.sum() + EPSILON)).sum()
        elif self.average is not None:
            f = np.mean(f)
        return self._scalar_or_vector(f)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score, the harmonic mean of precision and recall (``keras.metrics.F1Score``):
    :class:`FBetaScore` with ``beta=1``.

    Parameters
    ----------
    average : {None, "micro", "macro", "weighted"}, default None
    threshold : float in (0, 1], optional
    name : str, default "f1_score"
    dtype : {None, "float32", "float64"}, optional
    """

    def __init__(self, average: str | None = None, threshold: float | None = None,
                 name: str = "f1_score", dtype: str | None = None) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name,
                         dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config

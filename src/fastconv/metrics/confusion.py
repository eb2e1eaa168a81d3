"""Confusion-matrix metrics (``keras/src/metrics/confusion_metrics.py`` and
``metrics_utils.update_confusion_matrix_variables``).

Each update counts, per threshold ``th``, the (weighted) entries with
``y_true != 0`` and ``y_pred > th`` (true positives), ``y_true == 0`` and
``y_pred > th`` (false positives), and so on; ``y_true`` and ``y_pred`` are
flattened so every entry is one binary decision. As Keras, the comparison
is made in the metric's dtype (float32 by default), and thresholds spread
evenly over ``[0, 1]`` (AUC's, or ``[0, 0.5, 1]``) use Keras' bucket formula
``ceil(p * (T - 1)) - 1`` on predictions clipped to ``[0, 1]``, which
equals ``p > th`` up to float rounding.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

from fastconv._validation import check_flag
from fastconv.metrics.base import (
    EPSILON,
    Metric,
    check_int,
    float_pred,
    numeric,
    same_rank,
    to_snake_case,
)

# metrics_utils.NEG_INF: the threshold of Precision/Recall with top_k set.
NEG_INF = -1e10


def _parse_thresholds(thresholds: object, default: float) -> list[float]:
    """Keras' ``parse_init_thresholds``: a float or list of floats in [0, 1]."""
    if thresholds is None:
        return [default]
    values = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [
        thresholds]
    bad = [t for t in values if isinstance(t, bool) or not isinstance(t, numbers.Real)
           or not 0 <= t <= 1]
    if bad or not values:
        raise ValueError(
            f"Invalid value for argument `thresholds`: expected a float or a non-empty "
            f"list of floats in [0, 1], received thresholds={thresholds!r}.")
    return [float(t) for t in values]


def _evenly_distributed(thresholds: list[float] | np.ndarray) -> bool:
    """Keras' ``is_evenly_distributed_thresholds``."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _check_class_id(class_id: object) -> int | None:
    if class_id is None:
        return None
    return check_int(class_id, "class_id", 0)


def _filter_top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Keras' ``_filter_top_k``: keep the k largest of the last axis, others NEG_INF."""
    order = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.where(keep, x, x.dtype.type(NEG_INF))


def confusion_counts(
    y_true: object, y_pred: object, thresholds: np.ndarray, dtype: str,
    evenly: bool, sample_weight: object = None, top_k: int | None = None,
    class_id: int | None = None, multi_label: bool = False,
    label_weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The weighted counts ``tp``, ``fp``, ``tn``, ``fn`` of one batch per
    threshold, shape ``(T,)`` (``(T, L)`` for ``multi_label``), in float64."""
    given_pred = float_pred(y_pred)
    p = given_pred.astype(dtype)
    t = numeric(y_true, "y_true").astype(dtype)
    p, t = same_rank(p, t)
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected y_pred's shape "
            f"{given_pred.shape} (a trailing axis of size 1 may be added or dropped), "
            f"received shape {np.shape(y_true)}.")
    w = None
    if sample_weight is not None:
        w = numeric(sample_weight, "sample_weight").astype(dtype)[..., None]
        _, w = same_rank(t, w, expand_rank_1=False)
    if top_k is not None:
        p = _filter_top_k(p, top_k)
    if class_id is not None:
        if p.ndim == 1:
            raise ValueError(
                f"Invalid shape for argument `y_pred`: with class_id set, expected "
                f"(num_samples, num_classes), received shape {p.shape}.")
        if class_id >= p.shape[-1]:
            raise ValueError(
                f"Invalid value for argument `class_id`: expected an int in [0, "
                f"{p.shape[-1]}) for y_pred of shape {p.shape}, received class_id={class_id}.")
        t, p = t[..., class_id, None], p[..., class_id, None]
    if w is not None:
        try:
            w = np.broadcast_to(w, p.shape)
        except ValueError:
            raise ValueError(
                f"Invalid shape for argument `sample_weight`: expected a scalar or a shape "
                f"that broadcasts to {p.shape}, received shape {np.shape(sample_weight)}."
            ) from None
    weights = np.ones(p.shape) if w is None else w.astype(np.float64)
    if label_weights is not None:
        weights = weights * np.broadcast_to(label_weights, p.shape)
    positive = t.astype(bool)
    if multi_label:
        if p.ndim != 2:
            raise ValueError(f"Invalid shape for argument `y_pred`: with multi_label=True, "
                             f"expected rank 2, received shape {p.shape}.")
    else:
        p, positive, weights = p.reshape(-1, 1), positive.reshape(-1, 1), weights.reshape(-1, 1)
    true_w = np.where(positive, weights, 0.0)
    false_w = np.where(positive, 0.0, weights)
    n = len(thresholds)
    if evenly:
        # Prediction p lies above threshold i exactly for i <= ceil(p (T-1)) - 1.
        clipped = np.clip(p, 0, 1)
        bucket = np.ceil(clipped * p.dtype.type(n - 1)) - 1
        if thresholds[0] < 0 or thresholds[-1] > 1:
            bucket = np.maximum(bucket, 0)
        bucket = bucket.astype(np.int64)
        tp = np.empty((n, p.shape[1]))
        fp = np.empty((n, p.shape[1]))
        for j in range(p.shape[1]):
            inside = bucket[:, j] >= 0
            for out, w_col in ((tp, true_w[:, j]), (fp, false_w[:, j])):
                counts = np.bincount(bucket[inside, j], weights=w_col[inside], minlength=n)
                out[:, j] = np.cumsum(counts[::-1])[::-1]
    else:
        above = p[None] > thresholds.astype(p.dtype)[:, None, None]  # (T, M, L)
        tp = np.where(above, true_w[None], 0.0).sum(axis=1)
        fp = np.where(above, false_w[None], 0.0).sum(axis=1)
    counts = {"tp": tp, "fp": fp, "tn": false_w.sum(axis=0) - fp, "fn": true_w.sum(axis=0) - tp}
    if not multi_label:
        counts = {k: v[:, 0] for k, v in counts.items()}
    return counts


def _divide_no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), 0.0)


class _ConfusionMetric(Metric):
    """Common state handling: each name of ``_state_names`` is a float64
    array with one entry per threshold."""

    _keys: ClassVar[dict[str, str]] = {}

    def _accumulate(self, y_true: object, y_pred: object, sample_weight: object,
                    **kwargs: Any) -> None:
        counts = confusion_counts(y_true, y_pred, self._threshold_array, self.dtype,
                                  self._thresholds_distributed_evenly,
                                  sample_weight=sample_weight, **kwargs)
        for name in self._state_names:
            getattr(self, name)[...] += counts[self._keys[name]]


class _ConditionCount(_ConfusionMetric):
    """A count of one confusion-matrix cell (Keras' ``_ConfusionMatrixConditionCount``).

    State: ``accumulator``, one entry per threshold.
    """

    _state_names = ("accumulator",)
    _cell = ""

    def __init__(self, thresholds: object = None, name: str | None = None,
                 dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _parse_thresholds(thresholds, 0.5)
        self._threshold_array = np.asarray(self.thresholds)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        self._keys = {"accumulator": self._cell}
        self.accumulator = np.zeros(len(self.thresholds))

    def update_state(self, y_true: object, y_pred: object, sample_weight: object = None) -> None:
        """Count one batch.

        Parameters
        ----------
        y_true : array_like
            Targets of ``y_pred``'s shape (a trailing 1 may differ); non-zero
            means positive.
        y_pred : array_like
            Scores, compared with each threshold.
        sample_weight : float or array_like, optional
            A scalar, or one weight per sample or per entry.
        """
        self._accumulate(y_true, y_pred, sample_weight)

    def result(self) -> Any:
        """The count (one per threshold when several were given)."""
        return self._scalar_or_vector(self.accumulator[0] if len(self.thresholds) == 1
                                      else self.accumulator)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


def _count_class(cls_name: str, cell: str, what: str) -> type[_ConditionCount]:
    doc = f"""The (weighted) number of {what} (``keras.metrics.{cls_name}``).

    Parameters
    ----------
    thresholds : float or list of float in [0, 1], default 0.5
        A prediction above a threshold counts as positive; one count per
        threshold.
    name : str, optional
        Default "{to_snake_case(cls_name)}",
        made unique as Keras does.
    dtype : {{None, "float32", "float64"}}, optional
    """
    return type(cls_name, (_ConditionCount,), {"_cell": cell, "__doc__": doc,
                                               "__module__": __name__})


TruePositives = _count_class("TruePositives", "tp", "true positives")
FalsePositives = _count_class("FalsePositives", "fp", "false positives")
TrueNegatives = _count_class("TrueNegatives", "tn", "true negatives")
FalseNegatives = _count_class("FalseNegatives", "fn", "false negatives")


class _PrecisionRecall(_ConfusionMetric):
    def __init__(self, thresholds: object = None, top_k: int | None = None,
                 class_id: int | None = None, name: str | None = None,
                 dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = None if top_k is None else check_int(top_k, "top_k", 1)
        self.class_id = _check_class_id(class_id)
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self._threshold_array = np.asarray(self.thresholds)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        for state in self._state_names:
            setattr(self, state, np.zeros(len(self.thresholds)))

    def update_state(self, y_true: object, y_pred: object, sample_weight: object = None) -> None:
        """Count one batch.

        Parameters
        ----------
        y_true : array_like
            Targets of ``y_pred``'s shape (a trailing 1 may differ); non-zero
            means positive.
        y_pred : array_like
            Scores in [0, 1] (or logits with ``thresholds=0``).
        sample_weight : float or array_like, optional
            A scalar, or one weight per sample or per entry.
        """
        self._accumulate(y_true, y_pred, sample_weight, top_k=self.top_k,
                         class_id=self.class_id)

    def _ratio(self, other: np.ndarray) -> Any:
        values = _divide_no_nan(self.true_positives, self.true_positives + other)
        return self._scalar_or_vector(values[0] if len(self.thresholds) == 1 else values)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """``true_positives / (true_positives + false_positives)`` (``keras.metrics.Precision``).

    State: ``true_positives``, ``false_positives``, one entry per threshold.

    Parameters
    ----------
    thresholds : float or list of float in [0, 1], optional
        A prediction above a threshold counts as positive. Default 0.5, or,
        with ``top_k``, every one of the top k.
    top_k : int, optional
        Only the ``k`` highest scores of each sample's last axis count as
        predicted (ties: first index).
    class_id : int, optional
        Only that class (index of the last axis) is scored.
    name : str, optional
        Default "precision", made unique as Keras does.
    dtype : {None, "float32", "float64"}, optional

    Examples
    --------
    >>> m = Precision()
    >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    >>> round(m.result(), 4)
    0.6667
    """

    _state_names = ("true_positives", "false_positives")
    _keys: ClassVar[dict[str, str]] = {"true_positives": "tp", "false_positives": "fp"}

    def result(self) -> Any:
        """Precision (one per threshold when several were given); 0 when nothing was positive."""
        return self._ratio(self.false_positives)


class Recall(_PrecisionRecall):
    """``true_positives / (true_positives + false_negatives)`` (``keras.metrics.Recall``).

    State: ``true_positives``, ``false_negatives``, one entry per threshold.
    Arguments as :class:`Precision`; the default name is "recall".

    Examples
    --------
    >>> m = Recall()
    >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    >>> round(m.result(), 4)
    0.6667
    """

    _state_names = ("true_positives", "false_negatives")
    _keys: ClassVar[dict[str, str]] = {"true_positives": "tp", "false_negatives": "fn"}

    def result(self) -> Any:
        """Recall (one per threshold when several were given); 0 when no target was positive."""
        return self._ratio(self.false_negatives)


_CURVES = {"roc": "ROC", "ROC": "ROC", "pr": "PR", "PR": "PR", "prgain": "PRGAIN",
           "PRGAIN": "PRGAIN"}
_SUMMATIONS = {"interpolation": "interpolation", "Interpolation": "interpolation",
               "majoring": "majoring", "Majoring": "majoring",
               "minoring": "minoring", "Minoring": "minoring"}


class AUC(_ConfusionMetric):
    """Area under the ROC or precision-recall curve, approximated over
    thresholds (``keras.metrics.AUC``).

    Thresholds: ``num_thresholds`` points, ``[-1e-7, 1/(T-1), ..., (T-2)/(T-1),
    1 + 1e-7]``, or the given ``thresholds`` sorted with ``-1e-7`` and
    ``1 + 1e-7`` added. State: ``true_positives``, ``false_positives``,
    ``true_negatives``, ``false_negatives``, shape ``(T,)`` (``(T, L)`` with
    ``multi_label``). ``result()``:

    - ROC: ``x = fp / (fp + tn)``, ``y = tp / (tp + fn)``, area
      ``sum((x[i] - x[i+1]) * h[i])`` with ``h`` the mean of ``y[i]`` and
      ``y[i+1]`` ("interpolation", the trapezoid rule), their minimum
      ("minoring") or maximum ("majoring").
    - PR with "interpolation": Davis & Goadrich's interpolation of true and
      false positives between thresholds, Keras' closed form
      (``AUC.interpolate_pr_auc``); otherwise as ROC with ``x`` the recall
      and ``y`` the precision.
    - PRGAIN: precision gain against recall gain, as Keras.

    Parameters
    ----------
    num_thresholds : int, default 200
        > 1; ignored when ``thresholds`` is given.
    curve : {"ROC", "PR", "PRGAIN"}, default "ROC"
    summation_method : {"interpolation", "minoring", "majoring"}, default "interpolation"
    name : str, optional
        Default "auc", made unique as Keras does.
    dtype : {None, "float32", "float64"}, optional
    thresholds : list of float in [0, 1], optional
    multi_label : bool, default False
        If True, ``y_pred`` is ``(N, L)`` and one AUC per label is averaged
        (weighted by ``label_weights``); else every entry is one decision.
    num_labels : int, optional
        With ``multi_label``, creates the state before the first batch.
    label_weights : list of float, optional
        Per label: weights of the average (``multi_label``) or of each
        entry's count.
    from_logits : bool, default False
        Apply a sigmoid to ``y_pred`` first.

    Examples
    --------
    >>> m = AUC(num_thresholds=3)
    >>> m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    >>> m.result()
    0.75
    """

    _state_names = ("true_positives", "false_positives", "true_negatives", "false_negatives")
    _keys: ClassVar[dict[str, str]] = {"true_positives": "tp", "false_positives": "fp", "true_negatives": "tn",
             "false_negatives": "fn"}

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name: str | None = None,
                 dtype: str | None = None, thresholds: object = None,
                 multi_label: bool = False, num_labels: int | None = None,
                 label_weights: object = None, from_logits: bool = False) -> None:
        if not isinstance(curve, str) or curve not in _CURVES:
            raise ValueError(f"Invalid value for argument `curve`: expected one of 'ROC', "
                             f"'PR', 'PRGAIN', received curve={curve!r}.")
        if not isinstance(summation_method, str) or summation_method not in _SUMMATIONS:
            raise ValueError(
                f"Invalid value for argument `summation_method`: expected one of "
                f"'interpolation', 'majoring', 'minoring', received "
                f"summation_method={summation_method!r}.")
        super().__init__(name=name, dtype=dtype)
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_parse_thresholds(thresholds, 0.5))
            self.num_thresholds = len(inner) + 2
            self._thresholds_distributed_evenly = _evenly_distributed([0.0, *inner, 1.0])
        else:
            self.num_thresholds = check_int(num_thresholds, "num_thresholds", 2)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1)
                     for i in range(self.num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        self._threshold_array = np.array([0.0 - EPSILON, *inner, 1.0 + EPSILON])
        self.curve = _CURVES[curve]
        self.summation_method = _SUMMATIONS[summation_method]
        self.multi_label = check_flag(multi_label, "multi_label")
        self.from_logits = check_flag(from_logits, "from_logits")
        if label_weights is not None:
            label_weights = numeric(label_weights, "label_weights").astype(np.float64)
            if label_weights.ndim != 1 or (label_weights < 0).any():
                raise ValueError(
                    f"Invalid value for argument `label_weights`: expected a list of "
                    f"non-negative floats, received label_weights={label_weights!r}.")
        self.label_weights = label_weights
        self.num_labels = None if num_labels is None else check_int(num_labels, "num_labels", 1)
        if self.num_labels is not None and not self.multi_label:
            raise ValueError("Invalid value for argument `num_labels`: it is needed only "
                             f"when multi_label=True, received num_labels={num_labels!r}.")
        self._num_labels: int | None = None
        if not self.multi_label:
            self._build(None)
        elif self.num_labels is not None:
            self._build(self.num_labels)

    @property
    def thresholds(self) -> list[float]:
        """The thresholds, the end points ``-1e-7`` and ``1 + 1e-7`` included."""
        return [float(t) for t in self._threshold_array]

    def _build(self, num_labels: int | None) -> None:
        shape = (self.num_thresholds,) if num_labels is None else (self.num_thresholds,
                                                                   num_labels)
        self._num_labels = num_labels
        for state in self._state_names:
            setattr(self, state, np.zeros(shape))

    def update_state(self, y_true: object, y_pred: object, sample_weight: object = None) -> None:
        """Count one batch.

        Parameters
        ----------
        y_true : array_like
            Targets of ``y_pred``'s shape (a trailing 1 may differ); non-zero
            means positive.
        y_pred : array_like
            Probabilities (logits with ``from_logits``); ``(N, L)`` with
            ``multi_label``.
        sample_weight : float or array_like, optional
            A scalar, or one weight per sample or per entry.
        """
        p = float_pred(y_pred)
        if self.from_logits:
            p = (1 / (1 + np.exp(-p.astype(np.float64)))).astype(p.dtype)
        if self.multi_label:
            if p.ndim != 2:
                raise ValueError(f"Invalid shape for argument `y_pred`: with "
                                 f"multi_label=True, expected rank 2 (N, L), received "
                                 f"shape {p.shape}.")
            if self._num_labels is None:
                self._build(p.shape[1])
            elif p.shape[1] != self._num_labels:
                raise ValueError(f"Invalid shape for argument `y_pred`: expected "
                                 f"{self._num_labels} labels, received shape {p.shape}.")
        self._accumulate(y_true, p, sample_weight, multi_label=self.multi_label,
                         label_weights=None if self.multi_label else self.label_weights)

    def _average(self, by_label: np.ndarray) -> float:
        if not self.multi_label:
            return float(by_label.sum())
        per_label = by_label.sum(axis=0)
        if self.label_weights is None:
            return float(per_label.mean())
        total = self.label_weights.sum()
        return float((per_label * self.label_weights).sum() / total) if total else 0.0

    def _interpolate_pr_auc(self) -> float:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        increment = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)),
                                   np.maximum(tp[1:] + fn[1:], 0))
        return self._average(increment)

    def result(self) -> float:
        """The area under the curve (0 before any update)."""
        if self.multi_label and self._num_labels is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:
            scale = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = np.where(tp == 0, 0.0, 1.0 - scale * _divide_no_nan(fn, tp))
            x = np.maximum(recall_gain, 0.0)
            y = np.where(tp == 0, 1.0, 1.0 - scale * _divide_no_nan(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._average((x[:-1] - x[1:]) * heights)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else
            self.label_weights.tolist(),
            "from_logits": self.from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config

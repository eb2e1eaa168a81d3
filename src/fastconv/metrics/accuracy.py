"""Accuracy metrics (``keras/src/metrics/accuracy_metrics.py``): running
means of the 0/1 matches computed in :mod:`fastconv.metrics.functions`."""

from __future__ import annotations

from typing import Any

from fastconv._validation import check_flag
from fastconv.metrics import functions as F
from fastconv.metrics.base import FunctionMean, check_int, check_real


class Accuracy(FunctionMean):
    """How often predictions exactly equal the targets (``keras.metrics.Accuracy``).

    ``y_true`` and ``y_pred`` have one shape ``(N, ..., D)`` (a trailing axis
    of size 1 may be added or dropped); each sample scores the fraction of its
    entries that are equal.

    Parameters
    ----------
    name : str, default "accuracy"
    dtype : {None, "float32", "float64"}, optional
    """

    fn = F.accuracy

    def __init__(self, name: str = "accuracy", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)


class BinaryAccuracy(FunctionMean):
    """How often thresholded predictions match 0/1 targets (``keras.metrics.BinaryAccuracy``).

    A prediction counts as 1 when it is strictly greater than ``threshold``.
    ``y_true`` and ``y_pred`` have one shape ``(N, ..., D)`` (so ``(N,)``
    labels go with ``(N, 1)`` outputs); each sample scores the fraction of
    its outputs that match.

    Parameters
    ----------
    name : str, default "binary_accuracy"
    dtype : {None, "float32", "float64"}, optional
    threshold : float, default 0.5
        Use 0.0 for a model that outputs logits.
    """

    fn = F.binary_accuracy

    def __init__(self, name: str = "binary_accuracy", dtype: str | None = None,
                 threshold: float = 0.5) -> None:
        super().__init__(name=name, dtype=dtype)
        self.threshold = check_real(threshold, "threshold")
        self._fn_kwargs = {"threshold": self.threshold}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(FunctionMean):
    """How often the arg-max of the predictions is the one-hot target's class.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., K)``; ties go to the
    first index, as ``argmax``. Logits work as well as probabilities.

    Parameters
    ----------
    name : str, default "categorical_accuracy"
    dtype : {None, "float32", "float64"}, optional
    """

    fn = F.categorical_accuracy

    def __init__(self, name: str = "categorical_accuracy", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)


class SparseCategoricalAccuracy(FunctionMean):
    """How often the arg-max of the predictions equals the integer target.

    ``y_true`` holds class indices of shape ``(N, ...)`` or ``(N, ..., 1)``;
    ``y_pred`` has shape ``(N, ..., K)``. Ties go to the first index. A
    target that is not a valid index simply never matches, as in Keras.

    Parameters
    ----------
    name : str, default "sparse_categorical_accuracy"
    dtype : {None, "float32", "float64"}, optional
    """

    fn = F.sparse_categorical_accuracy

    def __init__(self, name: str = "sparse_categorical_accuracy",
                 dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)


class TopKCategoricalAccuracy(FunctionMean):
    """How often the one-hot target's class is among the ``k`` highest scores
    (``keras.metrics.TopKCategoricalAccuracy``).

    ``y_true`` and ``y_pred`` have shape ``(N, ..., K)``. As Keras'
    ``ops.in_top_k``, a target whose score ties with the k-th highest counts
    as a hit.

    Parameters
    ----------
    k : int, default 5
    name : str, default "top_k_categorical_accuracy"
    dtype : {None, "float32", "float64"}, optional
    """

    fn = F.top_k_categorical_accuracy

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy",
                 dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.k = check_int(k, "k", 1)
        self._fn_kwargs = {"k": self.k}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(FunctionMean):
    """How often the integer target is among the ``k`` highest scores
    (``keras.metrics.SparseTopKCategoricalAccuracy``).

    ``y_true`` holds class indices, one per row of ``y_pred`` (shape
    ``(N,)``, ``(N, 1)`` or ``(N, ...)`` for ``y_pred`` of shape
    ``(N, ..., K)``). With ``from_sorted_ids=True``, ``y_pred`` holds the ids
    of the top classes sorted by decreasing score (at least ``k`` of them)
    instead of scores.

    Parameters
    ----------
    k : int, default 5
    name : str, default "sparse_top_k_categorical_accuracy"
    dtype : {None, "float32", "float64"}, optional
    from_sorted_ids : bool, default False
    """

    fn = F.sparse_top_k_categorical_accuracy

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy",
                 dtype: str | None = None, from_sorted_ids: bool = False) -> None:
        super().__init__(name=name, dtype=dtype)
        self.k = check_int(k, "k", 1)
        self.from_sorted_ids = check_flag(from_sorted_ids, "from_sorted_ids")
        self._fn_kwargs = {"k": self.k, "from_sorted_ids": self.from_sorted_ids}

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "k": self.k}
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config

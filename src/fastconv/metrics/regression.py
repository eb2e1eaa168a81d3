"""Regression, hinge and probabilistic metrics (``keras/src/metrics/
regression_metrics.py``, ``hinge_metrics.py``, ``probabilistic_metrics.py``):
running means of the per-sample functions of :mod:`fastconv.metrics.functions`
(see there for the formulas)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv._validation import check_flag
from fastconv.metrics import functions as F
from fastconv.metrics.base import FunctionMean, Mean, dense_pair, numeric, same_rank


def _simple(cls_name: str, fn: Any, default_name: str, doc: str) -> type[FunctionMean]:
    """A metric class that is the mean of ``fn``, with only ``name`` and ``dtype``."""

    def __init__(self: FunctionMean, name: str = default_name, dtype: str | None = None) -> None:
        FunctionMean.__init__(self, name, dtype)

    __init__.__doc__ = None
    cls = type(cls_name, (FunctionMean,), {
        "fn": fn, "__init__": __init__, "__module__": __name__,
        "__doc__": f"""{doc}

    Parameters
    ----------
    name : str, default "{default_name}"
    dtype : {{None, "float32", "float64"}}, optional
    """})
    cls.__init__.__qualname__ = f"{cls_name}.__init__"
    return cls


MeanSquaredError = _simple(
    "MeanSquaredError", F.mean_squared_error, "mean_squared_error",
    "Running mean of ``(y_true - y_pred)**2`` (``keras.metrics.MeanSquaredError``).")
MeanAbsoluteError = _simple(
    "MeanAbsoluteError", F.mean_absolute_error, "mean_absolute_error",
    "Running mean of ``|y_true - y_pred|`` (``keras.metrics.MeanAbsoluteError``).")
MeanAbsolutePercentageError = _simple(
    "MeanAbsolutePercentageError", F.mean_absolute_percentage_error,
    "mean_absolute_percentage_error",
    "Running mean of ``100 |y_true - y_pred| / max(|y_true|, 1e-7)``\n"
    "    (``keras.metrics.MeanAbsolutePercentageError``).")
MeanSquaredLogarithmicError = _simple(
    "MeanSquaredLogarithmicError", F.mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error",
    "Running mean of ``(log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))**2``\n"
    "    (``keras.metrics.MeanSquaredLogarithmicError``).")
LogCoshError = _simple(
    "LogCoshError", F.log_cosh, "logcosh",
    "Running mean of ``log(cosh(y_pred - y_true))`` (``keras.metrics.LogCoshError``;\n"
    "    its default name is Keras' \"logcosh\").")
Hinge = _simple(
    "Hinge", F.hinge, "hinge",
    "Running mean of ``max(1 - y_true * y_pred, 0)`` (``keras.metrics.Hinge``); 0/1\n"
    "    targets are mapped to -1/1.")
SquaredHinge = _simple(
    "SquaredHinge", F.squared_hinge, "squared_hinge",
    "Running mean of ``max(1 - y_true * y_pred, 0)**2`` (``keras.metrics.SquaredHinge``);\n"
    "    0/1 targets are mapped to -1/1.")
CategoricalHinge = _simple(
    "CategoricalHinge", F.categorical_hinge, "categorical_hinge",
    "Running mean of ``max(max((1 - t) * p) - sum(t * p) + 1, 0)`` over one-hot\n"
    "    targets ``t`` (``keras.metrics.CategoricalHinge``).")
KLDivergence = _simple(
    "KLDivergence", F.kl_divergence, "kl_divergence",
    "Running mean of ``sum(t * log(t / p))``, both clipped to ``[1e-7, 1]``\n"
    "    (``keras.metrics.KLDivergence``).")
Poisson = _simple(
    "Poisson", F.poisson, "poisson",
    "Running mean of ``mean(p - t * log(p + 1e-7))`` (``keras.metrics.Poisson``).")


class RootMeanSquaredError(Mean):
    """``sqrt`` of the running mean of ``(y_pred - y_true)**2`` over every
    entry (``keras.metrics.RootMeanSquaredError``).

    Parameters
    ----------
    name : str, default "root_mean_squared_error"
    dtype : {None, "float32", "float64"}, optional
    """

    def __init__(self, name: str = "root_mean_squared_error", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def update_state(  # type: ignore[override]
        self, y_true: object, y_pred: object, sample_weight: object = None
    ) -> None:
        """Add the squared errors of one batch, weighted as :meth:`Mean.update_state`."""
        t, p = dense_pair(y_true, y_pred)
        super().update_state(np.square(p - t), sample_weight=sample_weight)

    def result(self) -> float:
        return math.sqrt(super().result())


class CosineSimilarity(FunctionMean):
    """Running mean of the cosine similarity of ``y_true`` and ``y_pred``
    along ``axis`` (``keras.metrics.CosineSimilarity``); a zero vector scores 0.

    Parameters
    ----------
    name : str, default "cosine_similarity"
    dtype : {None, "float32", "float64"}, optional
    axis : int, default -1
        Axis along which the similarity is computed. (Keras' ``get_config``
        leaves ``axis`` out; fastconv keeps it so the round trip is exact.)
    """

    fn = F.cosine_similarity

    def __init__(self, name: str = "cosine_similarity", dtype: str | None = None,
                 axis: int = -1) -> None:
        super().__init__(name=name, dtype=dtype)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Invalid value for argument `axis`: expected an int, received "
                            f"axis={axis!r}.")
        self.axis = int(axis)
        self._fn_kwargs = {"axis": self.axis}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


def _check_axis_arg(axis: object) -> int:
    if axis != -1 or isinstance(axis, bool):
        raise ValueError(f"Invalid value for argument `axis`: fastconv supports only "
                         f"axis=-1 (the last axis), received axis={axis!r}.")
    return -1


class BinaryCrossentropy(FunctionMean):
    """Running mean of the binary cross-entropy, averaged over the last axis
    (``keras.metrics.BinaryCrossentropy``).

    Parameters
    ----------
    name : str, default "binary_crossentropy"
    dtype : {None, "float32", "float64"}, optional
    from_logits : bool, default False
    label_smoothing : float in [0, 1], default 0
        Targets become ``t * (1 - s) + 0.5 * s``.
    """

    fn = F.binary_crossentropy

    def __init__(self, name: str = "binary_crossentropy", dtype: str | None = None,
                 from_logits: bool = False, label_smoothing: float = 0) -> None:
        super().__init__(name=name, dtype=dtype)
        self.from_logits = check_flag(from_logits, "from_logits")
        self.label_smoothing = F.check_label_smoothing(label_smoothing)
        self._fn_kwargs = {"from_logits": self.from_logits,
                           "label_smoothing": self.label_smoothing}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(FunctionMean):
    """Running mean of the cross-entropy between one-hot targets and class
    scores (``keras.metrics.CategoricalCrossentropy``).

    Parameters
    ----------
    name : str, default "categorical_crossentropy"
    dtype : {None, "float32", "float64"}, optional
    from_logits : bool, default False
    label_smoothing : float in [0, 1], default 0
        Targets become ``t * (1 - s) + s / K``.
    axis : int, default -1
        Only -1 (the last axis) is supported.
    """

    fn = F.categorical_crossentropy

    def __init__(self, name: str = "categorical_crossentropy", dtype: str | None = None,
                 from_logits: bool = False, label_smoothing: float = 0,
                 axis: int = -1) -> None:
        super().__init__(name=name, dtype=dtype)
        self.from_logits = check_flag(from_logits, "from_logits")
        self.label_smoothing = F.check_label_smoothing(label_smoothing)
        self.axis = _check_axis_arg(axis)
        self._fn_kwargs = {"from_logits": self.from_logits,
                           "label_smoothing": self.label_smoothing}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(FunctionMean):
    """Running mean of the cross-entropy between integer labels and class
    scores (``keras.metrics.SparseCategoricalCrossentropy``).

    Parameters
    ----------
    name : str, default "sparse_categorical_crossentropy"
    dtype : {None, "float32", "float64"}, optional
    from_logits : bool, default False
    ignore_class : int, optional
        Positions with this label are left out of the mean (as Keras' mask).
    axis : int, default -1
        Only -1 (the last axis) is supported.
    """

    fn = F.sparse_categorical_crossentropy

    def __init__(self, name: str = "sparse_categorical_crossentropy",
                 dtype: str | None = None, from_logits: bool = False,
                 ignore_class: int | None = None, axis: int = -1) -> None:
        super().__init__(name=name, dtype=dtype)
        self.from_logits = check_flag(from_logits, "from_logits")
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(
                ignore_class, (int, np.integer))):
            raise TypeError(f"Invalid value for argument `ignore_class`: expected None or "
                            f"an int, received ignore_class={ignore_class!r}.")
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.axis = _check_axis_arg(axis)
        self._fn_kwargs = {"from_logits": self.from_logits, "ignore_class": self.ignore_class}

    def update_state(  # type: ignore[override]
        self, y_true: object, y_pred: object, sample_weight: object = None
    ) -> None:
        if self.ignore_class is None:
            return super().update_state(y_true, y_pred, sample_weight)
        values = F.sparse_categorical_crossentropy(y_true, y_pred, **self._fn_kwargs)
        labels = np.asarray(y_true).reshape(values.shape)
        # Keras masks the ignored positions: they weigh 0, the rest their sample's weight.
        weights = (labels != self.ignore_class).astype(np.float64)
        if sample_weight is not None:
            given = numeric(sample_weight, "sample_weight").astype(np.float64)
            given, weights = same_rank(given, weights)
            if given.ndim < weights.ndim:
                given = given.reshape(given.shape + (1,) * (weights.ndim - given.ndim))
            try:
                weights = weights * given
            except ValueError:
                raise ValueError(
                    f"Invalid shape for argument `sample_weight`: expected a shape that "
                    f"broadcasts to {values.shape}, received shape "
                    f"{np.shape(sample_weight)}.") from None
        Mean.update_state(self, values, sample_weight=weights)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class, "axis": self.axis}

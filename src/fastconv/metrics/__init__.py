"""Running metrics with Keras 3's names, formulas, defaults and configs.

Every metric has ``update_state(y_true, y_pred, sample_weight=None)``,
``result()``, ``reset_state()``, ``get_config()``/``from_config()`` and its
state under Keras' variable names (:attr:`Metric.variables`). The modules:

- :mod:`~fastconv.metrics.base`: :class:`Metric`, :class:`Mean`,
  :class:`Sum`, :class:`MeanMetricWrapper` and Keras' per-sample weighting;
- :mod:`~fastconv.metrics.functions`: the per-sample functions
  (``mean_absolute_error``, ``top_k_categorical_accuracy``, ...);
- :mod:`~fastconv.metrics.accuracy`, :mod:`~fastconv.metrics.regression`
  (with the hinge and probabilistic metrics): running means of those;
- :mod:`~fastconv.metrics.confusion`: true/false positives/negatives,
  :class:`Precision`, :class:`Recall`, :class:`AUC`;
- :mod:`~fastconv.metrics.f_score`: :class:`F1Score`, :class:`FBetaScore`.

:func:`get` resolves the identifiers of ``compile(metrics=[...])`` as Keras
3 does (``keras/src/metrics/__init__.py`` and
``keras/src/trainers/compile_utils.py``), including ``"accuracy"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fastconv import losses
from fastconv.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from fastconv.metrics.base import Mean, MeanMetricWrapper, Metric, Sum, to_snake_case
from fastconv.metrics.confusion import (
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from fastconv.metrics.f_score import F1Score, FBetaScore
from fastconv.metrics.functions import (
    accuracy,
    binary_accuracy,
    binary_crossentropy,
    categorical_accuracy,
    categorical_crossentropy,
    categorical_hinge,
    cosine_similarity,
    hinge,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_accuracy,
    sparse_categorical_crossentropy,
    sparse_top_k_categorical_accuracy,
    squared_hinge,
    top_k_categorical_accuracy,
)
from fastconv.metrics.regression import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    RootMeanSquaredError,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Poisson",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SquaredHinge",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "accuracy",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "get",
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

_ALL_CLASSES: tuple[type[Metric], ...] = (
    Mean, Sum,
    MeanSquaredError, RootMeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, CosineSimilarity, LogCoshError,
    AUC, FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives,
    Hinge, SquaredHinge, CategoricalHinge,
    KLDivergence, Poisson, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    F1Score, FBetaScore,
)
# Keras' ALL_OBJECTS_DICT: class names, their snake_case forms, and the short
# names the losses share ("mae" is the metric of the loss "mae").
_BY_NAME: dict[str, type[Metric]] = {cls.__name__: cls for cls in _ALL_CLASSES}
_BY_NAME.update({to_snake_case(cls.__name__): cls for cls in _ALL_CLASSES})
_BY_NAME.update({short: _BY_NAME[name] for short, name in losses.functions.SHORT_NAMES.items()})
# Keras metrics that fastconv does not implement: named in a clear error.
_NOT_SUPPORTED = ("R2Score", "PrecisionAtRecall", "RecallAtPrecision",
                  "SensitivityAtSpecificity", "SpecificityAtSensitivity",
                  "ConcordanceCorrelation", "PearsonCorrelation", "IoU", "BinaryIoU",
                  "MeanIoU", "OneHotIoU", "OneHotMeanIoU")
_NOT_SUPPORTED_NAMES = {n: n for n in _NOT_SUPPORTED}
_NOT_SUPPORTED_NAMES.update({to_snake_case(n): n for n in _NOT_SUPPORTED})


def _resolve_accuracy(
    loss: object, y_true_shape: tuple[int, ...] | None, y_pred_shape: tuple[int, ...] | None
) -> type[Metric]:
    """The accuracy class that Keras' ``compile`` picks for ``"accuracy"``."""
    if y_true_shape is not None and y_pred_shape is not None:
        y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
        if not y_true_shape or not y_pred_shape:
            raise ValueError(
                "Invalid value for arguments `y_true_shape`/`y_pred_shape`: expected "
                f"at least one dimension each, received {y_true_shape} and {y_pred_shape}."
            )
        if y_pred_shape[-1] == 1:
            return BinaryAccuracy
        if len(y_true_shape) < len(y_pred_shape) or (
            y_true_shape[-1] == 1 and y_pred_shape[-1] > 1
        ):
            return SparseCategoricalAccuracy
        return CategoricalAccuracy
    # Without shapes, the loss tells which targets the model trains on.
    by_loss = {
        losses.SparseCategoricalCrossentropy: SparseCategoricalAccuracy,
        losses.CategoricalCrossentropy: CategoricalAccuracy,
        losses.BinaryCrossentropy: BinaryAccuracy,
    }
    if loss is not None:
        resolved = by_loss.get(type(losses.get(loss)))
        if resolved is not None:
            return resolved
    raise ValueError(
        "Cannot resolve 'accuracy': pass `y_true_shape` and `y_pred_shape`, or a "
        "cross-entropy `loss`; received y_true_shape="
        f"{y_true_shape}, y_pred_shape={y_pred_shape}, loss={loss!r}."
    )


class LoggedArray(np.ndarray):
    """A metric result with one value per class or threshold, as ``fit`` and
    ``evaluate`` log it: the array itself (in logs and history, as Keras),
    shown by its mean in progress lines, as Keras' progress bar does."""

    def __format__(self, spec: str) -> str:
        return format(float(np.asarray(self).mean()), spec)


def log_value(result: Any) -> Any:
    """A metric's ``result()`` as logs hold it: a float, or a :class:`LoggedArray`.

    Parameters
    ----------
    result : float or array_like

    Returns
    -------
    float or LoggedArray
    """
    array = np.asarray(result)
    return float(array) if array.ndim == 0 else array.view(LoggedArray)


def _unsupported(name: str) -> ValueError:
    return ValueError(f"The Keras metric {name!r} ({_NOT_SUPPORTED_NAMES[name]}) is not "
                      "supported by fastconv.")


def get(
    identifier: str | Metric | type | Mapping[str, Any] | Any,
    loss: object = None,
    y_true_shape: tuple[int, ...] | None = None,
    y_pred_shape: tuple[int, ...] | None = None,
) -> Metric:
    """Resolve a metric identifier as Keras' ``compile`` does.

    Parameters
    ----------
    identifier : str, Metric, Metric subclass, callable or dict
        ``"accuracy"`` or ``"acc"`` (any case): binary accuracy if the
        predictions' last dimension is 1; else sparse categorical accuracy if
        ``y_true`` has lower rank than ``y_pred``, or its last dimension is 1
        while ``y_pred``'s is > 1; else categorical accuracy. Any other string
        is one of Keras' names (case-sensitive): a class name
        (``"Precision"``), its snake_case form (``"precision"``,
        ``"top_k_categorical_accuracy"``, ``"auc"``, ``"f1_score"``) or an
        alias (``"mae"``/``"MAE"``, ``"mse"``, ``"mape"``, ``"msle"``,
        ``"bce"``): that metric with default arguments, named by the string
        (Keras' log key, so ``"mae"`` logs ``mae``). A :class:`Metric` is
        returned as is (it logs under its own name, e.g.
        ``mean_absolute_error``); a Metric subclass is instantiated; a
        function ``fn(y_true, y_pred)`` is wrapped in
        :class:`MeanMetricWrapper` named by the function; a dict
        ``{"class_name": ..., "config": {...}}`` is rebuilt.
    loss : Loss or str, optional
        Used for ``"accuracy"`` only when the shapes are not given: sparse,
        categorical or binary cross-entropy pick the matching accuracy.
    y_true_shape, y_pred_shape : tuple of int, optional
        Shapes of the targets and the predictions.

    Returns
    -------
    Metric
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric) and (
            identifier is not Metric and identifier is not MeanMetricWrapper):
        return identifier()
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier)
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _resolve_accuracy(loss, y_true_shape, y_pred_shape)(name=identifier)
        cls = _BY_NAME.get(identifier)
        if cls is not None:
            # As Keras: built with its default name (which counts towards the
            # automatic names), then named by the string.
            metric = cls()
            metric.name = identifier
            return metric
        if identifier in _NOT_SUPPORTED_NAMES:
            raise _unsupported(identifier)
    elif isinstance(identifier, Mapping):
        class_name = identifier.get("class_name")
        config = identifier.get("config") or {}
        cls = _BY_NAME.get(class_name) if isinstance(class_name, str) else None
        if cls is not None and isinstance(config, Mapping):
            return cls.from_config(config)
        if isinstance(class_name, str) and class_name in _NOT_SUPPORTED_NAMES:
            raise _unsupported(class_name)
    allowed = ["accuracy", "acc", *sorted(_BY_NAME)]
    raise ValueError(
        f"Invalid value for argument `identifier`: expected one of {allowed}, a "
        f"Metric, a function or a config dict, received identifier={identifier!r}."
    )


def __getattr__(name: str) -> Any:
    # keras.metrics.R2Score and the other unimplemented classes: say so by name.
    if name in _NOT_SUPPORTED:
        raise AttributeError(f"keras.metrics.{name} is not supported by fastconv.")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

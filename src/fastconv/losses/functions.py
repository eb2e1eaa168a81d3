"""Keras' loss functions: ``fn(y_true, y_pred, **options)`` gives the
per-sample losses (no weights, no reduction) as a NumPy array, as
``keras.losses.huber`` and the others do.

``compile(loss=fastconv.losses.huber)`` (or any function here) trains with
the matching class (``Huber(name="huber")``) and its exact gradient. Inside
a ``GradientTape`` the call is recorded like the class's. The functions
compute on arrays: a loss function of your own that is traced with
``fastconv.ops`` should call the ops (or use the classes), not these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastconv.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
from fastconv.losses.focal import BinaryFocalCrossentropy, CategoricalFocalCrossentropy
from fastconv.losses.hinge import CategoricalHinge, Hinge, SquaredHinge
from fastconv.losses.loss import Loss
from fastconv.losses.probabilistic import KLDivergence, Poisson
from fastconv.losses.regression import (
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
)

__all__ = [
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
]


# Keras' short names that its losses and its metrics both accept (the two
# ALL_OBJECTS_DICTs), lower and upper case, each for the name of a function
# here; fastconv.losses and fastconv.metrics resolve them to their own class.
SHORT_NAMES: dict[str, str] = {
    short: name
    for abbreviation, name in (
        ("bce", "binary_crossentropy"),
        ("mse", "mean_squared_error"),
        ("mae", "mean_absolute_error"),
        ("mape", "mean_absolute_percentage_error"),
        ("msle", "mean_squared_logarithmic_error"),
    )
    for short in (abbreviation, abbreviation.upper())
}


def _per_sample(cls: type[Loss], name: str, y_true: Any, y_pred: Any, **options: Any
                ) -> np.ndarray | float:
    from fastconv.graph.node import KerasTensor

    if isinstance(y_pred, KerasTensor) or isinstance(y_true, KerasTensor):
        raise TypeError(
            f"fastconv.losses.{name} computes on arrays, received y_pred of type "
            f"{type(y_pred).__name__}. In a loss function traced with fastconv.ops, "
            "write the formula with the ops, or pass fastconv.losses."
            f"{cls.__name__}() to compile."
        )
    return cls(reduction="none", name=name, **options)(y_true, y_pred)


def _loss_function(cls: type[Loss]) -> Callable[[Callable], Callable]:
    """Mark a function as the function form of ``cls``."""
    def mark(fn: Callable) -> Callable:
        fn._loss_class = cls
        return fn
    return mark


@_loss_function(MeanSquaredError)
def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean((y_true - y_pred)**2)`` over the last axis; see
    :class:`~fastconv.losses.MeanSquaredError`."""
    return _per_sample(MeanSquaredError, "mean_squared_error", y_true, y_pred)


@_loss_function(MeanAbsoluteError)
def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean(|y_true - y_pred|)``; see :class:`~fastconv.losses.MeanAbsoluteError`."""
    return _per_sample(MeanAbsoluteError, "mean_absolute_error", y_true, y_pred)


@_loss_function(MeanAbsolutePercentageError)
def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample percentage error; see :class:`~fastconv.losses.MeanAbsolutePercentageError`."""
    return _per_sample(MeanAbsolutePercentageError, "mean_absolute_percentage_error",
                       y_true, y_pred)


@_loss_function(MeanSquaredLogarithmicError)
def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample squared log error; see :class:`~fastconv.losses.MeanSquaredLogarithmicError`."""
    return _per_sample(MeanSquaredLogarithmicError, "mean_squared_logarithmic_error",
                       y_true, y_pred)


@_loss_function(CosineSimilarity)
def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Per-sample negative cosine similarity; see :class:`~fastconv.losses.CosineSimilarity`."""
    return _per_sample(CosineSimilarity, "cosine_similarity", y_true, y_pred, axis=axis)


@_loss_function(Huber)
def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> np.ndarray:
    """Per-sample Huber loss; see :class:`~fastconv.losses.Huber`."""
    return _per_sample(Huber, "huber", y_true, y_pred, delta=delta)


@_loss_function(LogCosh)
def log_cosh(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``mean(log(cosh(y_pred - y_true)))``; see :class:`~fastconv.losses.LogCosh`."""
    return _per_sample(LogCosh, "log_cosh", y_true, y_pred)


@_loss_function(KLDivergence)
def kl_divergence(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample KL divergence; see :class:`~fastconv.losses.KLDivergence`."""
    return _per_sample(KLDivergence, "kl_divergence", y_true, y_pred)


@_loss_function(Poisson)
def poisson(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample Poisson loss; see :class:`~fastconv.losses.Poisson`."""
    return _per_sample(Poisson, "poisson", y_true, y_pred)


@_loss_function(Hinge)
def hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample hinge loss; see :class:`~fastconv.losses.Hinge`."""
    return _per_sample(Hinge, "hinge", y_true, y_pred)


@_loss_function(SquaredHinge)
def squared_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample squared hinge loss; see :class:`~fastconv.losses.SquaredHinge`."""
    return _per_sample(SquaredHinge, "squared_hinge", y_true, y_pred)


@_loss_function(CategoricalHinge)
def categorical_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample categorical hinge loss; see :class:`~fastconv.losses.CategoricalHinge`."""
    return _per_sample(CategoricalHinge, "categorical_hinge", y_true, y_pred)


@_loss_function(CategoricalCrossentropy)
def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> np.ndarray:
    """Per-sample categorical cross-entropy; see
    :class:`~fastconv.losses.CategoricalCrossentropy`."""
    return _per_sample(CategoricalCrossentropy, "categorical_crossentropy", y_true, y_pred,
                       from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


@_loss_function(SparseCategoricalCrossentropy)
def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1
                                    ) -> np.ndarray:
    """Per-sample sparse categorical cross-entropy (0 where ``ignore_class``); see
    :class:`~fastconv.losses.SparseCategoricalCrossentropy`."""
    return _per_sample(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy",
                       y_true, y_pred, from_logits=from_logits, ignore_class=ignore_class,
                       axis=axis)


@_loss_function(BinaryCrossentropy)
def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> np.ndarray:
    """Per-sample binary cross-entropy; see :class:`~fastconv.losses.BinaryCrossentropy`."""
    return _per_sample(BinaryCrossentropy, "binary_crossentropy", y_true, y_pred,
                       from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


@_loss_function(CategoricalFocalCrossentropy)
def categorical_focal_crossentropy(y_true: Any, y_pred: Any, alpha: float = 0.25,
                                   gamma: float = 2.0, from_logits: bool = False,
                                   label_smoothing: float = 0.0, axis: int = -1
                                   ) -> np.ndarray:
    """Per-sample categorical focal cross-entropy; see
    :class:`~fastconv.losses.CategoricalFocalCrossentropy`."""
    return _per_sample(CategoricalFocalCrossentropy, "categorical_focal_crossentropy",
                       y_true, y_pred, alpha=alpha, gamma=gamma, from_logits=from_logits,
                       label_smoothing=label_smoothing, axis=axis)


@_loss_function(BinaryFocalCrossentropy)
def binary_focal_crossentropy(y_true: Any, y_pred: Any, apply_class_balancing: bool = False,
                              alpha: float = 0.25, gamma: float = 2.0,
                              from_logits: bool = False, label_smoothing: float = 0.0,
                              axis: int = -1) -> np.ndarray:
    """Per-sample binary focal cross-entropy; see
    :class:`~fastconv.losses.BinaryFocalCrossentropy`."""
    return _per_sample(BinaryFocalCrossentropy, "binary_focal_crossentropy", y_true, y_pred,
                       apply_class_balancing=apply_class_balancing, alpha=alpha,
                       gamma=gamma, from_logits=from_logits,
                       label_smoothing=label_smoothing, axis=axis)

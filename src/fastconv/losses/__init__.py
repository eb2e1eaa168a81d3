"""Losses with Keras 3's formulas, reductions and sample weights, and their
exact gradients with respect to ``y_pred``.

``loss(y_true, y_pred, sample_weight=None)`` is the weighted, reduced loss
(a float; the per-sample losses for ``reduction="none"``);
``loss.gradient(y_true, y_pred, sample_weight=None)`` is its gradient with
``y_pred``'s shape and dtype; losses on probabilities after a softmax or
sigmoid also have ``loss.logits_gradient(y_true, y_prob, sample_weight=None)``,
the gradient with respect to the activation's input in closed form.

Modules: :mod:`~fastconv.losses.loss` (the base class, weights and
reductions), :mod:`~fastconv.losses.crossentropy`,
:mod:`~fastconv.losses.focal`, :mod:`~fastconv.losses.regression`,
:mod:`~fastconv.losses.probabilistic`, :mod:`~fastconv.losses.hinge`,
:mod:`~fastconv.losses.functions` (Keras' function forms, e.g. ``huber``)
and :mod:`~fastconv.losses.function` (losses written as functions with
Keras ops).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastconv.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
from fastconv.losses.focal import BinaryFocalCrossentropy, CategoricalFocalCrossentropy
from fastconv.losses.function import FunctionLoss
from fastconv.losses.functions import (
    SHORT_NAMES,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from fastconv.losses.hinge import CategoricalHinge, Hinge, SquaredHinge
from fastconv.losses.loss import EPSILON, REDUCTIONS, Loss, reduce_weighted_values
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
    "EPSILON",
    "REDUCTIONS",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "FunctionLoss",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "reduce_weighted_values",
    "serialize",
    "sparse_categorical_crossentropy",
    "squared_hinge",
]

_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (
        SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
        CategoricalFocalCrossentropy, BinaryFocalCrossentropy,
        MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh,
        KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge,
    )
}

_FUNCTIONS: tuple[Callable, ...] = (
    sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy,
    categorical_focal_crossentropy, binary_focal_crossentropy, mean_squared_error,
    mean_absolute_error, mean_absolute_percentage_error, mean_squared_logarithmic_error,
    cosine_similarity, huber, log_cosh, kl_divergence, poisson, hinge, squared_hinge,
    categorical_hinge,
)

# Keras' function names and aliases (keras.losses.ALL_OBJECTS_DICT: the short
# names metrics share, and "kld"), and the Keras 2 names "logcosh" and
# "kullback_leibler_divergence"; a loss got by one of these is named by it,
# as Keras' compile names its wrapper.
_ALIASES: dict[str, type[Loss]] = {fn.__name__: fn._loss_class for fn in _FUNCTIONS}
_ALIASES.update({short: _ALIASES[name] for short, name in SHORT_NAMES.items()})
_ALIASES.update({
    "kld": KLDivergence, "KLD": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
    "logcosh": LogCosh,
})

# Keras 3 losses that fastconv does not implement.
_UNSUPPORTED = ("CTC", "ctc", "Circle", "circle", "Dice", "dice", "Tversky", "tversky",
                "CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy")


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for :func:`get` to rebuild it.

    Parameters
    ----------
    loss : Loss

    Returns
    -------
    dict
    """
    if not isinstance(loss, Loss):
        raise TypeError(
            f"Invalid value for argument `loss`: expected a Loss, received "
            f"{type(loss).__name__}."
        )
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def _not_supported(name: str) -> ValueError:
    return ValueError(
        f"Invalid value for argument `identifier`: the Keras loss {name!r} is not "
        "supported by fastconv; write it as a function of (y_true, y_pred) with "
        "fastconv.ops, or use one of fastconv.losses' classes."
    )


def get(identifier: str | Loss | type | Mapping[str, Any] | Callable) -> Loss:
    """Resolve a loss identifier, as ``keras.losses.get`` (names are case-sensitive).

    Parameters
    ----------
    identifier : str, Loss, Loss subclass, dict or callable
        A class name (``"CategoricalCrossentropy"``) or Keras function name or
        alias (``"categorical_crossentropy"``, ``"mae"``, ``"kld"``, ...) for
        a new instance with default arguments (named by the function name or
        alias, as Keras' ``compile`` does); a :class:`Loss`, returned as is;
        a Loss subclass, instantiated; ``{"class_name": ..., "config":
        {...}}`` as made by :func:`serialize`; or a function: one of this
        module's (``fastconv.losses.huber``: its class) or one written with
        ``fastconv.ops`` (a :class:`FunctionLoss`).

    Returns
    -------
    Loss
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    allowed = sorted(_ALIASES) + sorted(_CLASSES)
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        if identifier in _ALIASES:
            return _ALIASES[identifier](name=identifier)
        if identifier in _UNSUPPORTED:
            raise _not_supported(identifier)
        raise ValueError(
            f"Invalid value for argument `identifier`: expected one of {allowed}, "
            f"a Loss or a config dict, received identifier={identifier!r}."
        )
    if isinstance(identifier, Mapping):
        class_name = identifier.get("class_name")
        if not isinstance(class_name, str):
            cls = None
        else:
            cls = _CLASSES.get(class_name) or _ALIASES.get(class_name)
        if cls is None:
            if class_name in _UNSUPPORTED:
                raise _not_supported(class_name)
            raise ValueError(
                f"Invalid value for argument `identifier`: a config dict needs "
                f"'class_name' in {allowed}, received class_name={class_name!r}."
            )
        return cls.from_config(identifier.get("config") or {})
    if callable(identifier) and not isinstance(identifier, type):
        return FunctionLoss(identifier)
    raise ValueError(
        f"Invalid value for argument `identifier`: expected one of {allowed}, a "
        f"Loss, a function or a config dict, received {type(identifier).__name__}."
    )

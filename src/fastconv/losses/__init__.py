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
:mod:`~fastconv.losses.regression`, :mod:`~fastconv.losses.function`
(losses written as functions with Keras ops).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastconv.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
from fastconv.losses.function import FunctionLoss
from fastconv.losses.loss import EPSILON, REDUCTIONS, Loss, reduce_weighted_values
from fastconv.losses.regression import MeanSquaredError

__all__ = [
    "EPSILON",
    "REDUCTIONS",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "FunctionLoss",
    "Loss",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "get",
    "reduce_weighted_values",
    "serialize",
]

_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (
        SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
        MeanSquaredError,
    )
}

# Keras' function names and aliases; a loss got by one of these is named by it.
_ALIASES: dict[str, type[Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
}


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


def get(identifier: str | Loss | type | Mapping[str, Any]) -> Loss:
    """Resolve a loss identifier, as ``keras.losses.get`` (names are case-sensitive).

    Parameters
    ----------
    identifier : str, Loss, Loss subclass or dict
        A class name (``"CategoricalCrossentropy"``) or Keras function name or
        alias (``"categorical_crossentropy"``, ``"mse"``, ...) for a new
        instance with default arguments (named by the function name or
        alias, as Keras' ``compile`` does); a :class:`Loss`, returned as is;
        a Loss subclass, instantiated; or ``{"class_name": ..., "config":
        {...}}`` as made by :func:`serialize`.

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
            raise ValueError(
                f"Invalid value for argument `identifier`: a config dict needs "
                f"'class_name' in {allowed}, received class_name={class_name!r}."
            )
        return cls.from_config(identifier.get("config") or {})
    raise ValueError(
        f"Invalid value for argument `identifier`: expected one of {allowed}, a "
        f"Loss or a config dict, received {type(identifier).__name__}."
    )

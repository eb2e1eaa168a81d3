"""Gradient-descent optimizers with Keras 3's update rules, arguments and defaults.

An optimizer updates the model's parameters in place::

    opt.update(values, grads)   # values[i] -= step(grads[i]), for every i

How the package stacks up: ``base`` holds Keras' base optimizer (learning
rate or schedule, clipping, weight decay, gradient accumulation, state I/O);
one module per rule (``sgd``, ``rmsprop``, ``adam`` with AdamW, ``adagrad``,
``adadelta``, ``adamax``, ``nadam``, ``lion``) states it in NumPy and calls
its compiled kernel (``fastconv._kernels.optim`` -> ``src_c/optim_impl.h``),
bitwise the same; ``schedules`` holds the learning-rate schedules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastconv.optimizers import schedules
from fastconv.optimizers.adadelta import Adadelta
from fastconv.optimizers.adagrad import Adagrad
from fastconv.optimizers.adam import Adam, AdamW
from fastconv.optimizers.adamax import Adamax
from fastconv.optimizers.base import Optimizer
from fastconv.optimizers.lion import Lion
from fastconv.optimizers.nadam import Nadam
from fastconv.optimizers.rmsprop import RMSprop
from fastconv.optimizers.sgd import SGD

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]

_BY_NAME: dict[str, type[Optimizer]] = {
    cls.__name__.lower(): cls
    for cls in (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, Adamax, Nadam, Lion)
}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for :func:`get` to rebuild it.

    Parameters
    ----------
    optimizer : Optimizer

    Returns
    -------
    dict
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"Invalid value for argument `optimizer`: expected an Optimizer, "
            f"received {type(optimizer).__name__}."
        )
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: Mapping[str, Any],
                custom_objects: Mapping[str, Any] | None = None) -> Optimizer:
    """The optimizer of ``{"class_name": ..., "config": {...}}`` (class name in
    any case; ``custom_objects`` names schedule or optimizer classes of your
    own)."""
    allowed = sorted(_BY_NAME)
    class_name = config.get("class_name") if isinstance(config, Mapping) else None
    custom = dict(custom_objects or {})
    cls = custom.get(class_name) if isinstance(class_name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        cls = _BY_NAME.get(class_name.lower()) if isinstance(class_name, str) else None
    if cls is None:
        raise ValueError(
            f"Invalid value for argument `identifier`: a config dict needs "
            f"'class_name' in {allowed} (any case), received "
            f"class_name={class_name!r}."
        )
    return cls.from_config(config.get("config") or {}, custom_objects)


def get(identifier: str | Optimizer | Mapping[str, Any]) -> Optimizer:
    """Resolve an optimizer identifier.

    Parameters
    ----------
    identifier : str, Optimizer or dict
        A name such as ``"sgd"``, ``"adamw"`` or ``"nadam"`` (any case) for a
        new instance with default arguments; an :class:`Optimizer`, returned
        as is; or ``{"class_name": ..., "config": {...}}`` as made by
        :func:`serialize` (class name in any case).

    Returns
    -------
    Optimizer
    """
    if isinstance(identifier, Optimizer):
        return identifier
    allowed = sorted(_BY_NAME)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Invalid value for argument `identifier`: expected one of "
                f"{allowed} (any case), an Optimizer or a config dict, received "
                f"identifier={identifier!r}."
            )
        return cls()
    if isinstance(identifier, Mapping):
        return deserialize(identifier)
    raise ValueError(
        f"Invalid value for argument `identifier`: expected one of {allowed}, an "
        f"Optimizer or a config dict, received {type(identifier).__name__}."
    )

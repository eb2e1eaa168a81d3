"""Weight constraints with Keras 3's names, defaults and formulas.

A constraint is called as ``c(w)`` after each optimizer step and returns the
projected weights as a new array (``w`` itself is left untouched). The norm
constraints compute the L2 norm of ``w`` over ``axis`` (an int or a list of
ints), keeping the other axes: for a Dense kernel ``(in, out)`` ``axis=0``
takes the norm of each unit's incoming weights; for a Conv2D kernel
``(KH, KW, C_in, C_out)`` ``axis=[0, 1, 2]`` takes the norm of each filter.
As in Keras, every norm constraint divides by ``norm + 1e-7`` (Keras'
``backend.epsilon()``) so that all-zero slices stay zero instead of becoming
NaN; a consequence is that ``MaxNorm`` also scales slices already within the
bound by ``norm / (norm + 1e-7)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from fastconv import _registry

EPSILON = 1e-7


def _as_float_array(w: Any) -> np.ndarray:
    w = np.asarray(w)
    return w if np.issubdtype(w.dtype, np.floating) else w.astype(np.float32)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_axis(axis: Any) -> int | list[int]:
    """An int, or a non-empty list of ints (a tuple is accepted and stored as a list)."""
    if _is_int(axis):
        return int(axis)
    if isinstance(axis, (list, tuple)) and axis and all(_is_int(a) for a in axis):
        return [int(a) for a in axis]
    raise ValueError(
        "Invalid value for argument `axis`: expected an int or a list of ints, "
        f"received axis={axis!r}."
    )


def _check_non_negative(value: Any, name: str) -> float:
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a non-negative float, "
            f"received {name}={value!r}."
        )
    # A NumPy float64 scalar would promote float32 weights to float64.
    return value.item() if isinstance(value, np.generic) else value


def _norms(w: np.ndarray, axis: int | list[int]) -> np.ndarray:
    """L2 norms over ``axis``, with the reduced axes kept (size 1) to broadcast."""
    numpy_axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt(np.sum(np.square(w), axis=numpy_axis, keepdims=True))


class Constraint:
    """Base class: subclasses implement ``__call__`` and, if they have
    arguments, ``get_config``. The base itself leaves the weights as they are."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """The projected weights, a new array of the shape and dtype of ``w``."""
        return np.array(_as_float_array(w))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a JSON-serialisable dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """The constraint that ``get_config`` described."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Rescale each slice whose norm over ``axis`` exceeds ``max_value`` to that norm.

    Computes ``w * clip(norm, 0, max_value) / (norm + 1e-7)``.

    Parameters
    ----------
    max_value : float
        The largest norm allowed; non-negative.
    axis : int or list of int
        The axes the norm is taken over (see the module docstring).
    """

    def __init__(self, max_value: float = 2, axis: int | list[int] = 0) -> None:
        self.max_value = _check_non_negative(max_value, "max_value")
        self.axis = _check_axis(axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = _as_float_array(w)
        norms = _norms(w, self.axis)
        return w * (np.clip(norms, 0, self.max_value) / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Replace negative weights by 0."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.maximum(_as_float_array(w), 0)


class UnitNorm(Constraint):
    """Scale each slice to norm 1 over ``axis``: ``w / (norm + 1e-7)``.

    Parameters
    ----------
    axis : int or list of int
        The axes the norm is taken over (see the module docstring).
    """

    def __init__(self, axis: int | list[int] = 0) -> None:
        self.axis = _check_axis(axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = _as_float_array(w)
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each slice's norm over ``axis`` into ``[min_value, max_value]``.

    The new norm is ``rate * clip(norm, min_value, max_value) +
    (1 - rate) * norm``: ``rate=1`` enforces the bounds at once, a smaller
    rate moves towards them a little at each step.

    Parameters
    ----------
    min_value, max_value : float
        The norm bounds, ``0 <= min_value <= max_value``.
    rate : float
        In ``[0, 1]``.
    axis : int or list of int
        The axes the norm is taken over (see the module docstring).
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: int | list[int] = 0) -> None:
        self.min_value = _check_non_negative(min_value, "min_value")
        self.max_value = _check_non_negative(max_value, "max_value")
        if max_value < min_value:
            raise ValueError(
                "Invalid value for argument `max_value`: expected max_value >= min_value, "
                f"received min_value={min_value!r}, max_value={max_value!r}."
            )
        self.rate = _check_non_negative(rate, "rate")
        if rate > 1:
            raise ValueError(
                "Invalid value for argument `rate`: expected a float in [0, 1], "
                f"received rate={rate!r}."
            )
        self.axis = _check_axis(axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = _as_float_array(w)
        norms = _norms(w, self.axis)
        desired = (self.rate * np.clip(norms, self.min_value, self.max_value)
                   + (1 - self.rate) * norms)
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


# Every name ``get`` accepts: Keras' class names and their snake_case forms.
_BY_NAME: dict[str, type[Constraint]] = {
    "MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm,
    "max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm,
}


def get(identifier: Any) -> Constraint | Callable[[np.ndarray], np.ndarray] | None:
    """The constraint that ``identifier`` names.

    Parameters
    ----------
    identifier : None, str, dict, Constraint, Constraint subclass or callable
        A name ("max_norm" or "MaxNorm", built with its defaults), Keras'
        serialized form ``{"class_name": ..., "config": {...}}``, an instance
        (returned as is), a class (instantiated with its defaults) or a plain
        function ``f(w) -> array`` (returned as is).

    Returns
    -------
    Constraint, callable or None
        None when ``identifier`` is None.

    Raises
    ------
    ValueError
        For an unknown name or a malformed dict.
    TypeError
        For any other kind of identifier.
    """
    return _registry.lookup(identifier, _BY_NAME, Constraint, "f(w)")


def serialize(constraint: Constraint | None) -> dict[str, Any] | None:
    """Keras' serialized form ``{"class_name": ..., "config": {...}}``.

    Parameters
    ----------
    constraint : Constraint or None

    Returns
    -------
    dict or None
        None for None; ``get`` turns the dict back into an equal constraint.

    Raises
    ------
    TypeError
        For a plain function, which has no config to save.
    """
    return _registry.serialize(constraint, Constraint, "constraint")

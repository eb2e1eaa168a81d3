"""Weight penalties with Keras 3's names, defaults and formulas, and their gradients.

A regularizer is called as ``reg(w)`` for the penalty added to the loss and
``reg.gradient(w)`` for its derivative with respect to ``w``, which the
layers add to the weight's gradient. Keras' definitions:

- ``L1(l1)``: ``l1 * sum(|w|)``, gradient ``l1 * sign(w)`` (0 at ``w = 0``);
- ``L2(l2)``: ``l2 * sum(w ** 2)`` (no factor 1/2), gradient ``2 * l2 * w``;
- ``L1L2(l1, l2)``: the sum of both.

Penalties are computed in the dtype of ``w``; gradients keep that dtype.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from fastconv import _registry


def _as_float_array(w: Any) -> np.ndarray:
    w = np.asarray(w)
    return w if np.issubdtype(w.dtype, np.floating) else w.astype(np.float32)


def _check_factor(value: Any, name: str, default: float) -> float:
    """A finite, non-negative factor; None means ``default`` (Keras' rule)."""
    if value is None:
        return default
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a non-negative float, "
            f"received {name}={value!r}."
        )
    return float(value)


class Regularizer:
    """Base class: subclasses implement ``__call__``, ``gradient`` and, if
    they have arguments, ``get_config``. The base itself is the zero penalty."""

    def __call__(self, w: np.ndarray) -> float:
        """The penalty for weights ``w``."""
        return 0.0

    def gradient(self, w: np.ndarray) -> np.ndarray:
        """d penalty / d w: an array of the shape and dtype of ``w``."""
        return np.zeros_like(_as_float_array(w))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a JSON-serialisable dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """The regularizer that ``get_config`` described."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``.

    Parameters
    ----------
    l1, l2 : float
        Non-negative; None means 0. As in Keras, both default to 0 here,
        while ``L1()`` and ``L2()`` default to 0.01.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _check_factor(l1, "l1", 0.0)
        self.l2 = _check_factor(l2, "l2", 0.0)

    def __call__(self, w: np.ndarray) -> float:
        w = _as_float_array(w)
        penalty = 0.0
        if self.l1:
            penalty += float(self.l1 * np.sum(np.abs(w)))
        if self.l2:
            penalty += float(self.l2 * np.sum(np.square(w)))
        return penalty

    def gradient(self, w: np.ndarray) -> np.ndarray:
        w = _as_float_array(w)
        grad = np.zeros_like(w)
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += (2.0 * self.l2) * w
        return grad

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|w|)``.

    Parameters
    ----------
    l1 : float
        Non-negative; None means 0.01.
    """

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = _check_factor(l1, "l1", 0.01)

    def __call__(self, w: np.ndarray) -> float:
        return float(self.l1 * np.sum(np.abs(_as_float_array(w))))

    def gradient(self, w: np.ndarray) -> np.ndarray:
        return self.l1 * np.sign(_as_float_array(w))

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w ** 2)``.

    Parameters
    ----------
    l2 : float
        Non-negative; None means 0.01.
    """

    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = _check_factor(l2, "l2", 0.01)

    def __call__(self, w: np.ndarray) -> float:
        return float(self.l2 * np.sum(np.square(_as_float_array(w))))

    def gradient(self, w: np.ndarray) -> np.ndarray:
        return (2.0 * self.l2) * _as_float_array(w)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class FunctionRegularizer(Regularizer):
    """A plain penalty function ``f(w) -> float`` wrapped by ``get``.

    It gives the penalty but no gradient, so a layer can report it in the
    loss but cannot train with it; subclass :class:`Regularizer` and
    implement ``gradient`` for that.
    """

    def __init__(self, function: Callable[[np.ndarray], float]) -> None:
        self.function = function

    def __call__(self, w: np.ndarray) -> float:
        return float(self.function(w))

    def gradient(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            f"The regularizer function {self.function!r} has no gradient, so it cannot be used "
            "for training: subclass fastconv.regularizers.Regularizer and implement "
            "gradient(w)."
        )

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"The regularizer function {self.function!r} cannot be serialized: subclass "
            "fastconv.regularizers.Regularizer and implement get_config()."
        )

    def __repr__(self) -> str:
        return f"FunctionRegularizer({self.function!r})"


# Every name ``get`` accepts: Keras' class names and their snake_case forms.
_BY_NAME: dict[str, type[Regularizer]] = {
    "L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": L1L2,
}


def get(identifier: Any) -> Regularizer | None:
    """The regularizer that ``identifier`` names.

    Parameters
    ----------
    identifier : None, str, dict, Regularizer, Regularizer subclass or callable
        A name ("l2" or "L2", built with its defaults: note that "l1_l2"
        is ``L1L2()``, whose factors are 0, as in Keras 3), Keras' serialized
        form ``{"class_name": ..., "config": {...}}``, an instance (returned
        as is), a class (instantiated with its defaults) or a plain function
        ``f(w) -> float``, wrapped in a :class:`FunctionRegularizer` (penalty
        only, no gradient).

    Returns
    -------
    Regularizer or None
        None when ``identifier`` is None.

    Raises
    ------
    ValueError
        For an unknown name or a malformed dict.
    TypeError
        For any other kind of identifier.
    """
    return _registry.lookup(identifier, _BY_NAME, Regularizer, "f(w)",
                            wrap_function=FunctionRegularizer)


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """Keras' serialized form ``{"class_name": ..., "config": {...}}``.

    Parameters
    ----------
    regularizer : Regularizer or None

    Returns
    -------
    dict or None
        None for None; ``get`` turns the dict back into an equal regularizer.

    Raises
    ------
    TypeError
        For a plain function (bare or wrapped), which has no config to save.
    """
    return _registry.serialize(regularizer, Regularizer, "regularizer",
                               exclude=(FunctionRegularizer,))

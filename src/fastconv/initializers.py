"""Weight initializers with Keras 3's names, defaults and formulas.

An initializer is called as ``init(shape, dtype)`` and returns a new NumPy
array. Fans follow Keras' ``compute_fans``: a 2-D shape ``(in, out)`` has
``fan_in = in`` and ``fan_out = out``; a convolution kernel
``(KH, KW, C_in, C_out)`` has receptive field ``KH * KW``, so
``fan_in = C_in * KH * KW`` and ``fan_out = C_out * KH * KW``.

Randomness: an initializer built with ``seed=None`` draws from
``fastconv.runtime.random.generator()`` at call time, so ``_random.set_seed``
makes a whole model reproducible and successive calls give new values. An
int ``seed`` starts a fresh generator on every call, so the same initializer
returns the same values each time (as Keras does for integer seeds). Values
are drawn in float64 and then cast, so a seeded float32 draw equals the
float64 draw rounded to float32.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fastconv import _registry

from fastconv.runtime import random as _random

# The standard deviation of a standard normal truncated to [-2, 2]. Keras
# divides by it so that the *truncated* draw has the requested variance.
_TRUNCATED_NORMAL_STDDEV = 0.87962566103423978


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Number of input and output units of a weight of shape ``shape``.

    Parameters
    ----------
    shape : sequence of int
        ``()`` counts as one unit each way, ``(n,)`` as ``n`` each way,
        ``(in, out)`` as a dense kernel and ``(..., C_in, C_out)`` as a
        convolution kernel whose leading dimensions form the receptive field.

    Returns
    -------
    fan_in, fan_out : int
    """
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ValueError(
            "Invalid value for argument `shape`: expected a tuple of non-negative ints, "
            f"received shape={shape!r}."
        )
    return tuple(int(d) for d in shape)


def _default_float32(dtype: Any) -> np.dtype:
    return np.dtype("float32" if dtype is None else dtype)


def _check_float_dtype(dtype: Any) -> np.dtype:
    dtype = _default_float32(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(
            "Invalid value for argument `dtype`: expected a floating-point dtype, "
            f"received dtype={dtype.name!r}."
        )
    return dtype


def _check_number(value: Any, name: str, minimum: float | None = None) -> float:
    """A finite real number, at least ``minimum`` when given."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (minimum is not None and value < minimum):
        expected = "a finite float" if minimum is None else f"a finite float >= {minimum}"
        raise ValueError(
            f"Invalid value for argument `{name}`: expected {expected}, received {name}={value!r}."
        )
    return float(value)


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise ValueError(
        "Invalid value for argument `seed`: expected None or a non-negative int, "
        f"received seed={seed!r}."
    )


class Initializer:
    """Base class: subclasses implement ``__call__`` and, if they have
    arguments, ``get_config``."""

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        """A new array of shape ``shape`` and dtype ``dtype``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement __call__.")

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a JSON-serialisable dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """The initializer that ``get_config`` described."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        return np.zeros(_check_shape(shape), dtype=_default_float32(dtype))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        return np.ones(_check_shape(shape), dtype=_default_float32(dtype))


class Constant(Initializer):
    """Every element equal to the scalar ``value``.

    Parameters
    ----------
    value : float
        A Python or NumPy scalar.
    """

    def __init__(self, value: float = 0.0) -> None:
        if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
            value = value.item()
        if not isinstance(value, numbers.Number):
            raise ValueError(
                "Invalid value for argument `value`: expected a scalar, "
                f"received value={value!r}."
            )
        self.value = value

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        return np.full(_check_shape(shape), self.value, dtype=_default_float32(dtype))

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomInitializer(Initializer):
    """Base of the random initializers: holds the seed and picks the generator."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = _check_seed(seed)

    def _generator(self) -> np.random.Generator:
        if self.seed is None:
            return _random.generator()
        return np.random.default_rng(self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


def _truncated_standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal draws, re-drawing every value outside [-2, 2]."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2.0
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    return z


class _NormalInitializer(RandomInitializer):
    """Holds and checks the arguments shared by RandomNormal and TruncatedNormal."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = _check_number(mean, "mean")
        self.stddev = _check_number(stddev, "stddev", minimum=0.0)
        super().__init__(seed)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomNormal(_NormalInitializer):
    """Normal draws with mean ``mean`` and standard deviation ``stddev``.

    Parameters
    ----------
    mean : float
    stddev : float
        Non-negative.
    seed : int or None
        See the module docstring.
    """

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
        return self._generator().normal(self.mean, self.stddev, shape).astype(dtype)


class TruncatedNormal(_NormalInitializer):
    """Normal draws re-drawn until within two ``stddev`` of ``mean``.

    ``stddev`` is that of the normal before truncation; the values have a
    standard deviation of about ``0.8796 * stddev``.

    Parameters
    ----------
    mean : float
    stddev : float
        Non-negative.
    seed : int or None
        See the module docstring.
    """

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
        z = _truncated_standard_normal(self._generator(), shape)
        return (self.mean + self.stddev * z).astype(dtype)


class RandomUniform(RandomInitializer):
    """Uniform draws in ``[minval, maxval)``.

    Parameters
    ----------
    minval, maxval : float
        ``minval <= maxval``.
    seed : int or None
        See the module docstring.
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05,
                 seed: int | None = None) -> None:
        self.minval = _check_number(minval, "minval")
        self.maxval = _check_number(maxval, "maxval")
        if self.maxval < self.minval:
            raise ValueError(
                "Invalid value for argument `maxval`: expected maxval >= minval, "
                f"received minval={minval!r}, maxval={maxval!r}."
            )
        super().__init__(seed)

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
        return self._generator().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(RandomInitializer):
    """Draws whose variance is ``scale / n``, ``n`` set by ``mode``.

    ``n`` is ``max(1, fan_in)``, ``max(1, fan_out)`` or
    ``max(1, (fan_in + fan_out) / 2)`` for ``mode`` "fan_in", "fan_out" or
    "fan_avg". "truncated_normal" draws a normal truncated at two standard
    deviations whose *truncated* standard deviation is ``sqrt(scale / n)``;
    "untruncated_normal" a plain normal with that standard deviation;
    "uniform" a uniform in ``[-limit, limit)``, ``limit = sqrt(3 * scale / n)``.

    Parameters
    ----------
    scale : float
        Positive.
    mode : {"fan_in", "fan_out", "fan_avg"}
    distribution : {"truncated_normal", "untruncated_normal", "uniform"}
        Case-insensitive; "normal" means "truncated_normal", as in Keras.
    seed : int or None
        See the module docstring.
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None) -> None:
        scale = _check_number(scale, "scale")
        if scale <= 0.0:
            raise ValueError(
                "Invalid value for argument `scale`: expected a positive float, "
                f"received scale={scale!r}."
            )
        if mode not in _MODES:
            raise ValueError(
                f"Invalid value for argument `mode`: expected one of {_MODES}, "
                f"received mode={mode!r}."
            )
        if isinstance(distribution, str):
            distribution = distribution.lower()
            if distribution == "normal":
                distribution = "truncated_normal"
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"Invalid value for argument `distribution`: expected one of {_DISTRIBUTIONS}, "
                f"received distribution={distribution!r}."
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        super().__init__(seed)

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._generator()
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_NORMAL_STDDEV
            values = stddev * _truncated_standard_normal(rng, shape)
        elif self.distribution == "untruncated_normal":
            values = rng.normal(0.0, math.sqrt(variance), shape)
        else:
            limit = math.sqrt(3.0 * variance)
            values = rng.uniform(-limit, limit, shape)
        return values.astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset: only the seed is an argument."""

    _preset: tuple[float, str, str]

    def __init__(self, seed: int | None = None) -> None:
        scale, mode, distribution = self._preset
        super().__init__(scale=scale, mode=mode, distribution=distribution, seed=seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))``."""

    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with standard deviation ``sqrt(2 / (fan_in + fan_out))``."""

    _preset = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with standard deviation ``sqrt(2 / fan_in)``."""

    _preset = (2.0, "fan_in", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit)``, ``limit = sqrt(6 / fan_in)``."""

    _preset = (2.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with standard deviation ``sqrt(1 / fan_in)``."""

    _preset = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform in ``[-limit, limit)``, ``limit = sqrt(3 / fan_in)``."""

    _preset = (1.0, "fan_in", "uniform")


class Orthogonal(RandomInitializer):
    """An orthogonal matrix (times ``gain``) from the QR decomposition of a
    normal matrix.

    A shape ``(d1, ..., dk)`` is filled as the matrix
    ``(d1 * ... * d(k-1), dk)`` and reshaped: its columns are orthonormal
    when it has at least as many rows as columns, its rows otherwise.

    Parameters
    ----------
    gain : float
        Multiplies the orthogonal matrix.
    seed : int or None
        See the module docstring.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.gain = _check_number(gain, "gain")
        super().__init__(seed)

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
        if len(shape) < 2:
            raise ValueError(
                "Invalid value for argument `shape`: expected at least 2 dimensions, "
                f"received shape={shape}."
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._generator().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        # Q is unique only up to the signs of its columns; fixing them by the
        # sign of R's diagonal makes Q uniformly distributed (Haar measure).
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    """The identity matrix times ``gain`` (Keras' ``Identity``, alias
    ``IdentityInitializer``); a non-square shape gets ones on its main
    diagonal.

    Parameters
    ----------
    gain : float
        Multiplies the identity matrix.

    Raises
    ------
    ValueError
        When called with a shape that is not 2-D.
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _check_number(gain, "gain")

    def __call__(self, shape: Sequence[int], dtype: Any = "float32") -> np.ndarray:
        shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
        if len(shape) != 2:
            raise ValueError(
                "Invalid value for argument `shape`: the Identity initializer makes 2-D "
                f"matrices only, received shape={shape} of rank {len(shape)}."
            )
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


_CLASSES: tuple[type[Initializer], ...] = (
    Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
    GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal,
    Identity,
)
# Every name ``get`` accepts: Keras' class names, their snake_case forms
# ("GlorotUniform" -> "glorot_uniform") and Keras' aliases.
_BY_NAME: dict[str, type[Initializer]] = {
    **{cls.__name__: cls for cls in _CLASSES},
    **{re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower(): cls for cls in _CLASSES},
    "zero": Zeros, "one": Ones, "normal": RandomNormal, "uniform": RandomUniform,
    "IdentityInitializer": Identity,
}


def get(identifier: Any) -> Initializer | Callable[..., np.ndarray] | None:
    """The initializer that ``identifier`` names.

    Parameters
    ----------
    identifier : None, str, dict, Initializer, Initializer subclass or callable
        A name ("glorot_uniform" or "GlorotUniform"), Keras' serialized form
        ``{"class_name": ..., "config": {...}}``, an instance (returned
        as is), a class (instantiated with its defaults) or a plain callable
        ``f(shape, dtype)`` (returned as is).

    Returns
    -------
    Initializer, callable or None
        None when ``identifier`` is None.

    Raises
    ------
    ValueError
        For an unknown name or a malformed dict.
    TypeError
        For any other kind of identifier.
    """
    return _registry.lookup(identifier, _BY_NAME, Initializer, "f(shape, dtype)")


def serialize(initializer: Initializer | None) -> dict[str, Any] | None:
    """Keras' serialized form ``{"class_name": ..., "config": {...}}``.

    Parameters
    ----------
    initializer : Initializer or None

    Returns
    -------
    dict or None
        None for None; ``get`` turns the dict back into an equal initializer.

    Raises
    ------
    TypeError
        For a plain function, which has no config to save.
    """
    return _registry.serialize(initializer, Initializer, "initializer")

"""Regularization layers, as Keras 3's: SpatialDropout1D/2D/3D, GaussianNoise,
GaussianDropout, AlphaDropout and ActivityRegularization.

The random layers act only in training and are the identity at inference.
Each draws from its own generator when given a ``seed`` (the same seed gives
the same noise, whatever the global seed), else from fastconv's process-wide
generator (``fastconv.utils.set_random_seed``); the draws are made by batch
chunks on one thread (``fastconv.runtime.random``), so they depend neither on
``set_num_threads`` nor on how a batch is shared among MPI ranks. The forward
pass returns the mask or noise factor as its context and the backward pass
multiplies by it: the gradient is exact for the noise drawn.

ActivityRegularization computes nothing itself: it carries an L1L2 activity
regularizer, whose penalty the executor adds to the loss (and whose gradient
to the layer's output gradient) as for any layer's ``activity_regularizer``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv import regularizers
from fastconv._validation import _is_int
from fastconv.layers.base import Layer, Shape, check_ndim, normalize_data_format
from fastconv.layers.core import Dropout
from fastconv.runtime import random as _random

# SELU's constants (Klambauer et al., 2017), as Keras' AlphaDropout writes them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check_fraction(value: Any, name: str, closed: bool = False) -> float:
    """A float in [0, 1) (or [0, 1] with ``closed``)."""
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and math.isfinite(value) and 0 <= value and (value <= 1 if closed else value < 1))
    if not ok:
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"Invalid value for argument `{name}`: expected a float in {interval}, "
                         f"received {name}={value!r}.")
    return float(value)


def _check_seed(seed: Any) -> int | None:
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise ValueError(f"Invalid value for argument `seed`: expected a non-negative int or "
                         f"None, received seed={seed!r}.")
    return None if seed is None else int(seed)


def _check_noise_shape(noise_shape: Any) -> tuple | None:
    """None, or a tuple of positive ints and Nones (Keras' rule)."""
    if noise_shape is None:
        return None
    if (not isinstance(noise_shape, (tuple, list))
            or not all(d is None or (_is_int(d) and d > 0) for d in noise_shape)):
        raise ValueError(f"Invalid value for argument `noise_shape`: expected a tuple of "
                         f"positive ints or None, received noise_shape={noise_shape!r}.")
    return tuple(None if d is None else int(d) for d in noise_shape)


class _Seeded(Layer):
    """A layer drawing random numbers: its own generator when seeded."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = _check_seed(seed)
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)

    def restart_random_state(self) -> None:
        if self.seed is not None:
            self._rng = np.random.default_rng(self.seed)

    def _draws(self, x: np.ndarray) -> _random.LayerDraws:
        return _random.LayerDraws(self._rng, len(x))

    def _normal(self, x: np.ndarray) -> np.ndarray:
        """Standard normal numbers of x's shape and dtype, by batch chunks."""
        return self._draws(x).per_row(
            lambda g, shape: g.standard_normal(shape, dtype=x.dtype), x.shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


# ----------------------------------------------------------------------------
# spatial dropout


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps: one keep/drop draw per (sample, channel),
    shared by every spatial position; kept maps are scaled by 1 / (1 - rate)."""

    rank = 0

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        if "noise_shape" in kwargs:  # Keras' spatial dropouts fix it
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            "['noise_shape'] (the mask is always one value per sample and "
                            "channel).")
        super().__init__(rate, seed=_check_seed(seed), **kwargs)
        self.data_format = normalize_data_format(data_format)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_ndim(self, input_shape, self.rank + 2)
        return tuple(input_shape)

    def _noise_shape(self, shape: tuple) -> tuple:
        ones = (1,) * self.rank
        if self.data_format == "channels_first":
            return (shape[0], shape[1], *ones)
        return (shape[0], *ones, shape[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["noise_shape"]
        return {**config, "data_format": self.data_format}


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of ``(N, steps, C)`` inputs during training.

    Each of the ``N * C`` channels is zeroed with probability ``rate`` (the
    same for every step) and kept channels are scaled by 1 / (1 - rate);
    the identity at inference. Keras' SpatialDropout1D has no data_format.

    Parameters
    ----------
    rate : float
        Fraction of channels dropped, in [0, 1).
    seed : int, optional
        Seed of the layer's own generator (else the global one is used).
    """

    rank = 1

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        if "data_format" in kwargs:
            raise TypeError("Unrecognized keyword arguments passed to SpatialDropout1D: "
                            "['data_format'] (its input is always (N, steps, C)).")
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["data_format"]
        return config


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of ``(N, H, W, C)`` inputs (channels_first
    ``(N, C, H, W)``) during training: the mask has shape ``(N, 1, 1, C)``
    (``(N, C, 1, 1)``), kept maps are scaled by 1 / (1 - rate); the identity
    at inference.

    Parameters
    ----------
    rate : float
        Fraction of feature maps dropped, in [0, 1).
    data_format : str, optional
        "channels_last" (default) or "channels_first".
    seed : int, optional
        Seed of the layer's own generator (else the global one is used).
    """

    rank = 2

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(rate, data_format, seed, **kwargs)


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of ``(N, D, H, W, C)`` inputs (channels_first
    ``(N, C, D, H, W)``) during training: the mask has shape
    ``(N, 1, 1, 1, C)`` (``(N, C, 1, 1, 1)``), kept volumes are scaled by
    1 / (1 - rate); the identity at inference.

    Parameters
    ----------
    rate : float
        Fraction of feature volumes dropped, in [0, 1).
    data_format : str, optional
        "channels_last" (default) or "channels_first".
    seed : int, optional
        Seed of the layer's own generator (else the global one is used).
    """

    rank = 3

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(rate, data_format, seed, **kwargs)


# ----------------------------------------------------------------------------
# noise


class GaussianNoise(_Seeded):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` during
    training: ``x + stddev * n`` with ``n ~ N(0, 1)``; the identity at
    inference. The gradient passes unchanged.

    Parameters
    ----------
    stddev : float
        In [0, 1], as Keras requires.
    seed : int, optional
        Seed of the layer's own generator (else the global one is used).
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed, **kwargs)
        self.stddev = _check_fraction(stddev, "stddev", closed=True)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        if not training or self.stddev == 0:
            return x, None
        noise = self._normal(x)
        noise *= x.dtype.type(self.stddev)
        return x + noise, None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev}


class GaussianDropout(_Seeded):
    """Multiplies the inputs by Gaussian noise of mean 1 during training:
    ``x * (1 + sqrt(rate / (1 - rate)) * n)`` with ``n ~ N(0, 1)``; the
    identity at inference.

    Parameters
    ----------
    rate : float
        In [0, 1) (Keras accepts 1, then fails dividing by zero in training).
    seed : int, optional
        Seed of the layer's own generator (else the global one is used).
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed, **kwargs)
        self.rate = _check_fraction(rate, "rate")

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        if not training or self.rate == 0:
            return x, None
        factor = self._normal(x)
        factor *= x.dtype.type(math.sqrt(self.rate / (1.0 - self.rate)))
        factor += 1
        return x * factor, factor

    def backward(self, factor: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        return dy if factor is None else dy * factor

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


class AlphaDropout(_Seeded):
    """Dropout that keeps SELU's self-normalisation: during training each
    input is kept with probability ``1 - rate`` or set to SELU's saturation
    value ``alpha' = -scale * alpha``, then ``a * x + b`` restores zero mean
    and unit variance for standard-normal inputs (Keras' formulas):

    ``a = ((1 - rate) * (1 + rate * alpha'^2)) ** -0.5``, ``b = -a * alpha' * rate``.

    The identity at inference; the gradient is ``a`` where kept, 0 elsewhere.

    Parameters
    ----------
    rate : float
        Fraction dropped, in [0, 1) (Keras accepts 1, then fails dividing by
        zero in training).
    noise_shape : tuple, optional
        Shape of the keep mask, broadcast against the input (None entries
        take the input's size), e.g. ``(None, 1, C)`` for one mask per
        sample and channel; by default the input's shape.
    seed : int, optional
        Seed of the layer's own generator (else the global one is used).
    """

    def __init__(self, rate: float, noise_shape: tuple | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(seed, **kwargs)
        self.rate = _check_fraction(rate, "rate")
        self.noise_shape = _check_noise_shape(noise_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.noise_shape is not None:
            self._mask_shape(input_shape)
        return tuple(input_shape)

    def _mask_shape(self, shape: tuple) -> tuple:
        if self.noise_shape is None:
            return tuple(shape)
        if len(self.noise_shape) != len(shape) or any(
                d is not None and n is not None and d != 1 and d != n
                for d, n in zip(self.noise_shape, shape)):
            raise ValueError(f"Invalid value for argument `noise_shape`: layer '{self.name}' "
                             f"needs one broadcastable to its input of shape {tuple(shape)}, "
                             f"received noise_shape={self.noise_shape}.")
        return tuple(n if d is None else d for d, n in zip(self.noise_shape, shape))

    def _coefficients(self) -> tuple[float, float, float]:
        """(alpha', a, b) of Keras' formulas, in float64."""
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        return alpha_p, a, -a * alpha_p * self.rate

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        if not training or self.rate == 0:
            return x, None
        alpha_p, a, b = self._coefficients()
        kept = _random.uniform_mask(self._draws(x), self._mask_shape(x.shape),
                                    self.noise_shape) >= self.rate
        # a * (x * kept + alpha' * (1 - kept)) + b, with the slope a * kept kept for backward
        slope = kept.astype(x.dtype) * x.dtype.type(a)
        offset = np.where(kept, x.dtype.type(b), x.dtype.type(a * alpha_p + b))
        return x * slope + offset, slope

    def backward(self, slope: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        return dy if slope is None else dy * slope

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


# ----------------------------------------------------------------------------
# activity regularization


class ActivityRegularization(Layer):
    """The identity, adding ``l1 * sum(|x|) + l2 * sum(x ** 2)`` of its input,
    divided by the batch size, to the loss, as Keras 3 does (in training and
    in evaluation). Its gradient is added to the gradient flowing back
    through the layer.

    Parameters
    ----------
    l1, l2 : float
        Non-negative factors (default 0).
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        if "activity_regularizer" in kwargs:
            raise TypeError("Unrecognized keyword arguments passed to ActivityRegularization: "
                            "['activity_regularizer'] (the layer's is L1L2(l1, l2)).")
        penalty = regularizers.L1L2(l1=l1, l2=l2)
        super().__init__(activity_regularizer=penalty, **kwargs)
        self.l1, self.l2 = penalty.l1, penalty.l2

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        return x, None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy if need_dx else None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}

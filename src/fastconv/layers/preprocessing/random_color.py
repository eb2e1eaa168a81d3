"""The value augmentations: RandomContrast and RandomBrightness.

Random only in training, the identity at inference. Given the draw each is
an affine map of the image followed by a clip to ``value_range``; backward
passes the gradient where the clip did not bind (as a clip's gradient does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.layers.preprocessing._image import (
    BaseRandomImageLayer,
    factor_range,
    is_number,
)


def _value_range(value: Any) -> list[float]:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(is_number(v) for v in value)):
        raise ValueError(f"Invalid value for argument `value_range`: expected a list of two "
                         f"numbers, received value_range={value!r}.")
    return sorted(float(v) for v in value)


def _clip(y: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    inside = (y >= low) & (y <= high)
    return np.clip(y, low, high).astype(y.dtype, copy=False), inside


class RandomContrast(BaseRandomImageLayer):
    """Scales each image's contrast by a random factor, as Keras'
    ``keras.layers.RandomContrast``: ``(x - mean) * f + mean`` with ``mean``
    the image's mean over height and width (per channel), clipped to
    ``value_range``.

    Parameters
    ----------
    factor : float or (float, float)
        In [0, 1]: ``f`` is drawn in ``[1 - lower, 1 + upper]``, a single
        number being both bounds (Keras' documented rule).
    value_range : (float, float)
        Default (0, 255).
    seed : int, optional
    data_format : "channels_last" (default) or "channels_first"
    """

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if is_number(factor) and 0 <= factor <= 1:
            factor = (float(factor), float(factor))
        self.factor = factor_range(factor, "factor", 0.0, 1.0)
        self.value_range = _value_range(value_range)

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if not training:
            return x, None
        f = self.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], x.shape[0])
        f = f.astype(x.dtype)[:, None, None, None]
        mean = x.mean(axis=(1, 2), keepdims=True)
        y, inside = _clip((x - mean) * f + mean, *self.value_range)
        return y, (f, inside)

    def backward_nhwc(self, ctx: Any, dy: np.ndarray) -> np.ndarray:
        if ctx is None:
            return dy
        f, inside = ctx
        d = np.where(inside, dy, 0).astype(dy.dtype)
        # y = f x + (1 - f) mean(x): the mean spreads its gradient evenly.
        spread = d.sum(axis=(1, 2), keepdims=True) / (d.shape[1] * d.shape[2])
        return (f * d + (1 - f) * spread).astype(dy.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class RandomBrightness(BaseRandomImageLayer):
    """Adds a random brightness offset to each image, as Keras'
    ``keras.layers.RandomBrightness``: ``x + U(lower, upper) * (high - low)``
    clipped to ``value_range = (low, high)``.

    Parameters
    ----------
    factor : float or (float, float)
        In [-1, 1]; a single number f gives (-f, f). -1 makes the image
        black, 1 white.
    value_range : (float, float)
        Default (0, 255); use (0, 1) after ``Rescaling(1 / 255)``.
    seed : int, optional
    data_format : "channels_last" (default) or "channels_first"
    """

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = factor_range(factor, "factor", -1.0, 1.0)
        self.value_range = _value_range(value_range)

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if not training:
            return x, None
        low, high = self.value_range
        delta = self.uniform(self.factor[0], self.factor[1], x.shape[0]) * (high - low)
        y, inside = _clip(x + delta.astype(x.dtype)[:, None, None, None], low, high)
        return y, inside

    def backward_nhwc(self, inside: Any, dy: np.ndarray) -> np.ndarray:
        return dy if inside is None else np.where(inside, dy, 0).astype(dy.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}

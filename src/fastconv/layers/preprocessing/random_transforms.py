"""The geometric augmentations: RandomFlip, RandomRotation, RandomZoom,
RandomTranslation and RandomCrop.

Each is random only in training (``fit``, or ``layer(x, training=True)``)
and, but for RandomCrop, the identity at inference. Given its draw each is
linear in the image; backward applies the transpose of that map (a flip,
the scatter of an affine warp, the padding of a crop).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv.layers.preprocessing._image import (
    FILL_MODES,
    INTERPOLATIONS,
    BaseRandomImageLayer,
    CropResize,
    Sampler,
    aspect_crop,
    check_choice,
    check_positive_int,
    factor_range,
    is_number,
)
from fastconv.layers.preprocessing.resizing import smart_resize

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


class RandomFlip(BaseRandomImageLayer):
    """Flips each image with probability 1/2, as Keras' ``keras.layers.RandomFlip``.

    Parameters
    ----------
    mode : {"horizontal", "vertical", "horizontal_and_vertical"}
        Which flips. As in Keras 3, "horizontal_and_vertical" draws once per
        image and applies both flips to the chosen images (a 180 degree turn).
    seed : int, optional
    data_format : "channels_last" (default) or "channels_first"
    """

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = check_choice(mode, "mode", FLIP_MODES)

    def _flip(self, x: np.ndarray, flips: np.ndarray) -> np.ndarray:
        y = x.copy()
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            y[flips] = y[flips][:, :, ::-1]
        if self.mode in ("vertical", "horizontal_and_vertical"):
            y[flips] = y[flips][:, ::-1]
        return y

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if not training:
            return x, None
        flips = self.uniform(0.0, 1.0, x.shape[0]) <= 0.5
        return self._flip(x, flips), flips

    def backward_nhwc(self, flips: Any, dy: np.ndarray) -> np.ndarray:
        return dy if flips is None else self._flip(dy, flips)  # a flip is its own transpose

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


class _AffineLayer(BaseRandomImageLayer):
    """A random affine warp per image (Keras' ``affine_transform``)."""

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
        self.interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS)
        if not is_number(fill_value):
            raise ValueError(f"Invalid value for argument `fill_value`: expected a number, "
                             f"received fill_value={fill_value!r}.")
        self.fill_value = float(fill_value)

    def transforms(self, n: int, height: int, width: int) -> np.ndarray:
        """``(n, 8)`` output-to-input transforms, one random draw per image."""
        raise NotImplementedError

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if not training:
            return x, None
        n, h, w, _ = x.shape
        sampler = Sampler(x.shape, self.transforms(n, h, w), self.interpolation,
                          self.fill_mode, self.fill_value, x.dtype)
        return sampler.forward(x), sampler

    def backward_nhwc(self, sampler: Any, dy: np.ndarray) -> np.ndarray:
        return dy if sampler is None else sampler.backward(dy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "interpolation": self.interpolation}


def _affine(n: int, a0: Any, a1: Any, a2: Any, b0: Any, b1: Any, b2: Any) -> np.ndarray:
    t = np.zeros((n, 8))
    for k, v in enumerate((a0, a1, a2, b0, b1, b2)):
        t[:, k] = v
    return t


class RandomRotation(_AffineLayer):
    """Rotates each image by a random angle about its center, as Keras'
    ``keras.layers.RandomRotation``.

    Parameters
    ----------
    factor : float or (float, float)
        The angle, as a fraction of a full turn: ``factor=0.1`` draws in
        [-36, 36] degrees, ``(-0.1, 0.2)`` in [-36, 72]; values in [-1, 1].
    fill_mode : {"reflect", "wrap", "constant", "nearest"}
        How points outside the image are filled: reflect (d c b a | a b c d |
        d c b a), wrap (a b c d | a b c d | a b c d), constant (k k k k |
        a b c d | k k k k, k = fill_value), nearest (a a a a | a b c d | d d d d).
    interpolation : {"bilinear", "nearest"}
    seed : int, optional
    fill_value : float
    data_format : "channels_last" (default) or "channels_first"

    Output pixel (i, j) reads the input at ``(cos a (j - cx) - sin a (i - cy) + cx,
    sin a (j - cx) + cos a (i - cy) + cy)`` with ``cx = (W - 1) / 2``,
    ``cy = (H - 1) / 2``, as Keras' rotation matrix does.
    """

    def __init__(self, factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.factor = factor_range(factor, "factor", -1.0, 1.0)

    def transforms(self, n: int, height: int, width: int) -> np.ndarray:
        angle = np.deg2rad(self.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, n))
        cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
        cos, sin = np.cos(angle), np.sin(angle)
        return _affine(n, cos, -sin, cx - cx * cos + cy * sin, sin, cos,
                       cy - cx * sin - cy * cos)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_AffineLayer):
    """Zooms each image in or out by a random factor, as Keras'
    ``keras.layers.RandomZoom``.

    Parameters
    ----------
    height_factor : float or (float, float)
        In (-1, 1]: the vertical zoom is ``1 + U(lower, upper)`` (``0.2``
        gives [0.8, 1.2]); a zoom above 1 reads a larger region (zooms out).
    width_factor : float or (float, float), optional
        The horizontal zoom's range; None keeps the aspect ratio (the same
        draw as the height's).
    fill_mode, interpolation, seed, fill_value, data_format :
        As ``RandomRotation``.

    Output pixel (i, j) reads ``(zx j + (W - 1) (1 - zx) / 2, zy i + (H - 1) (1 - zy) / 2)``.
    """

    def __init__(self, height_factor: Any, width_factor: Any = None,
                 fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.height_lower, self.height_upper = factor_range(height_factor, "height_factor",
                                                            -1.0, 1.0, low_open=True)
        self.height_factor = height_factor
        self.width_factor = width_factor
        if width_factor is not None:
            self.width_lower, self.width_upper = factor_range(width_factor, "width_factor",
                                                              -1.0, 1.0, low_open=True)

    def transforms(self, n: int, height: int, width: int) -> np.ndarray:
        zy = self.uniform(1.0 + self.height_lower, 1.0 + self.height_upper, n)
        zx = zy if self.width_factor is None else self.uniform(
            1.0 + self.width_lower, 1.0 + self.width_upper, n)
        return _affine(n, zx, 0.0, (width - 1) / 2 * (1 - zx), 0.0, zy,
                       (height - 1) / 2 * (1 - zy))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height_factor": _plain(self.height_factor),
                "width_factor": _plain(self.width_factor)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class RandomTranslation(_AffineLayer):
    """Shifts each image by a random offset, as Keras' ``keras.layers.RandomTranslation``.

    Parameters
    ----------
    height_factor, width_factor : float or (float, float)
        In [-1, 1], fractions of the height / width: ``0.2`` shifts by up to
        20% either way, ``(-0.2, 0.1)`` up by 20% to down by 10%.
    fill_mode, interpolation, seed, fill_value, data_format :
        As ``RandomRotation``.

    Output pixel (i, j) reads ``(j - dx, i - dy)``, ``dx = U(width range) * W``,
    ``dy = U(height range) * H``.
    """

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.height_lower, self.height_upper = factor_range(height_factor, "height_factor",
                                                            -1.0, 1.0)
        self.width_lower, self.width_upper = factor_range(width_factor, "width_factor",
                                                          -1.0, 1.0)
        self.height_factor, self.width_factor = height_factor, width_factor

    def transforms(self, n: int, height: int, width: int) -> np.ndarray:
        dy = self.uniform(self.height_lower, self.height_upper, n) * height
        dx = self.uniform(self.width_lower, self.width_upper, n) * width
        return _affine(n, 1.0, 0.0, -dx, 0.0, 1.0, -dy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height_factor": _plain(self.height_factor),
                "width_factor": _plain(self.width_factor)}


class RandomCrop(BaseRandomImageLayer):
    """Crops a random ``(height, width)`` window in training, as Keras'
    ``keras.layers.RandomCrop``; one window for the whole batch.

    In training, an image larger than the target in both dimensions gives a
    window at a uniformly drawn offset. Otherwise, and at inference, the
    layer returns the largest centered window of the target aspect ratio
    resized (bilinear) to ``(height, width)``, as Keras documents (its
    ``smart_resize``); in training with a small image the window is taken as
    Keras' code takes it (target size from the centered start, clipped,
    then resized).

    Parameters
    ----------
    height, width : int
    seed : int, optional
    data_format : "channels_last" (default) or "channels_first"
    """

    def __init__(self, height: int, width: int, seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height = check_positive_int(height, "height")
        self.width = check_positive_int(width, "width")

    def output_size(self, height: int | None, width: int | None) -> tuple:
        return self.height, self.width

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        h, w = x.shape[1:3]
        size = (self.height, self.width)
        if not training:
            op = smart_resize(x.shape, size, "bilinear", x.dtype)
        elif h > self.height and w > self.width:
            top = math.floor(self.uniform(0.0, float(h - self.height + 1), None))
            left = math.floor(self.uniform(0.0, float(w - self.width + 1), None))
            top, left = min(top, h - self.height), min(left, w - self.width)
            op = CropResize((h, w), (top, left, self.height, self.width), size, "bilinear",
                            x.dtype)
        else:
            top, left, _, _ = aspect_crop(h, w, *size)
            box = (top, left, min(self.height, h - top), min(self.width, w - left))
            op = CropResize((h, w), box, size, "bilinear", x.dtype)
        return op.forward(x), op

    def backward_nhwc(self, op: CropResize, dy: np.ndarray) -> np.ndarray:
        return op.backward(dy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width}

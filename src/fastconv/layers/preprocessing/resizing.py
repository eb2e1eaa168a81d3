"""``Resizing`` and ``CenterCrop``: images to a fixed size."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.layers.preprocessing._image import (
    INTERPOLATIONS,
    BaseImageLayer,
    CropResize,
    aspect_crop,
    check_choice,
    check_positive_int,
)


def smart_resize(shape: tuple[int, ...], size: tuple[int, int], interpolation: str,
                 dtype: Any) -> CropResize:
    """Keras' ``smart_resize`` for NHWC ``shape``: the largest centered
    window of the target aspect ratio, resized to ``size``."""
    box = aspect_crop(shape[1], shape[2], *size)
    return CropResize(shape[1:3], box, size, interpolation, dtype)


class Resizing(BaseImageLayer):
    """Resizes images to ``(height, width)``, as Keras' ``keras.layers.Resizing``
    (TensorFlow's ``resize``: half-pixel centers, no antialiasing).

    Parameters
    ----------
    height, width : int
        The output size.
    interpolation : {"bilinear", "nearest"}
        fastconv implements these two of Keras' methods; the others raise
        ``ValueError``.
    crop_to_aspect_ratio : bool
        First take the largest centered window of the target aspect ratio,
        so the image is not distorted.
    pad_to_aspect_ratio, antialias : bool
        Only False is supported.
    fill_mode, fill_value :
        Used by Keras with ``pad_to_aspect_ratio`` only; kept in the config.
    data_format : "channels_last" (default) or "channels_first"

    Input ``(N, H, W, C)``; output ``(N, height, width, C)`` in the layer's
    float dtype. Backward is the transpose of the interpolation.
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear",
                 crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False,
                 fill_mode: str = "constant", fill_value: float = 0.0, antialias: bool = False,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(data_format=data_format, **kwargs)
        self.height = check_positive_int(height, "height")
        self.width = check_positive_int(width, "width")
        if interpolation in ("bicubic", "lanczos3", "lanczos5", "area"):
            raise ValueError(f"Invalid value for argument `interpolation`: fastconv supports "
                             f"{list(INTERPOLATIONS)}, received interpolation={interpolation!r}.")
        self.interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS)
        if pad_to_aspect_ratio:
            raise ValueError("Invalid value for argument `pad_to_aspect_ratio`: only False is "
                             "supported by fastconv, received pad_to_aspect_ratio=True.")
        if antialias:
            raise ValueError("Invalid value for argument `antialias`: only False is supported "
                             "by fastconv, received antialias=True.")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` may "
                             "be True.")
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = False
        self.fill_mode = fill_mode
        self.fill_value = fill_value
        self.antialias = False

    def output_size(self, height: int | None, width: int | None) -> tuple:
        return self.height, self.width

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, CropResize]:
        h, w = x.shape[1:3]
        size = (self.height, self.width)
        box = aspect_crop(h, w, *size) if self.crop_to_aspect_ratio else (0, 0, h, w)
        op = CropResize((h, w), box, size, self.interpolation, x.dtype)
        return op.forward(x), op

    def backward_nhwc(self, op: CropResize, dy: np.ndarray) -> np.ndarray:
        return op.backward(dy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(BaseImageLayer):
    """Crops the center ``(height, width)`` of each image, as Keras'
    ``keras.layers.CenterCrop``: the window starts at ``((H - height) // 2,
    (W - width) // 2)``; an image smaller than the target in either
    dimension is instead resized as ``smart_resize`` does (the largest
    centered window of the target aspect ratio, bilinear).

    Input ``(N, H, W, C)``; output ``(N, height, width, C)``.
    """

    def __init__(self, height: int, width: int, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(data_format=data_format, **kwargs)
        self.height = check_positive_int(height, "height")
        self.width = check_positive_int(width, "width")

    def output_size(self, height: int | None, width: int | None) -> tuple:
        return self.height, self.width

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        h, w = x.shape[1:3]
        if h >= self.height and w >= self.width:
            top, left = (h - self.height) // 2, (w - self.width) // 2
            ctx = ("crop", (h, w), top, left)
            return x[:, top:top + self.height, left:left + self.width], ctx
        op = smart_resize(x.shape, (self.height, self.width), "bilinear", x.dtype)
        return op.forward(x), ("resize", op)

    def backward_nhwc(self, ctx: Any, dy: np.ndarray) -> np.ndarray:
        if ctx[0] == "resize":
            return ctx[1].backward(dy)
        _, (h, w), top, left = ctx
        dx = np.zeros((dy.shape[0], h, w, dy.shape[3]), dy.dtype)
        dx[:, top:top + self.height, left:left + self.width] = dy
        return dx

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width}

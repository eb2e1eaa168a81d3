"""MaxPooling2D and AveragePooling2D on fastconv's compiled kernels."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.layers.backend import kernels
from fastconv.layers.base import (
    Layer,
    Shape,
    check_ndim,
    normalize_data_format,
    normalize_padding,
    normalize_tuple,
)


class _Pooling2D(Layer):
    """Shared arguments and shapes of the 2-D pooling layers."""

    def __init__(self, pool_size: int | tuple[int, int] = (2, 2),
                 strides: int | tuple[int, int] | None = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2,
                                                                                "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)

    def build(self, input_shape: Shape) -> None:
        check_ndim(self, input_shape, 4)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_ndim(self, input_shape, 4)
        first = self.data_format == "channels_first"
        n, h, w, c = (input_shape[0], *input_shape[2:], input_shape[1]) if first else input_shape
        sizes = []
        for size, k, s in zip((h, w), self.pool_size, self.strides):
            if size is None:
                sizes.append(None)
            elif self.padding == "same":
                sizes.append(-(-size // s))
            elif size < k:
                raise ValueError(
                    f"Layer '{self.name}': the input's spatial size {(h, w)} is smaller than "
                    f"the pool size {self.pool_size}; use padding='same' or a smaller pool."
                )
            else:
                sizes.append((size - k) // s + 1)
        return (n, c, *sizes) if first else (n, *sizes, c)

    def _to_nhwc(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if self.data_format == "channels_first" else x

    def _from_nhwc(self, y: np.ndarray) -> np.ndarray:
        return y.transpose(0, 3, 1, 2) if self.data_format == "channels_first" else y

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format}


class MaxPooling2D(_Pooling2D):
    """Max pooling; the backward pass routes each gradient to its window's maximum
    (the first one on ties)."""

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context ``(argmax, x_shape)`` (NHWC)."""
        x = self._to_nhwc(x)
        y, argmax = kernels().max_pool2d(x, self.pool_size, self.strides, self.padding)
        return self._from_nhwc(y), (argmax, x.shape)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        argmax, x_shape = ctx
        dy = np.ascontiguousarray(self._to_nhwc(dy), dtype=self.dtype)
        return self._from_nhwc(kernels().max_pool2d_backward(
            dy, argmax, x_shape, self.pool_size, self.strides, self.padding))


class AveragePooling2D(_Pooling2D):
    """Average pooling over the window's elements inside the image (Keras)."""

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        x = self._to_nhwc(x)
        y = kernels().avg_pool2d(x, self.pool_size, self.strides, self.padding)
        return self._from_nhwc(y), x.shape

    def backward(self, x_shape: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        dy = np.ascontiguousarray(self._to_nhwc(dy), dtype=self.dtype)
        return self._from_nhwc(kernels().avg_pool2d_backward(dy, x_shape, self.pool_size,
                                                             self.strides, self.padding))


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D

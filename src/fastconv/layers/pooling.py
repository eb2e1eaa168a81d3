"""BasePooling: max and average pooling of any rank, and the thin
MaxPooling1D/2D/3D and AveragePooling1D/2D/3D, as Keras 3's
``base_pooling.py``.

The layers compute through ``fastconv.ops.spatial`` on ``kernels()``: the
2-D kernels for rank 1 and 2 (a sequence as a height-1 image),
``max_pool_nd`` / ``avg_pool_nd`` for rank 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.layers import registry
from fastconv.layers._spatial import SpatialLayout, conv_output_sizes
from fastconv.layers.backend import kernels
from fastconv.layers.base import (
    Layer,
    Shape,
    normalize_data_format,
    normalize_padding,
    normalize_tuple,
)
from fastconv.ops import spatial

_MODES = ("max", "average")


class BasePooling(SpatialLayout, Layer):
    """Pooling over ``pool_dimensions`` spatial axes, as Keras' BasePooling.

    Parameters
    ----------
    pool_size : int or tuple of ``pool_dimensions`` ints
    strides : int, tuple or None
        Defaults to ``pool_size``.
    pool_dimensions : int
        1, 2 or 3 spatial axes.
    pool_mode : "max" or "average"
        Max pooling routes each gradient to its window's maximum (the first
        one on ties); average pooling averages the window's elements inside
        the input (padding counts in neither the sum nor the divisor).
    padding : "valid" or "same"
    data_format : "channels_last" (default) or "channels_first"
    """

    checks_channels = False  # Keras' InputSpec(ndim=rank + 2)

    def __init__(self, pool_size: Any, strides: Any, pool_dimensions: int,
                 pool_mode: str = "max", padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if pool_mode not in _MODES:
            raise ValueError(f"Invalid value for argument `pool_mode`: expected 'max' or "
                             f"'average', received pool_mode={pool_mode!r}.")
        self.rank = pool_dimensions
        self.pool_mode = pool_mode
        self.pool_size = normalize_tuple(pool_size, pool_dimensions, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(
            strides, pool_dimensions, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)

    def build(self, input_shape: Shape) -> None:
        self.split_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        n, sizes, c = self.split_shape(input_shape)
        out = conv_output_sizes(self, sizes, self.pool_size, self.strides,
                                (1,) * self.rank, self.padding, "the pool size")
        return self.join_shape(n, out, c)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context: ``(argmax, x_shape)`` for max pooling,
        ``x_shape`` for average pooling (channels-last)."""
        x = self.to_channels_last(x)
        if self.pool_mode == "max":
            y, argmax = spatial.max_pool(kernels(), x, self.pool_size, self.strides,
                                         self.padding)
            return self.from_channels_last(y), (argmax, x.shape)
        y = spatial.avg_pool(kernels(), x, self.pool_size, self.strides, self.padding)
        return self.from_channels_last(y), x.shape

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        dy = np.ascontiguousarray(self.to_channels_last(dy), dtype=self.dtype)
        if self.pool_mode == "max":
            argmax, x_shape = ctx
            dx = spatial.max_pool_backward(kernels(), dy, argmax, x_shape, self.pool_size,
                                           self.strides, self.padding)
        else:
            dx = spatial.avg_pool_backward(kernels(), dy, ctx, self.pool_size, self.strides,
                                           self.padding)
        return self.from_channels_last(dx)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "padding": self.padding, "strides": list(self.strides),
                "data_format": self.data_format}


class MaxPooling1D(BasePooling):
    """Max pooling over ``(N, steps, C)`` (channels_first: ``(N, C, steps)``)."""

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, 1, "max", padding, data_format, **kwargs)


class MaxPooling2D(BasePooling):
    """Max pooling over ``(N, H, W, C)`` (channels_first: ``(N, C, H, W)``)."""

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, 2, "max", padding, data_format, **kwargs)


class MaxPooling3D(BasePooling):
    """Max pooling over ``(N, D, H, W, C)`` (channels_first: ``(N, C, D, H, W)``)."""

    def __init__(self, pool_size: Any = (2, 2, 2), strides: Any = None,
                 padding: str = "valid", data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(pool_size, strides, 3, "max", padding, data_format, **kwargs)


class AveragePooling1D(BasePooling):
    """Average pooling over ``(N, steps, C)`` (channels_first: ``(N, C, steps)``)."""

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, 1, "average", padding, data_format, **kwargs)


class AveragePooling2D(BasePooling):
    """Average pooling over ``(N, H, W, C)`` (channels_first: ``(N, C, H, W)``)."""

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, 2, "average", padding, data_format, **kwargs)


class AveragePooling3D(BasePooling):
    """Average pooling over ``(N, D, H, W, C)`` (channels_first: ``(N, C, D, H, W)``)."""

    def __init__(self, pool_size: Any = (2, 2, 2), strides: Any = None,
                 padding: str = "valid", data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(pool_size, strides, 3, "average", padding, data_format, **kwargs)


MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
MaxPool3D = MaxPooling3D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
AvgPool3D = AveragePooling3D

# A config may name a class by its Keras alias.
for _cls, _alias in [(MaxPooling1D, "MaxPool1D"), (MaxPooling2D, "MaxPool2D"),
                     (MaxPooling3D, "MaxPool3D"), (AveragePooling1D, "AvgPool1D"),
                     (AveragePooling2D, "AvgPool2D"), (AveragePooling3D, "AvgPool3D")]:
    registry.register_builtin(_cls, _alias)

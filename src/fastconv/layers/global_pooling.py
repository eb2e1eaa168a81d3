"""Global pooling layers, as Keras 3's: GlobalAveragePooling1D/2D/3D and
GlobalMaxPooling1D/2D/3D (also named GlobalAvgPool1D/2D/3D and
GlobalMaxPool1D/2D/3D), on the compiled global pooling kernels.

One rank-generic base (Keras' ``BaseGlobalPooling``) holds the arguments,
the output shapes, the layouts and the config; the average and max families
add their forward and backward passes; each per-rank class only fixes the
rank. The kernels take channels-last arrays, so a channels_first input is
transposed for them (and its gradient transposed back).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.layers.backend import kernels
from fastconv.layers.base import Layer, Shape, check_ndim, normalize_data_format


class _GlobalPooling(Layer):
    """Pools each channel over all ``rank`` spatial axes.

    Parameters
    ----------
    rank : int
        Spatial axes of the input: 1, 2 or 3.
    data_format : "channels_last" (default) or "channels_first"
        ``(N, *spatial, C)`` or ``(N, C, *spatial)``.
    keepdims : bool
        Keep the spatial axes, with size 1: output ``(N, 1, ..., C)`` (or
        ``(N, C, 1, ...)``) instead of ``(N, C)``.
    """

    def __init__(self, rank: int, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise TypeError(f"Invalid value for argument `keepdims`: expected True or False, "
                            f"received keepdims={keepdims!r}.")
        self.rank = rank
        self.data_format = normalize_data_format(data_format)
        self.keepdims = bool(keepdims)

    def _first(self) -> bool:
        return self.data_format == "channels_first"

    def build(self, input_shape: Shape) -> None:
        check_ndim(self, input_shape, self.rank + 2)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_ndim(self, input_shape, self.rank + 2)
        return self._pooled_shape(input_shape[0], input_shape[1 if self._first() else -1])

    def _pooled_shape(self, n: Any, c: Any) -> Shape:
        if not self.keepdims:
            return (n, c)
        ones = (1,) * self.rank
        return (n, c, *ones) if self._first() else (n, *ones, c)

    def _channels_last(self, x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x, 1, -1) if self._first() else x

    def _layer_layout(self, dx: np.ndarray) -> np.ndarray:
        return np.moveaxis(dx, -1, 1) if self._first() else dx

    def _output(self, y: np.ndarray) -> np.ndarray:
        """The kernels' (N, C) in the layer's output shape."""
        return y.reshape(self._pooled_shape(*y.shape)) if self.keepdims else y

    def _pooled_gradient(self, dy: np.ndarray) -> np.ndarray:
        """dy of the output as the kernels take it: (N, C), the layer's dtype."""
        dy = np.ascontiguousarray(dy, dtype=self.dtype)
        return dy.reshape(dy.shape[0], -1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class _GlobalAveragePooling(_GlobalPooling):
    """The mean of each channel over the spatial positions."""

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context: the channels-last input shape."""
        x = self._channels_last(x)
        return self._output(kernels().global_avg_pool(x)), x.shape

    def backward(self, x_shape: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        return self._layer_layout(kernels().global_avg_pool_backward(self._pooled_gradient(dy),
                                                                     x_shape))


class _GlobalMaxPooling(_GlobalPooling):
    """The maximum of each channel over the spatial positions; the gradient
    goes to the first maximum (NaN counting as the largest)."""

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context ``(argmax, channels-last input shape)``."""
        x = self._channels_last(x)
        y, argmax = kernels().global_max_pool(x)
        return self._output(y), (argmax, x.shape)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        argmax, x_shape = ctx
        return self._layer_layout(kernels().global_max_pool_backward(self._pooled_gradient(dy),
                                                                     argmax, x_shape))


class GlobalAveragePooling1D(_GlobalAveragePooling):
    """Mean over the steps: ``(N, steps, C)`` -> ``(N, C)`` (``(N, 1, C)`` with
    keepdims; channels_first ``(N, C, steps)``). A ``mask`` is not supported:
    calls take ``mask=None`` only."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(1, data_format, keepdims, **kwargs)

    def __call__(self, *args: Any, mask: Any = None, **kwargs: Any) -> Any:
        if mask is not None:
            raise ValueError(
                f"Invalid value for argument `mask`: layer '{self.name}' averages every step "
                f"(fastconv supports mask=None only), received a mask of shape "
                f"{tuple(np.shape(mask))}.")
        return super().__call__(*args, **kwargs)


class GlobalAveragePooling2D(_GlobalAveragePooling):
    """Mean over height and width: ``(N, H, W, C)`` -> ``(N, C)`` (``(N, 1, 1, C)``
    with keepdims; channels_first ``(N, C, H, W)``)."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(2, data_format, keepdims, **kwargs)


class GlobalAveragePooling3D(_GlobalAveragePooling):
    """Mean over depth, height and width: ``(N, D, H, W, C)`` -> ``(N, C)``
    (``(N, 1, 1, 1, C)`` with keepdims; channels_first ``(N, C, D, H, W)``)."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(3, data_format, keepdims, **kwargs)


class GlobalMaxPooling1D(_GlobalMaxPooling):
    """Maximum over the steps: ``(N, steps, C)`` -> ``(N, C)`` (``(N, 1, C)`` with
    keepdims; channels_first ``(N, C, steps)``)."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(1, data_format, keepdims, **kwargs)


class GlobalMaxPooling2D(_GlobalMaxPooling):
    """Maximum over height and width: ``(N, H, W, C)`` -> ``(N, C)``
    (``(N, 1, 1, C)`` with keepdims; channels_first ``(N, C, H, W)``)."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(2, data_format, keepdims, **kwargs)


class GlobalMaxPooling3D(_GlobalMaxPooling):
    """Maximum over depth, height and width: ``(N, D, H, W, C)`` -> ``(N, C)``
    (``(N, 1, 1, 1, C)`` with keepdims; channels_first ``(N, C, D, H, W)``)."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(3, data_format, keepdims, **kwargs)


GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalMaxPool3D = GlobalMaxPooling3D

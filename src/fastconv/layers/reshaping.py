"""Reshaping layers, as Keras 3's: UpSampling1D/2D/3D, ZeroPadding1D/2D/3D,
Cropping1D/2D/3D, Permute and RepeatVector.

One rank-generic base per family holds the arguments (normalised and checked
by the ops' own rules, ``fastconv._validation_resample``), the output shapes
(None sizes stay None) and the config; each per-rank class fixes the rank
and Keras' defaults for it. The ops (``fastconv.ops``: upsample, zero_pad,
crop and their gradients) take channels-last arrays: a channels_first input
is transposed for upsampling; zero padding and cropping treat every channel
alike, so there a channels_first ``(N, C, *spatial)`` array is viewed as
``N * C`` single-channel images instead, without moving any data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv import _validation_resample as rules
from fastconv._validation import _is_int
from fastconv.layers.backend import kernels
from fastconv.layers.base import Layer, Shape, check_ndim, normalize_data_format


class _Resampling(Layer):
    """What the three families share: a rank, a data format, the shape checks."""

    takes_data_format = True  # Keras' UpSampling1D and Cropping1D take none

    def __init__(self, rank: int, data_format: str | None = None, **kwargs: Any) -> None:
        if data_format is not None and not self.takes_data_format:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            "['data_format'] (its input is always (N, steps, C)).")
        super().__init__(**kwargs)
        self.rank = rank
        self.data_format = normalize_data_format(data_format)

    def _first(self) -> bool:
        return self.data_format == "channels_first"

    def _spatial_axis(self) -> int:
        """Index of the first spatial axis in the layer's layout."""
        return 2 if self._first() else 1

    def build(self, input_shape: Shape) -> None:
        check_ndim(self, input_shape, self.rank + 2)
        self.built = True

    def _map_spatial(self, input_shape: Shape, per_axis: Any) -> Shape:
        """input_shape with each known spatial size d of axis k replaced by
        ``per_axis(k, d)``."""
        check_ndim(self, input_shape, self.rank + 2)
        shape = list(input_shape)
        first = self._spatial_axis()
        for k in range(self.rank):
            if shape[first + k] is not None:
                shape[first + k] = per_axis(k, shape[first + k])
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


# ----------------------------------------------------------------------------
# upsampling


class _UpSampling(_Resampling):
    """Repeats (or interpolates) every spatial axis ``size`` times."""

    def __init__(self, rank: int, size: Any, data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any) -> None:
        super().__init__(rank, data_format, **kwargs)
        self.size = rules.size_tuple(size, rank)
        self.interpolation = rules.check_interpolation(interpolation, rank)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._map_spatial(input_shape, lambda k, d: d * self.size[k])

    def _channels_last(self, x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x, 1, -1) if self._first() else x

    def _layer_layout(self, y: np.ndarray) -> np.ndarray:
        return np.moveaxis(y, -1, 1) if self._first() else y

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context: the channels-last input shape."""
        x = self._channels_last(x)
        y = kernels().upsample(x, self.size, self.interpolation)
        return self._layer_layout(y), x.shape

    def backward(self, x_shape: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        dy = self._channels_last(np.asarray(dy, dtype=self.dtype))
        return self._layer_layout(kernels().upsample_backward(dy, x_shape, self.size,
                                                              self.interpolation))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": list(self.size)}


class UpSampling1D(_UpSampling):
    """Repeats each step ``size`` times: ``(N, steps, C)`` -> ``(N, steps * size, C)``."""

    takes_data_format = False

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        if not _is_int(size):  # Keras' UpSampling1D takes one int
            raise TypeError(f"Invalid value for argument `size`: expected an int, received "
                            f"size={size!r}.")
        super().__init__(1, size, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["data_format"]  # Keras' UpSampling1D has none
        return {**config, "size": self.size[0]}


class UpSampling2D(_UpSampling):
    """Upsamples rows and columns by ``size``: ``(N, H, W, C)`` ->
    ``(N, H * size[0], W * size[1], C)`` (channels_first ``(N, C, H, W)``).

    ``interpolation`` is "nearest" (repeat) or "bilinear" (Keras 3's
    half-pixel bilinear resize, TensorFlow's ``resize(..., "bilinear")``).
    """

    def __init__(self, size: int | tuple[int, int] = (2, 2), data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any) -> None:
        super().__init__(2, size, data_format, interpolation, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    """Repeats each of the three spatial axes ``size`` times: ``(N, D, H, W, C)``
    -> ``(N, D * size[0], H * size[1], W * size[2], C)`` (channels_first
    ``(N, C, D, H, W)``)."""

    def __init__(self, size: int | tuple[int, int, int] = (2, 2, 2),
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(3, size, data_format, **kwargs)


# ----------------------------------------------------------------------------
# zero padding and cropping


class _Margins(_Resampling):
    """Zero padding and cropping: (before, after) amounts per spatial axis,
    applied by an op that treats every channel alike."""

    argument = ""  # "padding" or "cropping"

    def __init__(self, rank: int, amounts: Any, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(rank, data_format, **kwargs)
        self.pairs = rules.spatial_pairs(amounts, rank, self.argument)

    def _to_op(self, a: np.ndarray) -> np.ndarray:
        """Channels last for the op; channels_first ``(N, C, *spatial)`` as the
        ``N * C`` images ``(N * C, *spatial, 1)``, the same memory."""
        if not self._first():
            return a
        return np.reshape(a, (a.shape[0] * a.shape[1], *a.shape[2:], 1))

    def _from_op(self, a: np.ndarray, n: int) -> np.ndarray:
        if not self._first():
            return a
        return a.reshape(n, -1, *a.shape[1:-1])

    def _config_value(self) -> list:
        """The amounts as Keras' config holds them: ((before, after), ...)."""
        return [list(pair) for pair in self.pairs]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), self.argument: self._config_value()}


class _ZeroPadding(_Margins):
    """Adds zeros before and after each spatial axis."""

    argument = "padding"

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._map_spatial(input_shape, lambda k, d: d + sum(self.pairs[k]))

    @property
    def padding(self) -> tuple:
        return self.pairs

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        return self._from_op(kernels().zero_pad(self._to_op(x), self.pairs), x.shape[0]), None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        dy = np.asarray(dy, dtype=self.dtype)
        return self._from_op(kernels().zero_pad_backward(self._to_op(dy), self.pairs),
                             dy.shape[0])


class ZeroPadding1D(_ZeroPadding):
    """Zeros at the start and end of the steps axis: ``padding`` is an int or
    ``(before, after)``; ``(N, steps, C)`` (channels_first ``(N, C, steps)``)."""

    def __init__(self, padding: int | tuple[int, int] = 1, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(1, padding, data_format, **kwargs)

    def _config_value(self) -> list:
        return list(self.pairs[0])


class ZeroPadding2D(_ZeroPadding):
    """Zeros around rows and columns: ``padding`` is an int, ``(pad_h, pad_w)``
    or ``((top, bottom), (left, right))``; ``(N, H, W, C)`` (channels_first
    ``(N, C, H, W)``)."""

    def __init__(self, padding: int | tuple = (1, 1), data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(2, padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Zeros around the three spatial axes: ``padding`` is an int, three ints or
    three (before, after) pairs; ``(N, D, H, W, C)`` (channels_first
    ``(N, C, D, H, W)``)."""

    def __init__(self, padding: int | tuple = ((1, 1), (1, 1), (1, 1)),
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(3, padding, data_format, **kwargs)


class _Cropping(_Margins):
    """Removes elements before and after each spatial axis; each axis must
    keep at least one."""

    argument = "cropping"

    @property
    def cropping(self) -> tuple:
        return self.pairs

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        def kept(k: int, d: int) -> int:
            if sum(self.pairs[k]) >= d:
                raise ValueError(
                    f"Invalid value for argument `cropping`: layer '{self.name}' would remove "
                    f"every element of spatial axis {k} (size {d}) of its input of shape "
                    f"{tuple(input_shape)}; received cropping={self.cropping}.")
            return d - sum(self.pairs[k])
        return self._map_spatial(input_shape, kept)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context: the input's shape as the op saw it."""
        x_op = self._to_op(x)
        return self._from_op(kernels().crop(x_op, self.pairs), x.shape[0]), x_op.shape

    def backward(self, x_shape: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        dy = np.asarray(dy, dtype=self.dtype)
        return self._from_op(kernels().crop_backward(self._to_op(dy), x_shape, self.pairs),
                             dy.shape[0])


class Cropping1D(_Cropping):
    """Removes steps at the start and end: ``cropping`` is an int or
    ``(before, after)``; ``(N, steps, C)`` (Keras' Cropping1D has no
    data_format)."""

    takes_data_format = False

    def __init__(self, cropping: int | tuple[int, int] = (1, 1), **kwargs: Any) -> None:
        super().__init__(1, cropping, **kwargs)

    def _config_value(self) -> list:
        return list(self.pairs[0])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["data_format"]
        return config


class Cropping2D(_Cropping):
    """Removes rows and columns: ``cropping`` is an int, ``(crop_h, crop_w)`` or
    ``((top, bottom), (left, right))``; ``(N, H, W, C)`` (channels_first
    ``(N, C, H, W)``)."""

    def __init__(self, cropping: int | tuple = ((0, 0), (0, 0)), data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(2, cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Removes elements of the three spatial axes: ``cropping`` is an int, three
    ints or three (before, after) pairs; ``(N, D, H, W, C)`` (channels_first
    ``(N, C, D, H, W)``)."""

    def __init__(self, cropping: int | tuple = ((1, 1), (1, 1), (1, 1)),
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(3, cropping, data_format, **kwargs)


# ----------------------------------------------------------------------------
# axis order and repetition


class Permute(Layer):
    """Reorders the axes of each sample: ``dims`` is a permutation of
    ``1, ..., rank`` (the batch axis 0 stays first), e.g. ``Permute((2, 1))``
    turns ``(N, 10, 64)`` into ``(N, 64, 10)``.

    Parameters
    ----------
    dims : tuple of int
        Output axis ``k + 1`` is input axis ``dims[k]``; the input has
        ``len(dims) + 1`` axes.
    """

    def __init__(self, dims: tuple, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (not isinstance(dims, (tuple, list)) or not all(_is_int(d) for d in dims)
                or sorted(int(d) for d in dims) != list(range(1, len(dims) + 1))):
            raise ValueError("Invalid value for argument `dims`: expected a permutation of "
                             "1, ..., rank (consecutive ints from 1; the batch axis is not "
                             f"included), received dims={dims!r}.")
        self.dims = tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_ndim(self, input_shape, len(self.dims) + 1)
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        return np.ascontiguousarray(np.transpose(x, (0, *self.dims))), None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        inverse = np.argsort((0, *self.dims))
        return np.ascontiguousarray(np.transpose(dy, inverse))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """Repeats each sample ``n`` times: ``(N, features)`` -> ``(N, n, features)``.

    Parameters
    ----------
    n : int
        Positive repetition factor.
    """

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _is_int(n):
            raise TypeError(f"Invalid value for argument `n`: expected a positive int, "
                            f"received n={n!r}.")
        if n < 1:
            raise ValueError(f"Invalid value for argument `n`: expected a positive int, "
                             f"received n={n!r}.")
        self.n = int(n)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_ndim(self, input_shape, 2)
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        return np.repeat(x[:, np.newaxis, :], self.n, axis=1), None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        # every copy of a sample adds its gradient
        return dy.sum(axis=1) if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}

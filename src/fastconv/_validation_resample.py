"""Argument checking and output shapes of the resampling ops, shared by every
backend: global pooling, upsampling, zero padding and cropping.

``fastconv.ops.resample`` and ``fastconv.reference_resample`` both call these
functions, so the two backends accept exactly the same arguments and raise
exactly the same errors. Each ``check_*`` function validates once and
returns clean values: C-contiguous arrays of one float dtype, the input
shape as a tuple and the hyper-parameters normalised to one tuple per
spatial axis.

Shapes: activations are channels last, ``(N, *spatial, C)`` with one to
three spatial axes (the rank): ``(N, W, C)``, ``(N, H, W, C)`` or
``(N, D, H, W, C)``. N may be 0; every spatial size and C are >= 1.
"""

from __future__ import annotations

import math

import numpy as np

from fastconv._validation import (
    ARGMAX_DTYPE,
    MAX_ELEMENTS,
    MAX_HYPER_PARAMETER,
    MAX_PADDED_SIZE,
    _check_argmax,
    _check_argmax_values,
    _is_int,
    _memoized,
    check_array,
)

Pairs = tuple[tuple[int, int], ...]

# What fastconv's upsampling computes, and what Keras' UpSampling2D also
# accepts (the methods of keras.ops.image.resize), to say so in the error.
INTERPOLATIONS = ("nearest", "bilinear")
KERAS_ONLY_INTERPOLATIONS = ("bicubic", "lanczos3", "lanczos5", "area")


# ----------------------------------------------------------------------------
# arrays and shapes


def _check_sizes(shape: tuple[int, ...], name: str, kind: str, received: str) -> None:
    """Spatial sizes and channels >= 1, spatial sizes <= 2**31 - 1; ``kind``
    is "shape" (an array's) or "value" (a shape argument's)."""
    if min(shape[1:]) < 1:
        raise ValueError(
            f"Invalid {kind} for argument `{name}`: spatial sizes and channels must be "
            f">= 1, received {received}."
        )
    if max(shape[1:-1]) > MAX_PADDED_SIZE:
        raise ValueError(
            f"Invalid {kind} for argument `{name}`: spatial sizes must be at most "
            f"2**31 - 1, received {received}."
        )


def check_activations(value: object, name: str) -> np.ndarray:
    """A C-contiguous float32/float64 array ``(N, *spatial, C)`` of rank 1 to 3."""
    x = check_array(value, name, None)
    if not 3 <= x.ndim <= 5:
        raise ValueError(
            f"Invalid shape for argument `{name}`: expected (N, *spatial, C) with 1 to 3 "
            f"spatial axes (3 to 5 dimensions), received shape {x.shape}."
        )
    _check_sizes(x.shape, name, "shape", f"shape {x.shape}")
    return x


def check_shape(value: object, name: str, ndim: int | None = None) -> tuple[int, ...]:
    """The ints ``(N, *spatial, C)`` of a gradient to allocate: ``ndim`` of
    them (3 to 5 when None), N >= 0 and the others >= 1."""
    lengths = (3, 4, 5) if ndim is None else (ndim,)
    if (
        not isinstance(value, (tuple, list))
        or len(value) not in lengths
        or not all(_is_int(v) for v in value)
    ):
        count = "3 to 5" if ndim is None else str(ndim)
        raise TypeError(
            f"Invalid value for argument `{name}`: expected {count} ints (N, *spatial, C), "
            f"received {name}={value!r}."
        )
    shape = tuple(int(v) for v in value)
    if shape[0] < 0:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected N >= 0, received {name}={value!r}."
        )
    _check_sizes(shape, name, "value", f"{name}={value!r}")
    _check_output(shape, name, f"{name}={value!r}")
    return shape


def _check_output(shape: tuple[int, ...], name: str, received: str) -> None:
    """An array the op allocates holds at most MAX_ELEMENTS numbers."""
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(
            f"Invalid value for argument `{name}`: the result of shape {shape} would hold "
            f"more than 2**37 elements (1 TiB of float64), received {received}."
        )


def _check_spatial_output(shape: tuple[int, ...], name: str, what: str, received: str) -> None:
    if max(shape[1:-1]) > MAX_PADDED_SIZE:
        raise ValueError(
            f"Invalid value for argument `{name}`: the {what} spatial sizes {shape[1:-1]} "
            f"must be at most 2**31 - 1, received {received}."
        )
    _check_output(shape, name, received)


# ----------------------------------------------------------------------------
# hyper-parameters


@_memoized
def size_tuple(size: object, rank: int) -> tuple[int, ...]:
    """Upsampling factors: an int or ``rank`` ints, each >= 1."""
    if _is_int(size):
        sizes = (int(size),) * rank
    elif isinstance(size, (tuple, list)) and len(size) == rank and all(_is_int(s) for s in size):
        sizes = tuple(int(s) for s in size)
    else:
        raise TypeError(
            f"Invalid value for argument `size`: expected an int or a tuple of {rank} ints, "
            f"received size={size!r}."
        )
    if min(sizes) < 1 or max(sizes) > MAX_HYPER_PARAMETER:
        raise ValueError(
            f"Invalid value for argument `size`: expected positive ints up to 2**31 - 1, "
            f"received size={size!r}."
        )
    return sizes


def _pair(value: object) -> tuple[int, int] | None:
    """(a, a) for an int a, (a, b) for a pair of ints, None otherwise."""
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        return int(value[0]), int(value[1])
    return None


@_memoized
def spatial_pairs(value: object, rank: int, name: str) -> Pairs:
    """``(before, after)`` per spatial axis from the forms Keras' ZeroPadding
    and Cropping layers of this rank accept: an int for every side; one
    entry per axis, each an int (both sides) or a pair; and, for rank 1, the
    pair ``(before, after)`` itself."""
    pairs: list | None = None
    if _is_int(value):
        pairs = [(int(value), int(value))] * rank
    elif isinstance(value, (tuple, list)):
        if rank == 1 and len(value) == 2 and all(_is_int(v) for v in value):
            pairs = [(int(value[0]), int(value[1]))]
        elif len(value) == rank:
            pairs = [_pair(v) for v in value]
    if pairs is None or None in pairs:
        forms = ("an int, (before, after) or ((before, after),)" if rank == 1 else
                 f"an int, a tuple of {rank} ints or a tuple of {rank} (before, after) pairs")
        raise TypeError(
            f"Invalid value for argument `{name}`: expected {forms}, received {name}={value!r}."
        )
    flat = [v for pair in pairs for v in pair]
    if min(flat) < 0 or max(flat) > MAX_HYPER_PARAMETER:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected non-negative ints up to "
            f"2**31 - 1, received {name}={value!r}."
        )
    return tuple(pairs)


def check_interpolation(interpolation: object, rank: int) -> str:
    """"nearest" (any rank) or "bilinear" (rank 2), in any letter case."""
    if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
        keras_only = isinstance(interpolation, str) and (
            interpolation.lower() in KERAS_ONLY_INTERPOLATIONS)
        note = (" (Keras' UpSampling2D also offers 'bicubic', 'lanczos3', 'lanczos5' and "
                "'area', which fastconv does not implement)" if keras_only else "")
        raise ValueError(
            "Invalid value for argument `interpolation`: expected 'nearest' or 'bilinear'"
            f"{note}, received interpolation={interpolation!r}."
        )
    mode = interpolation.lower()
    if mode == "bilinear" and rank != 2:
        raise ValueError(
            "Invalid value for argument `interpolation`: 'bilinear' resizes images "
            f"(N, H, W, C); an input with {rank} spatial axes takes 'nearest', received "
            f"interpolation={interpolation!r}."
        )
    return mode


# ----------------------------------------------------------------------------
# global pooling


def check_global_avg_pool(x: object) -> np.ndarray:
    return check_activations(x, "x")


def check_global_max_pool(x: object) -> np.ndarray:
    x = check_activations(x, "x")
    if math.prod(x.shape[1:-1]) > np.iinfo(ARGMAX_DTYPE).max:
        raise ValueError(
            "Invalid shape for argument `x`: global max pooling stores int32 argmax "
            f"indices, so the spatial positions per image must be < 2**31, received shape "
            f"{x.shape}."
        )
    return x


def _check_pooled_dy(dy: object, x_shape: object) -> tuple[np.ndarray, tuple[int, ...]]:
    """dy (N, C) and the pooled input's shape (N, *spatial, C)."""
    dy = check_array(dy, "dy", 2)
    shape = check_shape(x_shape, "x_shape")
    if dy.shape != (shape[0], shape[-1]):
        raise ValueError(
            f"Invalid value for argument `x_shape`: batch and channels must match dy's "
            f"shape {dy.shape}, received x_shape={tuple(x_shape)}."
        )
    return dy, shape


def check_global_avg_pool_backward(
    dy: object, x_shape: object
) -> tuple[np.ndarray, tuple[int, ...]]:
    return _check_pooled_dy(dy, x_shape)


def check_global_max_pool_backward(
    dy: object, argmax: object, x_shape: object
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    dy, shape = _check_pooled_dy(dy, x_shape)
    argmax = _check_argmax(argmax, dy, "global_max_pool")
    _check_argmax_values(argmax, math.prod(shape[1:-1]),
                         f"(the spatial positions of x_shape={shape})")
    return dy, argmax, shape


# ----------------------------------------------------------------------------
# upsampling


def upsampled_shape(shape: tuple[int, ...], size: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], *(d * s for d, s in zip(shape[1:-1], size)), shape[-1])


def check_upsample(
    x: object, size: object, interpolation: object
) -> tuple[np.ndarray, tuple[int, ...], str]:
    """Checked x, the factors (one per spatial axis) and the interpolation."""
    x = check_activations(x, "x")
    sizes = size_tuple(size, x.ndim - 2)
    mode = check_interpolation(interpolation, x.ndim - 2)
    _check_spatial_output(upsampled_shape(x.shape, sizes), "size", "upsampled",
                          f"size={size!r} for x of shape {x.shape}")
    return x, sizes, mode


def check_upsample_backward(
    dy: object, x_shape: object, size: object, interpolation: object
) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...], str]:
    """Checked dy, x_shape, the factors and the interpolation; dy must have
    the shape of the upsampled x_shape."""
    dy = check_activations(dy, "dy")
    shape = check_shape(x_shape, "x_shape", dy.ndim)
    sizes = size_tuple(size, dy.ndim - 2)
    mode = check_interpolation(interpolation, dy.ndim - 2)
    expected = upsampled_shape(shape, sizes)
    if dy.shape != expected:
        raise ValueError(
            f"Invalid shape for argument `dy`: upsampling x_shape={shape} by size={sizes} "
            f"gives {expected}, received shape {dy.shape}."
        )
    return dy, shape, sizes, mode


# ----------------------------------------------------------------------------
# zero padding and cropping


def padded_shape(shape: tuple[int, ...], pads: Pairs) -> tuple[int, ...]:
    return (shape[0], *(d + a + b for d, (a, b) in zip(shape[1:-1], pads)), shape[-1])


def cropped_shape(shape: tuple[int, ...], crops: Pairs) -> tuple[int, ...]:
    return (shape[0], *(d - a - b for d, (a, b) in zip(shape[1:-1], crops)), shape[-1])


def _check_leaves_something(shape: tuple[int, ...], pairs: Pairs, name: str, value: object,
                            what: str) -> None:
    """Every spatial axis of ``shape`` keeps an element once ``pairs`` is cut off."""
    for axis, (d, (a, b)) in enumerate(zip(shape[1:-1], pairs)):
        if a + b >= d:
            raise ValueError(
                f"Invalid value for argument `{name}`: {a} + {b} removes every element of "
                f"spatial axis {axis} (size {d}) of {what} of shape {shape}; each axis must "
                f"keep at least one, received {name}={value!r}."
            )


def check_zero_pad(x: object, padding: object) -> tuple[np.ndarray, Pairs]:
    """Checked x and the padding as (before, after) per spatial axis."""
    x = check_activations(x, "x")
    pads = spatial_pairs(padding, x.ndim - 2, "padding")
    _check_spatial_output(padded_shape(x.shape, pads), "padding", "padded",
                          f"padding={padding!r} for x of shape {x.shape}")
    return x, pads


def check_zero_pad_backward(dy: object, padding: object) -> tuple[np.ndarray, Pairs]:
    """Checked dy and the padding; dy must be larger than the padding."""
    dy = check_activations(dy, "dy")
    pads = spatial_pairs(padding, dy.ndim - 2, "padding")
    _check_leaves_something(dy.shape, pads, "padding", padding, "dy")
    return dy, pads


def check_crop(x: object, cropping: object) -> tuple[np.ndarray, Pairs]:
    """Checked x and the cropping as (before, after) per spatial axis."""
    x = check_activations(x, "x")
    crops = spatial_pairs(cropping, x.ndim - 2, "cropping")
    _check_leaves_something(x.shape, crops, "cropping", cropping, "x")
    return x, crops


def check_crop_backward(
    dy: object, x_shape: object, cropping: object
) -> tuple[np.ndarray, tuple[int, ...], Pairs]:
    """Checked dy, x_shape and the cropping; dy must have the shape of the
    cropped x_shape."""
    dy = check_activations(dy, "dy")
    shape = check_shape(x_shape, "x_shape", dy.ndim)
    crops = spatial_pairs(cropping, dy.ndim - 2, "cropping")
    _check_leaves_something(shape, crops, "cropping", cropping, "x_shape")
    expected = cropped_shape(shape, crops)
    if dy.shape != expected:
        raise ValueError(
            f"Invalid shape for argument `dy`: cropping x_shape={shape} by {crops} gives "
            f"{expected}, received shape {dy.shape}."
        )
    return dy, shape, crops


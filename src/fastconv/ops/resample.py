"""The drop-in backend's resampling ops: global pooling, upsampling, zero
padding and cropping, forward and gradients, on plain NumPy arrays.

Every function here has the signature of its namesake in
``fastconv.reference`` (the NumPy definition of the op) and returns the same
values to rounding. Arguments are checked once, here
(``fastconv._validation_resample``); outputs are freshly allocated and inputs
never modified. Layout: channels last, ``(N, *spatial, C)`` with one to three
spatial axes; float32 or float64, one dtype per call. Non-contiguous,
read-only and Fortran-ordered inputs are accepted (copied to C order when
needed).

Every op runs in compiled kernels (``fastconv._kernels``: global_pool,
resize, margins), OpenMP over ``fastconv.get_num_threads()`` threads, GIL
released, one parallel region per call, each output element computed by one
thread in an order set by the shapes alone, so the results do not depend on
the thread count. A call never uses more threads than it has independent
work items (rows, or images cut into channel blocks) to share out, nor more
than one per 32k elements: these ops do little work per element. Nearest
upsampling, zero padding and cropping would be simple in NumPy (slices and a
broadcast copy), but NumPy's strided copies cost far more than a memcpy when
a row holds few channels; the kernels write each output element once, in
whole runs, at about the speed of ``np.copyto``.

Workspace beyond the outputs: bilinear upsampling keeps the taps of each
axis (about 40 bytes per input and output index, cached per size, factor
and dtype) and one row per thread (W * C values forward, OW * C backward);
the other ops use none.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from fastconv import _validation_resample as v
from fastconv._kernels import global_pool as _global_pool
from fastconv._kernels import margins as _margins
from fastconv._kernels import resize as _resize
from fastconv._validation import ARGMAX_DTYPE
from fastconv.runtime import settings as _settings

__all__ = [
    "crop", "crop_backward", "global_avg_pool", "global_avg_pool_backward", "global_max_pool",
    "global_max_pool_backward", "upsample", "upsample_backward", "zero_pad", "zero_pad_backward",
]

# The narrowest channel block a work item of global pooling takes: a whole
# number of vectors at every SIMD width (16 floats for AVX-512).
_MIN_CHANNEL_BLOCK = 16


def _channel_block(n: int, c: int) -> int:
    """Channels per work item of global pooling: whole images when there are
    enough to go round the threads, else each image cut into blocks so that
    every thread gets one. The results do not depend on it."""
    threads = _settings.get_num_threads()
    if n >= threads:
        return c
    per_image = -(-threads // n)
    block = -(-c // per_image)
    return min(c, -(-block // _MIN_CHANNEL_BLOCK) * _MIN_CHANNEL_BLOCK)


def _items(n: int, c: int, block: int) -> int:
    return n * -(-c // block)


def _rank3(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(N, *spatial, C) as the kernels see it, (N, D, H, W, C): the missing
    leading spatial sizes are 1."""
    return (shape[0], *(1,) * (5 - len(shape)), *shape[1:])


def _rank3_axes(values: tuple[int, ...], fill: int) -> tuple[int, ...]:
    """One entry per spatial axis as three, the missing leading ones ``fill``."""
    return (fill,) * (3 - len(values)) + tuple(values)


def _threads(items: int, elements: int) -> int:
    """Threads for a call with ``items`` independent work items and
    ``elements`` elements in its largest array: no more than the items, and
    one per 32k elements at most (these kernels do little work per element:
    below that, waking a thread costs more than it saves)."""
    return _settings.threads_for(min(items, elements >> 15))


# ----------------------------------------------------------------------------
# global pooling


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """Global average pooling: the mean of each channel over all spatial positions.

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C)
        One to three spatial axes.

    Returns
    -------
    y : ndarray, shape (N, C)
    """
    x = v.check_global_avg_pool(x)
    n, c = x.shape[0], x.shape[-1]
    y = np.empty((n, c), dtype=x.dtype)
    if n:
        block = _channel_block(n, c)
        _global_pool.global_avg_pool_forward(
            y, x.reshape(n, -1, c), block, _settings.isa_code(),
            _threads(_items(n, c, block), x.size))
    return y


def global_avg_pool_backward(dy: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """Gradient of ``global_avg_pool``: dy / P at every spatial position.

    Parameters
    ----------
    dy : ndarray, shape (N, C)
    x_shape : (N, *spatial, C)
        Shape of the pooled input; P is the product of its spatial sizes.

    Returns
    -------
    dx : ndarray, shape x_shape
    """
    dy, shape = v.check_global_avg_pool_backward(dy, x_shape)
    dx = np.empty(shape, dtype=dy.dtype)
    if shape[0]:
        n, c = shape[0], shape[-1]
        flat = dx.reshape(n, -1, c)
        _global_pool.global_avg_pool_backward(flat, dy, _settings.isa_code(),
                                              _threads(n * flat.shape[1], dx.size))
    return dx


def global_max_pool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global max pooling, with the position of each maximum for the backward pass.

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C)
        One to three spatial axes.

    Returns
    -------
    y : ndarray, shape (N, C)
    argmax : ndarray of int32, shape (N, C)
        Flat spatial index (row-major over the spatial axes) of each
        channel's maximum; on ties the first; a channel holding NaN gives NaN
        and the index of its first NaN.
    """
    x = v.check_global_max_pool(x)
    n, c = x.shape[0], x.shape[-1]
    y = np.empty((n, c), dtype=x.dtype)
    argmax = np.empty((n, c), dtype=ARGMAX_DTYPE)
    if n:
        block = _channel_block(n, c)
        _global_pool.global_max_pool_forward(
            y, argmax, x.reshape(n, -1, c), block, _settings.isa_code(),
            _threads(_items(n, c, block), x.size))
    return y, argmax


def global_max_pool_backward(
    dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...]
) -> np.ndarray:
    """Gradient of ``global_max_pool``: dy routed to each channel's maximum.

    Parameters
    ----------
    dy : ndarray, shape (N, C)
    argmax : ndarray of int32, shape (N, C)
        As returned by ``global_max_pool``.
    x_shape : (N, *spatial, C)
        Shape of the pooled input.

    Returns
    -------
    dx : ndarray, shape x_shape
        dy at each argmax position, 0 elsewhere.
    """
    dy, argmax, shape = v.check_global_max_pool_backward(dy, argmax, x_shape)
    dx = np.empty(shape, dtype=dy.dtype)
    if shape[0]:
        n, c = shape[0], shape[-1]
        flat = dx.reshape(n, -1, c)
        _global_pool.global_max_pool_backward(flat, dy, argmax, _settings.isa_code(),
                                              _threads(n * flat.shape[1], dx.size))
    return dx


# ----------------------------------------------------------------------------
# upsampling


class _LinearTaps(NamedTuple):
    """Linear interpolation along one axis (see src_c/resize.h).

    Output index o reads inputs ``i0[o]`` and ``i1[o]`` with weights
    ``w0[o]`` and ``w1[o]``; input index i is read by outputs
    ``[lo[i], hi[i])``."""

    i0: np.ndarray
    i1: np.ndarray
    w0: np.ndarray
    w1: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@functools.lru_cache(maxsize=64)
def _linear_taps(size: int, scale: int, dtype: str) -> _LinearTaps:
    """The half-pixel taps of an axis of ``size`` inputs upsampled ``scale``
    times, the weights rounded to ``dtype``.

    Output o = j * scale + m (phase m) sits at source coordinate
    (o + 0.5) / scale - 0.5 = j + (m + 0.5) / scale - 0.5, clamped to
    [0, size - 1]: between inputs j - 1 and j for the first phases, j and
    j + 1 for the others, with a weight that depends on the phase alone
    (computed from it, so it does not lose bits as o grows).
    """
    j, m = np.divmod(np.arange(size * scale, dtype=np.int64), scale)
    offset = (m + 0.5) / scale - 0.5  # in (-0.5, 0.5)
    before = offset < 0
    i0 = j - before
    f = np.where(before, offset + 1.0, offset)
    clamped = (i0 < 0) | (i0 >= size - 1)  # before the first input, or past the last
    i0 = np.clip(i0, 0, size - 1)
    f[clamped] = 0.0
    i1 = np.minimum(i0 + 1, size - 1)
    inputs = np.arange(size)
    taps = _LinearTaps(i0, i1, (1.0 - f).astype(dtype), f.astype(dtype),
                       np.searchsorted(i1, inputs, "left").astype(np.int64),
                       np.searchsorted(i0, inputs, "right").astype(np.int64))
    for a in taps:
        a.flags.writeable = False  # shared by every call through the cache
    return taps


def upsample(
    x: np.ndarray, size: int | tuple[int, ...], interpolation: str = "nearest"
) -> np.ndarray:
    """Upsampling by integer factors along every spatial axis (Keras' UpSampling).

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C)
    size : int or tuple of ints, one per spatial axis
        Positive factors.
    interpolation : "nearest" or "bilinear"
        "nearest" repeats each element ``size`` times along each axis (any
        rank). "bilinear" (images, (N, H, W, C)) interpolates as TensorFlow's
        half-pixel resize that Keras 3 uses: output o along an axis reads the
        source coordinate (o + 0.5) / size - 0.5, clamped to [0, in - 1],
        through its two neighbours i0 = floor, i1 = min(i0 + 1, in - 1) with
        weights 1 - f and f (the weights are float64, rounded to x's dtype).

    Returns
    -------
    y : ndarray, shape (N, *(spatial * size), C)
    """
    x, sizes, mode = v.check_upsample(x, size, interpolation)
    out = v.upsampled_shape(x.shape, sizes)
    y = np.empty(out, dtype=x.dtype)
    if not x.shape[0]:
        return y
    if mode == "nearest":
        _resize.nearest_forward(y.reshape(-1), x.reshape(-1), _rank3(x.shape),
                                _rank3_axes(sizes, 1), _settings.isa_code(),
                                _threads(math.prod(out[:-2]), y.size))
        return y
    rows = _linear_taps(x.shape[1], sizes[0], x.dtype.name)
    cols = _linear_taps(x.shape[2], sizes[1], x.dtype.name)
    threads = _threads(out[0] * out[1], y.size)
    scratch = np.empty((threads, x.shape[2] * x.shape[3]), dtype=x.dtype)
    _resize.bilinear_forward(y, scratch, x, rows, cols, _settings.isa_code(), threads)
    return y


def upsample_backward(
    dy: np.ndarray, x_shape: tuple[int, ...], size: int | tuple[int, ...],
    interpolation: str = "nearest",
) -> np.ndarray:
    """Gradient of ``upsample``.

    Parameters
    ----------
    dy : ndarray, shape (N, *(spatial * size), C)
    x_shape : (N, *spatial, C)
        Shape of the upsampled input.
    size, interpolation
        As given to ``upsample``.

    Returns
    -------
    dx : ndarray, shape x_shape
        "nearest": the sum of each element's block of dy. "bilinear": each
        input pixel gathers the dy of the outputs that read it, weighted as
        the forward pass weighted it.
    """
    dy, shape, sizes, mode = v.check_upsample_backward(dy, x_shape, size, interpolation)
    dx = np.empty(shape, dtype=dy.dtype)
    if not shape[0]:
        return dx
    if mode == "nearest":
        _resize.nearest_backward(dx.reshape(-1), dy.reshape(-1), _rank3(shape),
                                 _rank3_axes(sizes, 1), _settings.isa_code(),
                                 _threads(math.prod(shape[:-2]), dy.size))
        return dx
    rows = _linear_taps(shape[1], sizes[0], dy.dtype.name)
    cols = _linear_taps(shape[2], sizes[1], dy.dtype.name)
    threads = _threads(shape[0] * shape[1], dy.size)
    scratch = np.empty((threads, dy.shape[2] * dy.shape[3]), dtype=dy.dtype)
    _resize.bilinear_backward(dx, scratch, dy, rows, cols, _settings.isa_code(), threads)
    return dx


# ----------------------------------------------------------------------------
# zero padding and cropping


def _shift(src: np.ndarray, shape: tuple[int, ...], offsets: tuple[int, ...]) -> np.ndarray:
    """A new array of ``shape`` holding src moved by ``offsets`` along the
    spatial axes (negative: src cut), zeros where nothing lands."""
    dst = np.empty(shape, dtype=src.dtype)
    if shape[0]:
        _margins.shift(dst.reshape(-1).view(np.uint8), src.reshape(-1).view(np.uint8),
                       _rank3(shape), _rank3(src.shape), _rank3_axes(offsets, 0),
                       src.dtype.itemsize,
                       _threads(math.prod(shape[:-2]), dst.size))
    return dst


def zero_pad(x: np.ndarray, padding: int | tuple) -> np.ndarray:
    """Zero padding of the spatial axes (Keras' ZeroPadding).

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C)
    padding : int, tuple of ints or tuple of (before, after) pairs
        An int pads every side; otherwise one entry per spatial axis, an int
        (both sides) or a (before, after) pair; with one spatial axis also
        (before, after) itself, as Keras' ZeroPadding1D.

    Returns
    -------
    y : ndarray, shape (N, *(spatial + before + after), C)
    """
    x, pads = v.check_zero_pad(x, padding)
    return _shift(x, v.padded_shape(x.shape, pads), tuple(a for a, _ in pads))


def zero_pad_backward(dy: np.ndarray, padding: int | tuple) -> np.ndarray:
    """Gradient of ``zero_pad``: dy without its padding.

    Parameters
    ----------
    dy : ndarray, shape (N, *padded_spatial, C)
    padding
        As given to ``zero_pad``.

    Returns
    -------
    dx : ndarray, shape (N, *(padded_spatial - before - after), C)
    """
    dy, pads = v.check_zero_pad_backward(dy, padding)
    return _shift(dy, v.cropped_shape(dy.shape, pads), tuple(-a for a, _ in pads))


def crop(x: np.ndarray, cropping: int | tuple) -> np.ndarray:
    """Cropping of the spatial axes (Keras' Cropping).

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C)
    cropping : int, tuple of ints or tuple of (before, after) pairs
        The forms of ``zero_pad``'s padding; each axis must keep at least one
        element.

    Returns
    -------
    y : ndarray, shape (N, *(spatial - before - after), C)
    """
    x, crops = v.check_crop(x, cropping)
    return _shift(x, v.cropped_shape(x.shape, crops), tuple(-a for a, _ in crops))


def crop_backward(dy: np.ndarray, x_shape: tuple[int, ...], cropping: int | tuple) -> np.ndarray:
    """Gradient of ``crop``: dy in place, zeros where the cropping cut.

    Parameters
    ----------
    dy : ndarray, shape (N, *(spatial - before - after), C)
    x_shape : (N, *spatial, C)
        Shape of the cropped input.
    cropping
        As given to ``crop``.

    Returns
    -------
    dx : ndarray, shape x_shape
    """
    dy, shape, crops = v.check_crop_backward(dy, x_shape, cropping)
    return _shift(dy, shape, tuple(a for a, _ in crops))

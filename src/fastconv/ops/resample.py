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

How each op runs:

- global average and max pooling, their gradients, and bilinear upsampling
  and its gradient compute in compiled kernels (``fastconv._kernels.
  global_pool`` and ``resize``: OpenMP over ``fastconv.get_num_threads()``
  threads, GIL released, one parallel region per call, each output element
  computed by one thread in a fixed order, so the results do not depend on
  the thread count). A call never uses more threads than it has independent
  work items (rows, or images cut into channel blocks) to share out.
- zero padding, cropping and nearest upsampling only move memory, and NumPy
  does that at memory speed: each output is allocated once and every element
  written once (the border zeroed, the interior assigned as one slice; an
  upsampled output as one broadcast copy). The gradient of nearest upsampling
  sums each block of dy in one reduction.

Workspace beyond the outputs: bilinear upsampling keeps the taps of each
axis (about 32 bytes per input and output index, cached per size and
factor); the other ops use none.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from fastconv import _validation_resample as v
from fastconv._kernels import global_pool as _global_pool
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
            _settings.threads_for(_items(n, c, block)))
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
                                              _settings.threads_for(n * flat.shape[1]))
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
            _settings.threads_for(_items(n, c, block)))
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
        dy at each argmax position, 0 elsewhere (written once each, a gather).
    """
    dy, argmax, shape = v.check_global_max_pool_backward(dy, argmax, x_shape)
    dx = np.empty(shape, dtype=dy.dtype)
    if shape[0]:
        n, c = shape[0], shape[-1]
        flat = dx.reshape(n, -1, c)
        _global_pool.global_max_pool_backward(flat, dy, argmax, _settings.isa_code(),
                                              _settings.threads_for(n * flat.shape[1]))
    return dx


# ----------------------------------------------------------------------------
# upsampling


class _LinearTaps(NamedTuple):
    """Linear interpolation along one axis (see src_c/resize.h).

    Output index o reads inputs ``i0[o]`` and ``i1[o]`` with weights
    ``1 - f[o]`` and ``f[o]``; input index i is read by outputs
    ``[lo[i], hi[i])``."""

    i0: np.ndarray
    i1: np.ndarray
    f: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@functools.lru_cache(maxsize=64)
def _linear_taps(size: int, scale: int) -> _LinearTaps:
    """The half-pixel taps of an axis of ``size`` inputs upsampled ``scale`` times.

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
    taps = _LinearTaps(i0, i1, f, np.searchsorted(i1, inputs, "left"),
                      np.searchsorted(i0, inputs, "right").astype(np.int64))
    for a in taps:
        a.flags.writeable = False  # shared by every call through the cache
    return taps


def _block_view(shape: tuple[int, ...], sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The upsampled shape split into (size, factor) per spatial axis:
    (N, D, sd, H, sh, W, sw, C) for rank 3."""
    return (shape[0], *(v for d, s in zip(shape[1:-1], sizes) for v in (d, s)), shape[-1])


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
    if mode == "nearest":
        # One broadcast copy: each input element fills its block of y.
        blocks = y.reshape(_block_view(x.shape, sizes))
        blocks[...] = x.reshape(_block_view(x.shape, (1,) * len(sizes)))
    elif x.shape[0]:
        rows, cols = _linear_taps(x.shape[1], sizes[0]), _linear_taps(x.shape[2], sizes[1])
        _resize.bilinear_forward(y, x, rows, cols, _settings.isa_code(),
                                 _settings.threads_for(out[0] * out[1]))
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
    if mode == "nearest":
        axes = tuple(range(2, 2 * len(sizes) + 1, 2))
        return dy.reshape(_block_view(shape, sizes)).sum(axis=axes)
    dx = np.empty(shape, dtype=dy.dtype)
    if shape[0]:
        rows, cols = _linear_taps(shape[1], sizes[0]), _linear_taps(shape[2], sizes[1])
        _resize.bilinear_backward(dx, dy, rows, cols, _settings.isa_code(),
                                  _settings.threads_for(shape[0] * shape[1]))
    return dx


# ----------------------------------------------------------------------------
# zero padding and cropping


def _interior(shape: tuple[int, ...], pairs: v.Pairs) -> tuple[slice, ...]:
    """The slices of the unpadded part: ``shape`` is the inner array's."""
    return (slice(None), *(slice(a, a + d) for d, (a, _) in zip(shape[1:-1], pairs)),
            slice(None))


def _pad(x: np.ndarray, pads: v.Pairs) -> np.ndarray:
    """x with zeros around each spatial axis, every element written once."""
    y = np.empty(v.padded_shape(x.shape, pads), dtype=x.dtype)
    inside = _interior(x.shape, pads)
    for axis, (a, b) in enumerate(pads, start=1):
        # The border slabs of this axis, within the interior of the axes
        # before it (their own borders are zeroed already).
        head = inside[:axis]
        if a:
            y[(*head, slice(0, a))] = 0
        if b:
            y[(*head, slice(y.shape[axis] - b, None))] = 0
    y[inside] = x
    return y


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
    return _pad(x, pads)


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
    inner = v.cropped_shape(dy.shape, pads)
    return dy[_interior(inner, pads)].copy()


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
    return x[_interior(v.cropped_shape(x.shape, crops), crops)].copy()


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
    dy, _, crops = v.check_crop_backward(dy, x_shape, cropping)
    return _pad(dy, crops)

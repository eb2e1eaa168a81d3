"""Plain-NumPy definitions of the resampling ops: global pooling, upsampling,
zero padding and cropping, forward and gradients.

Each function states what its namesake in :mod:`fastconv.ops` computes, with
the same signature and the same argument checking (both call
:mod:`fastconv._validation_resample`); :mod:`fastconv.reference` re-exports
them. The code shares nothing else with the compiled backend, so comparing
the two is a test: means and maxima are NumPy's reductions, padding is
``np.pad``, nearest upsampling ``np.repeat``, the gradients are the adjoints
written out (slices of dy, scatters with ``np.add.at``, a loop over the
offsets of each block), and the linear taps are computed from the source
coordinate directly.

Shapes: channels last, ``(N, *spatial, C)`` with one to three spatial axes.
Every op computes in the dtype of its inputs.
"""

from __future__ import annotations

import math

import numpy as np

from fastconv._validation import ARGMAX_DTYPE
from fastconv._validation_resample import (
    check_crop,
    check_crop_backward,
    check_global_avg_pool,
    check_global_avg_pool_backward,
    check_global_max_pool,
    check_global_max_pool_backward,
    check_upsample,
    check_upsample_backward,
    check_zero_pad,
    check_zero_pad_backward,
)

__all__ = [
    "crop",
    "crop_backward",
    "global_avg_pool",
    "global_avg_pool_backward",
    "global_max_pool",
    "global_max_pool_backward",
    "upsample",
    "upsample_backward",
    "zero_pad",
    "zero_pad_backward",
]


def _spatial_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(1, ndim - 1))


# ----------------------------------------------------------------------------
# global pooling


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """Global average pooling: ``y[n, c] = mean of x[n, ..., c]`` over the spatial axes.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C)
        float32 or float64, one to three spatial axes.

    Returns
    -------
    y : ndarray of shape (N, C)
        Dtype of ``x``.
    """
    x = check_global_avg_pool(x)
    return x.mean(axis=_spatial_axes(x.ndim))


def global_avg_pool_backward(dy: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """Gradient of :func:`global_avg_pool`: each position receives ``dy / P``.

    Parameters
    ----------
    dy : ndarray of shape (N, C)
        Gradient of the loss with respect to the forward output.
    x_shape : (N, *spatial, C)
        Shape of the forward input; P is the product of its spatial sizes.

    Returns
    -------
    dx : ndarray of shape x_shape
        Dtype of ``dy``.
    """
    dy, shape = check_global_avg_pool_backward(dy, x_shape)
    share = dy / math.prod(shape[1:-1])
    return np.broadcast_to(share.reshape(shape[0], *[1] * (len(shape) - 2), shape[-1]),
                           shape).copy()


def global_max_pool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global max pooling, returning the position of each maximum.

    Ties go to the first maximum in row-major order over the spatial axes; a
    channel holding NaN gives NaN, located at its first NaN (numpy.argmax).

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C)
        float32 or float64, one to three spatial axes.

    Returns
    -------
    y : ndarray of shape (N, C)
        Dtype of ``x``.
    argmax : ndarray of shape (N, C), int32
        Flat spatial index of each maximum (``h * W + w`` for an image).
    """
    x = check_global_max_pool(x)
    flat = x.reshape(x.shape[0], math.prod(x.shape[1:-1]), x.shape[-1])
    argmax = np.argmax(flat, axis=1)
    y = np.take_along_axis(flat, argmax[:, None, :], axis=1)[:, 0]
    return y, argmax.astype(ARGMAX_DTYPE)


def global_max_pool_backward(
    dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...]
) -> np.ndarray:
    """Gradient of :func:`global_max_pool`: each ``dy`` entry goes to its maximum.

    Parameters
    ----------
    dy : ndarray of shape (N, C)
        Gradient of the loss with respect to the forward output.
    argmax : ndarray of shape (N, C), int32
        As returned by :func:`global_max_pool`.
    x_shape : (N, *spatial, C)
        Shape of the forward input.

    Returns
    -------
    dx : ndarray of shape x_shape
        Dtype of ``dy``; zero except at the maxima.
    """
    dy, argmax, shape = check_global_max_pool_backward(dy, argmax, x_shape)
    dx = np.zeros((shape[0], math.prod(shape[1:-1]), shape[-1]), dtype=dy.dtype)
    np.put_along_axis(dx, argmax[:, None, :].astype(np.intp), dy[:, None, :], axis=1)
    return dx.reshape(shape)


# ----------------------------------------------------------------------------
# upsampling


def _linear_axis(size: int, scale: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """(i0, i1, w0, w1) of an axis of ``size`` inputs upsampled ``scale`` times.

    Output ``o`` reads the source coordinate ``(o + 0.5) / scale - 0.5``
    (half-pixel centres), clamped to ``[0, size - 1]``, from its neighbours
    ``i0 = floor`` and ``i1 = min(i0 + 1, size - 1)`` with weights
    ``1 - f`` and ``f``, ``f`` the coordinate's distance past ``i0``.
    """
    src = np.clip((np.arange(size * scale) + 0.5) / scale - 0.5, 0, size - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, size - 1)
    f = src - i0
    return i0, i1, (1 - f).astype(dtype), f.astype(dtype)


def _bilinear(x: np.ndarray, sizes: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of x (N, H, W, C): rows first, then columns."""
    h0, h1, u0, u1 = _linear_axis(x.shape[1], sizes[0], x.dtype)
    w0, w1, v0, v1 = _linear_axis(x.shape[2], sizes[1], x.dtype)
    rows = x[:, h0] * u0[:, None, None] + x[:, h1] * u1[:, None, None]
    return rows[:, :, w0] * v0[:, None] + rows[:, :, w1] * v1[:, None]


def _linear_adjoint(d: np.ndarray, axis: int, size: int, scale: int) -> np.ndarray:
    """The transpose of linear upsampling along ``axis`` of d (outputs along
    it) to ``size`` inputs: every output's value, times each tap's weight,
    added to the tap; taps that coincide (at the last input) add their
    weights first."""
    i0, i1, u0, u1 = _linear_axis(size, scale, d.dtype)
    same = i0 == i1
    d = np.moveaxis(d, axis, 0)
    out = np.zeros((size, *d.shape[1:]), dtype=d.dtype)
    expand = (slice(None), *[None] * (d.ndim - 1))
    np.add.at(out, i0, d * np.where(same, u0 + u1, u0)[expand])
    np.add.at(out, i1[~same], d[~same] * u1[~same][expand])
    return np.moveaxis(out, 0, axis)


def upsample(
    x: np.ndarray, size: int | tuple[int, ...], interpolation: str = "nearest"
) -> np.ndarray:
    """Upsampling by integer factors along every spatial axis.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C)
        float32 or float64, one to three spatial axes.
    size : int or tuple of ints
        Factor per spatial axis (an int for all).
    interpolation : {"nearest", "bilinear"}
        "nearest" repeats every element along each axis. "bilinear" (two
        spatial axes) interpolates rows, then columns: output ``o`` of an
        axis of ``n`` inputs reads the source coordinate
        ``(o + 0.5) / size - 0.5`` clamped to ``[0, n - 1]``, from its
        neighbours ``i0 = floor`` and ``min(i0 + 1, n - 1)`` with weights
        ``1 - f`` and ``f`` (TensorFlow's half-pixel bilinear resize, which
        Keras 3's UpSampling2D uses).

    Returns
    -------
    y : ndarray of shape (N, *(spatial * size), C)
        Dtype of ``x``.
    """
    x, sizes, mode = check_upsample(x, size, interpolation)
    if mode == "bilinear":
        return _bilinear(x, sizes)
    for axis, s in enumerate(sizes, start=1):
        x = np.repeat(x, s, axis=axis)
    return x


def upsample_backward(
    dy: np.ndarray, x_shape: tuple[int, ...], size: int | tuple[int, ...],
    interpolation: str = "nearest",
) -> np.ndarray:
    """Gradient of :func:`upsample` with respect to ``x``.

    Parameters
    ----------
    dy : ndarray of shape (N, *(spatial * size), C)
        Gradient of the loss with respect to the forward output.
    x_shape : (N, *spatial, C)
        Shape of the forward input.
    size, interpolation
        As given to :func:`upsample`.

    Returns
    -------
    dx : ndarray of shape x_shape
        Dtype of ``dy``.
    """
    dy, shape, sizes, mode = check_upsample_backward(dy, x_shape, size, interpolation)
    if mode == "bilinear":
        d = _linear_adjoint(dy, 2, shape[2], sizes[1])
        return _linear_adjoint(d, 1, shape[1], sizes[0])
    dx = np.zeros(shape, dtype=dy.dtype)
    for offsets in np.ndindex(*sizes):
        # The outputs at these offsets in their blocks, one per input element.
        dx += dy[(slice(None), *(slice(o, None, s) for o, s in zip(offsets, sizes)))]
    return dx


# ----------------------------------------------------------------------------
# zero padding and cropping


def _cut(a: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """``a`` without ``before`` and ``after`` elements on each spatial axis."""
    return a[(slice(None), *(slice(b, n - e) for n, (b, e) in zip(a.shape[1:-1], pairs)))]


def zero_pad(x: np.ndarray, padding: int | tuple) -> np.ndarray:
    """Zeros added before and after each spatial axis.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C)
        float32 or float64, one to three spatial axes.
    padding : int, tuple of ints or tuple of (before, after) pairs
        An int pads every side; otherwise one entry per spatial axis, an int
        (both sides) or a pair; for one spatial axis also (before, after).

    Returns
    -------
    y : ndarray of shape (N, *(spatial + before + after), C)
        Dtype of ``x``.
    """
    x, pads = check_zero_pad(x, padding)
    return np.pad(x, ((0, 0), *pads, (0, 0)))


def zero_pad_backward(dy: np.ndarray, padding: int | tuple) -> np.ndarray:
    """Gradient of :func:`zero_pad`: the part of ``dy`` over the input.

    Parameters
    ----------
    dy : ndarray of shape (N, *padded_spatial, C)
        Gradient of the loss with respect to the forward output.
    padding
        As given to :func:`zero_pad`.

    Returns
    -------
    dx : ndarray of shape (N, *(padded_spatial - before - after), C)
        Dtype of ``dy``.
    """
    dy, pads = check_zero_pad_backward(dy, padding)
    return _cut(dy, pads).copy()


def crop(x: np.ndarray, cropping: int | tuple) -> np.ndarray:
    """Elements removed before and after each spatial axis.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C)
        float32 or float64, one to three spatial axes.
    cropping : int, tuple of ints or tuple of (before, after) pairs
        The forms of :func:`zero_pad`'s ``padding``; every axis keeps at
        least one element.

    Returns
    -------
    y : ndarray of shape (N, *(spatial - before - after), C)
        Dtype of ``x``.
    """
    x, crops = check_crop(x, cropping)
    return _cut(x, crops).copy()


def crop_backward(dy: np.ndarray, x_shape: tuple[int, ...], cropping: int | tuple) -> np.ndarray:
    """Gradient of :func:`crop`: ``dy`` where the input was kept, 0 where cut.

    Parameters
    ----------
    dy : ndarray of shape (N, *(spatial - before - after), C)
        Gradient of the loss with respect to the forward output.
    x_shape : (N, *spatial, C)
        Shape of the forward input.
    cropping
        As given to :func:`crop`.

    Returns
    -------
    dx : ndarray of shape x_shape
        Dtype of ``dy``.
    """
    dy, _, crops = check_crop_backward(dy, x_shape, cropping)
    return np.pad(dy, ((0, 0), *crops, (0, 0)))

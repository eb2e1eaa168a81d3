"""Max and average pooling of rank 1, 2 and 3 on NumPy arrays.

Every function has the signature of its namesake in ``fastconv.reference``
and returns the same values to rounding (max pooling: exactly). Arguments
are checked once (:mod:`fastconv._validation_nd`); the compiled 2-D pooling
kernels (``src_c/pool2d_impl.h``) then run on views of the arrays:

- rank 1: a pooling of height 1 along the width;
- rank 2: the 2-D kernels as they are;
- rank 3: pooling is separable, so the window over (depth, height, width)
  is pooled in two passes: each depth plane over (height, width), then
  the planes' results over depth (a 2-D pooling of windows (KD, 1) on the
  (N, D, OH * OW, C) view). For max pooling the first pass keeps, per
  plane, the first maximum in (row, column) order and the second the
  first plane holding the overall maximum, which together is the first
  maximum in (depth, row, column) window order, as the reference rule
  says; NaN likewise. The mean over a window is the mean over depth of
  the planes' means (equal counts in each plane of a window), which
  rounds differently from one sum divided once, within float rounding.

argmax holds the flat index into the input's spatial volume,
``(id * H + ih) * W + iw``. The gradients scatter through it (max) or
gather (average) as the 2-D ops do; bitwise identical for any thread count.
"""

from __future__ import annotations

import numpy as np

from fastconv import _validation as v
from fastconv import _validation_nd as vnd
from fastconv._kernels import pool as _pool
from fastconv.runtime import settings as _settings

__all__ = ["avg_pool_nd", "avg_pool_nd_backward", "max_pool_nd", "max_pool_nd_backward"]


def _plane_geometry(g: v.PoolGeometry) -> v.PoolGeometry:
    """The (height, width) pooling of each of the N * D depth planes."""
    return v.PoolGeometry(g.n * g.d, g.h, g.w, g.c, g.kh, g.kw, g.oh, g.ow, g.stride_h,
                          g.stride_w, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)


def _depth_geometry(g: v.PoolGeometry) -> v.PoolGeometry:
    """The depth pooling of the planes' results, viewed (N, D, OH * OW, C)."""
    p = g.oh * g.ow
    return v.PoolGeometry(g.n, g.d, p, g.c, g.kd, 1, g.od, p, g.stride_d, 1, g.pad_front,
                          g.pad_back, 0, 0)


def _view4(a: np.ndarray, g: v.PoolGeometry) -> np.ndarray:
    """x-shaped (rank 1 or 2) as the 2-D kernels' (N, H, W, C)."""
    return a.reshape(g.n, g.h, g.w, g.c)


def _threads(items: int) -> int:
    return _settings.threads_for(items)


def max_pool_nd(
    x: np.ndarray,
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling of rank 1, 2 or 3, with the position of each maximum.

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C), 1 to 3 spatial axes
    pool_size : int or tuple of one int per spatial axis
    strides : int or tuple, optional
        Defaults to ``pool_size``.
    padding : "valid", "same" or explicit (each amount < pool size)
        Padded positions never win.

    Returns
    -------
    y : ndarray, shape (N, *output_spatial, C)
    argmax : ndarray of int32, the shape of y
        Flat index into the input's spatial volume of each window's first
        maximum in window order; a window holding NaN gives NaN and the
        index of its first NaN.
    """
    x, g = vnd.check_pool_nd(x, pool_size, strides, padding)
    y = np.empty(g.output_shape, dtype=x.dtype)
    argmax = np.empty(g.output_shape, dtype=v.ARGMAX_DTYPE)
    if not g.n:
        return y, argmax
    isa = _settings.isa_code()
    if g.rank < 3:
        out = (g.n, g.oh, g.ow, g.c)
        _pool.max_pool2d_forward(_view4(x, g), y.reshape(out), argmax.reshape(out), g, isa,
                                 _threads(g.n * g.oh))
        return y, argmax
    planes, depth = _plane_geometry(g), _depth_geometry(g)
    p = g.oh * g.ow
    y1 = np.empty((g.n * g.d, g.oh, g.ow, g.c), dtype=x.dtype)
    a1 = np.empty(y1.shape, dtype=v.ARGMAX_DTYPE)
    _pool.max_pool2d_forward(x.reshape(g.n * g.d, g.h, g.w, g.c), y1, a1, planes, isa,
                             _threads(g.n * g.d * g.oh))
    a2 = np.empty((g.n, g.od, p, g.c), dtype=v.ARGMAX_DTYPE)
    _pool.max_pool2d_forward(y1.reshape(g.n, g.d, p, g.c), y.reshape(g.n, g.od, p, g.c), a2,
                             depth, isa, _threads(g.n * g.od))
    # a2 = id * (OH * OW) + pixel: the winning plane; a1 the position in it.
    plane = a2 // p
    within = np.take_along_axis(a1.reshape(g.n, g.d, p, g.c), plane, axis=1)
    argmax.reshape(g.n, g.od, p, g.c)[...] = plane * (g.h * g.w) + within
    return y, argmax


def max_pool_nd_backward(
    dy: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, ...],
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of ``max_pool_nd``: dy routed to each window's maximum.

    Parameters
    ----------
    dy : ndarray, the shape of max_pool_nd's output
    argmax : ndarray of int32, as returned by ``max_pool_nd``
    x_shape : (N, *spatial, C), the pooled input's shape
    pool_size, strides, padding : as given to ``max_pool_nd``

    Returns
    -------
    dx : ndarray, shape x_shape
    """
    dy, argmax, g = vnd.check_max_pool_nd_backward(dy, argmax, x_shape, pool_size, strides,
                                                   padding)
    dx = np.empty(g.input_shape, dtype=dy.dtype)
    if not g.n:
        return dx
    if g.rank < 3:
        disjoint = g.stride_h >= g.kh and g.stride_w >= g.kw
        out = (g.n, g.oh, g.ow, g.c)
        _pool.max_pool2d_backward(dy.reshape(out), argmax.reshape(out), _view4(dx, g), g,
                                  disjoint, _settings.isa_code(), _threads(g.n))
        return dx
    # The scatter reads only the sizes: the volume as (D * H, W) planes of
    # the (OD * OH, OW) outputs; argmax's flat index is the same in both.
    flat = v.PoolGeometry(g.n, g.d * g.h, g.w, g.c, 1, 1, g.od * g.oh, g.ow, 1, 1, 0, 0, 0, 0)
    out = (g.n, g.od * g.oh, g.ow, g.c)
    _pool.max_pool2d_backward(dy.reshape(out), argmax.reshape(out),
                              dx.reshape(g.n, g.d * g.h, g.w, g.c), flat, False,
                              _settings.isa_code(), _threads(g.n))
    return dx


def avg_pool_nd(
    x: np.ndarray,
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Average pooling of rank 1, 2 or 3 over each window's elements inside
    the input (padded positions count in neither the sum nor the divisor).

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C)
    pool_size, strides, padding : as for ``max_pool_nd``

    Returns
    -------
    y : ndarray, shape (N, *output_spatial, C)
    """
    x, g = vnd.check_pool_nd(x, pool_size, strides, padding)
    y = np.empty(g.output_shape, dtype=x.dtype)
    if not g.n:
        return y
    isa = _settings.isa_code()
    if g.rank < 3:
        _pool.avg_pool2d_forward(_view4(x, g), y.reshape(g.n, g.oh, g.ow, g.c), g, isa,
                                 _threads(g.n * g.oh))
        return y
    p = g.oh * g.ow
    y1 = np.empty((g.n * g.d, g.oh, g.ow, g.c), dtype=x.dtype)
    _pool.avg_pool2d_forward(x.reshape(g.n * g.d, g.h, g.w, g.c), y1, _plane_geometry(g), isa,
                             _threads(g.n * g.d * g.oh))
    _pool.avg_pool2d_forward(y1.reshape(g.n, g.d, p, g.c), y.reshape(g.n, g.od, p, g.c),
                             _depth_geometry(g), isa, _threads(g.n * g.od))
    return y


def avg_pool_nd_backward(
    dy: np.ndarray,
    x_shape: tuple[int, ...],
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of ``avg_pool_nd``: each window's dy / count to its elements.

    Returns
    -------
    dx : ndarray, shape x_shape
    """
    dy, g = vnd.check_avg_pool_nd_backward(dy, x_shape, pool_size, strides, padding)
    dx = np.empty(g.input_shape, dtype=dy.dtype)
    if not g.n:
        return dx
    isa = _settings.isa_code()
    if g.rank < 3:
        _pool.avg_pool2d_backward(dy.reshape(g.n, g.oh, g.ow, g.c), _view4(dx, g), g, isa,
                                  _threads(g.n * g.h))
        return dx
    p = g.oh * g.ow
    d1 = np.empty((g.n, g.d, p, g.c), dtype=dy.dtype)
    _pool.avg_pool2d_backward(dy.reshape(g.n, g.od, p, g.c), d1, _depth_geometry(g), isa,
                              _threads(g.n * g.d))
    _pool.avg_pool2d_backward(d1.reshape(g.n * g.d, g.oh, g.ow, g.c),
                              dx.reshape(g.n * g.d, g.h, g.w, g.c), _plane_geometry(g), isa,
                              _threads(g.n * g.d * g.h))
    return dx

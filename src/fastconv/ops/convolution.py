"""Convolutions of rank 1, 2 and 3 on NumPy arrays: plain, grouped,
depthwise and transposed, forward and gradients.

Every function has the signature of its namesake in ``fastconv.reference``
and returns the same values to rounding. Arguments are checked once
(:mod:`fastconv._validation_nd`), then the compiled direct-convolution
kernels run on views of the arrays: a rank-3 convolution passes its depth
merged with the height (the kernels take the depth from the geometry), a
rank-1 convolution is one of height 1 along the width.

- groups = 1: the blocked convolution kernels of ``src_c/conv2d_impl.h``;
- groups = C_in (depthwise, any depth multiplier): the per-channel kernels
  of ``src_c/depthwise_impl.h``;
- other group counts: one convolution per group on copies of its channels.
- a transposed convolution is the input gradient of the convolution it
  transposes (``conv_transpose_nd_geometry``), its gradients that
  convolution's forward pass and weight gradient.
- the input gradient of a strided convolution (so the forward pass of a
  strided transposed one) goes by stride phases (``src_c/conv2d.h``): the
  input positions ``s * a + r`` of one residue r per axis receive only the
  taps i with ``r + pad - i * dilation`` divisible by s, a unit-stride
  convolution of dy with those taps, flipped, which runs on the blocked
  forward kernel and writes its pixels in place.

Layouts are channels-last: x ``(N, *spatial, C_in)``, w
``(*kernel_size, C_in // groups, C_out)`` (transposed: ``(*kernel_size,
filters, C_in)``, as Keras stores it). Workspace as for ``conv2d``: the
weight gradient is summed over ``min(N, 16)`` batch chunks, added in a fixed
order, so results are bitwise identical for any thread count.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fastconv import _validation as v
from fastconv import _validation_nd as vnd
from fastconv._kernels import conv as _conv
from fastconv._kernels import depthwise as _depthwise
from fastconv.runtime import batch as _batch
from fastconv.runtime import settings as _settings

__all__ = ["conv_nd", "conv_nd_backward", "conv_transpose_nd", "conv_transpose_nd_backward"]


def _x4(a: np.ndarray, g: v.ConvGeometry) -> np.ndarray:
    """An input-shaped array as the kernels' 4-D view (depth merged)."""
    return a.reshape(g.n, g.d * g.h, g.w, a.shape[-1])


def _y4(a: np.ndarray, g: v.ConvGeometry) -> np.ndarray:
    """An output-shaped array as the kernels' 4-D view (depth merged)."""
    return a.reshape(g.n, g.od * g.oh, g.ow, a.shape[-1])


def _w4(a: np.ndarray, g: v.ConvGeometry) -> np.ndarray:
    return a.reshape(g.kd * g.kh, g.kw, a.shape[-2], a.shape[-1])


def _depthwise_case(g: v.ConvGeometry) -> bool:
    return g.groups > 1 and g.groups == g.c_in


def _group_views(g: v.ConvGeometry) -> tuple[v.ConvGeometry, int, int]:
    """The geometry of one group's convolution and its channel counts."""
    c_in, c_out = g.c_in // g.groups, g.c_out // g.groups
    return dataclasses.replace(g, c_in=c_in, c_out=c_out, groups=1), c_in, c_out


def _forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, y: np.ndarray,
             g: v.ConvGeometry, relu: bool) -> None:
    isa, threads = _settings.isa_code(), _settings.threads_for(g.n * g.od * g.oh)
    if g.groups == 1:
        _conv.conv2d_forward(_x4(x, g), _w4(w, g), b, _y4(y, g), g, relu, isa, threads)
    elif _depthwise_case(g):
        _depthwise.depthwise_forward(_x4(x, g), w.reshape(-1, g.c_out), b, _y4(y, g), g, relu,
                                     isa, threads)
    else:
        gg, c_in, c_out = _group_views(g)
        for k in range(g.groups):
            cin, cout = slice(k * c_in, (k + 1) * c_in), slice(k * c_out, (k + 1) * c_out)
            yk = np.empty((*y.shape[:-1], c_out), dtype=y.dtype)
            bk = None if b is None else np.ascontiguousarray(b[cout])
            _conv.conv2d_forward(_x4(np.ascontiguousarray(x[..., cin]), gg),
                                 _w4(np.ascontiguousarray(w[..., cout]), gg), bk, _y4(yk, gg),
                                 gg, relu, isa, threads)
            y[..., cout] = yk


def _backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, dx: np.ndarray | None,
              dw: np.ndarray | None, db: np.ndarray | None, g: v.ConvGeometry) -> None:
    isa, threads = _settings.isa_code(), _settings.threads_for(g.n * g.d * g.h)
    chunks = _batch.weight_chunks(g.n)
    if g.groups == 1:
        _conv.conv2d_backward(_y4(dy, g), _x4(x, g), _w4(w, g),
                              None if dx is None else _x4(dx, g),
                              None if dw is None else _w4(dw, g), db, g, isa, threads,
                              weight_chunks=chunks)
    elif _depthwise_case(g):
        _depthwise.depthwise_backward(
            _y4(dy, g), _x4(x, g), w.reshape(-1, g.c_out), None if dx is None else _x4(dx, g),
            None if dw is None else dw.reshape(-1, g.c_out), db, g, isa, threads,
            weight_chunks=chunks)
    else:
        gg, c_in, c_out = _group_views(g)
        for k in range(g.groups):
            cin, cout = slice(k * c_in, (k + 1) * c_in), slice(k * c_out, (k + 1) * c_out)
            dxk = None if dx is None else np.empty((*x.shape[:-1], c_in), dtype=x.dtype)
            dwk = None if dw is None else np.empty((*w.shape[:-1], c_out), dtype=x.dtype)
            dbk = None if db is None else np.empty((c_out,), dtype=x.dtype)
            _conv.conv2d_backward(_y4(np.ascontiguousarray(dy[..., cout]), gg),
                                  _x4(np.ascontiguousarray(x[..., cin]), gg),
                                  _w4(np.ascontiguousarray(w[..., cout]), gg),
                                  None if dxk is None else _x4(dxk, gg),
                                  None if dwk is None else _w4(dwk, gg), dbk, gg, isa, threads,
                                  weight_chunks=chunks)
            if dx is not None:
                dx[..., cin] = dxk
            if dw is not None:
                dw[..., cout] = dwk
            if db is not None:
                db[cout] = dbk


def conv_nd(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: int | tuple[int, ...] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    activation: str | None = None,
) -> np.ndarray:
    """Convolution (cross-correlation, as in Keras) of rank 1, 2 or 3.

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C_in), 1 to 3 spatial axes
    w : ndarray, shape (*kernel_size, C_in // groups, C_out)
    b : ndarray, shape (C_out,), optional
    strides, dilation : int or tuple of one int per spatial axis
    padding : "valid", "same", "causal" (rank 1), int, ints or (before, after) pairs
        "same" places an odd extra element after (TensorFlow); "causal" pads
        ``(kernel - 1) * dilation`` before and nothing after.
    groups : int
        Output channel ``co`` reads the input channels of group
        ``co // (C_out // groups)``. ``groups == C_in`` is a depthwise
        convolution (Keras' depthwise kernel ``(*k, C_in, m)`` reshaped to
        ``(*k, 1, C_in * m)``).
    activation : None or "relu"
        "relu" returns max(y, 0), applied by the kernel.

    Returns
    -------
    y : ndarray, shape (N, *output_spatial, C_out)
    """
    x, w, b, g = vnd.check_conv_nd(x, w, b, strides, padding, dilation, groups)
    relu = v.check_activation(activation) == "relu"
    y = np.empty(g.output_shape, dtype=x.dtype)
    if g.n:
        _forward(x, w, b, y, g, relu)
    return y


def _empty_batch_gradients(dx: np.ndarray | None, dw: np.ndarray | None,
                           db: np.ndarray | None) -> tuple:
    """An empty batch contributes nothing to the weight gradients."""
    return (dx, None if dw is None else np.zeros_like(dw),
            None if db is None else np.zeros_like(db))


def conv_nd_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    strides: int | tuple[int, ...] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradients of ``conv_nd`` given dy = dL/dy.

    Parameters
    ----------
    dy : ndarray, the shape of conv_nd's output
    x, w, strides, padding, dilation, groups
        As given to ``conv_nd``.
    need_dx, need_dw, need_db : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray, the shape of x, or None
    dw : ndarray, the shape of w, or None
    db : ndarray, shape (C_out,), or None
    """
    dy, x, w, g, (need_dx, need_dw, need_db) = vnd.check_conv_nd_backward(
        dy, x, w, strides, padding, dilation, groups, need_dx, need_dw, need_db)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
    dw = np.empty(w.shape, dtype=x.dtype) if need_dw else None
    db = np.empty((g.c_out,), dtype=x.dtype) if need_db else None
    if g.n == 0:
        return _empty_batch_gradients(dx, dw, db)
    if need_dx or need_dw or need_db:
        _backward(dy, x, w, dx, dw, db, g)
    return dx, dw, db


def _bias_gradient(dy: np.ndarray) -> np.ndarray:
    """The sum of dy over every axis but the channels, by batch chunks."""
    return _batch.sum_rows(dy, tuple(range(1, dy.ndim - 1)))


def conv_transpose_nd(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: int | tuple[int, ...] = 1,
    padding: str = "valid",
    output_padding: int | tuple[int, ...] | None = None,
    dilation: int | tuple[int, ...] = 1,
) -> np.ndarray:
    """Transposed convolution of rank 1, 2 or 3, as Keras' ConvNDTranspose.

    Parameters
    ----------
    x : ndarray, shape (N, *spatial, C_in)
    w : ndarray, shape (*kernel_size, filters, C_in)
    b : ndarray, shape (filters,), optional
    strides, dilation : int or tuple of one int per spatial axis
    padding : "valid" or "same"
    output_padding : None, int or tuple of ints, each < its stride
        Keras' output size rule: without it, ``size * stride`` ("same") or
        ``size * stride + max(extent - stride, 0)`` ("valid"); with it,
        ``(size - 1) * stride + extent - 2 * pad + output_padding`` where
        ``pad = extent // 2`` for "same" (``extent`` the dilated kernel).

    Returns
    -------
    y : ndarray, shape (N, *output_spatial, filters)
        The transpose of the convolution of y's shape with ``w`` (with
        TensorFlow's "same" placement) applied to x, plus b.
    """
    x, w, b, g = vnd.check_conv_transpose_nd(x, w, b, strides, padding, output_padding,
                                             dilation)
    y = np.empty(g.input_shape, dtype=x.dtype)
    if g.n:
        # y is the convolution's input gradient for dy = x, plus b (its x
        # is not read).
        _conv.conv2d_backward(_y4(x, g), _x4(y, g), _w4(w, g), _x4(y, g), None, None, g,
                              _settings.isa_code(), _settings.threads_for(g.n * g.d * g.h),
                              b)
    return y


def conv_transpose_nd_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    strides: int | tuple[int, ...] = 1,
    padding: str = "valid",
    output_padding: int | tuple[int, ...] | None = None,
    dilation: int | tuple[int, ...] = 1,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradients of ``conv_transpose_nd`` given dy = dL/dy.

    dx is the transposed convolution's underlying convolution applied to dy,
    dw that convolution's weight gradient with dy as its input and x as its
    output gradient, db the sum of dy.

    Returns
    -------
    dx : ndarray, the shape of x, or None
    dw : ndarray, the shape of w, or None
    db : ndarray, shape (filters,), or None
    """
    dy, x, w, g, (need_dx, need_dw, need_db) = vnd.check_conv_transpose_nd_backward(
        dy, x, w, strides, padding, output_padding, dilation, need_dx, need_dw, need_db)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
    dw = np.empty(w.shape, dtype=x.dtype) if need_dw else None
    if g.n == 0:
        db = np.zeros((g.c_in,), dtype=x.dtype) if need_db else None
        return _empty_batch_gradients(dx, dw, None)[:2] + (db,)
    isa = _settings.isa_code()
    if need_dx:
        _conv.conv2d_forward(_x4(dy, g), _w4(w, g), None, _y4(dx, g), g, False, isa,
                             _settings.threads_for(g.n * g.od * g.oh))
    if need_dw:
        _conv.conv2d_backward(_y4(x, g), _x4(dy, g), _w4(w, g), None, _w4(dw, g), None, g,
                              isa, _settings.threads_for(g.n * g.d * g.h),
                              weight_chunks=_batch.weight_chunks(g.n))
    db = _bias_gradient(dy) if need_db else None
    return dx, dw, db

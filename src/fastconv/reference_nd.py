"""Plain-NumPy definitions of the rank-generic ops (1, 2 or 3 spatial axes).

The rank is read from the input: activations are channels-last
``(N, *spatial, C)`` with ``spatial`` one of ``(W,)``, ``(H, W)`` or
``(D, H, W)``. Arguments are checked by :mod:`fastconv._validation_nd`,
whose geometry records are stored 3-D (a missing axis has size one); every
function here views its arrays as ``(N, D, H, W, C)`` accordingly.

Definitions, along each spatial axis of a convolution:
input position = ``o * stride - pad_before + t * dilation`` for output ``o``
and kernel tap ``t``; taps in the padding contribute nothing.

- ``conv_nd``: ``y[n, o, co] = b[co] + sum over t and ci in group(co) of
  x[n, i(o, t), ci] * w[t, ci - first(co), co]``, where output channel
  ``co`` belongs to group ``co // (C_out / groups)`` and reads the input
  channels ``[g * C_in / groups, (g + 1) * C_in / groups)`` (the
  Keras/TensorFlow grouped layout).
- ``conv_transpose_nd``: Keras' ConvNDTranspose, the transpose of the
  convolution ``G = conv_transpose_nd_geometry(...)`` whose input has the
  transposed output's shape and whose output has x's shape:
  ``y[n, i(o, t), f] += x[n, o, c] * w[t, f, c]`` (a scatter per tap), plus b.
- Pooling: per channel, over the window elements inside the input (padding
  counts in neither the max, the mean, nor its divisor, as in Keras).

Every op computes in the dtype of its inputs; padding is never
materialised; Python loops run over kernel taps only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from fastconv._validation import (
    ARGMAX_DTYPE,
    ConvGeometry,
    PoolGeometry,
    check_activation,
)
from fastconv._validation_nd import (
    check_avg_pool_nd_backward,
    check_conv_nd,
    check_conv_nd_backward,
    check_conv_transpose_nd,
    check_conv_transpose_nd_backward,
    check_max_pool_nd_backward,
    check_pool_nd,
)

__all__ = [
    "avg_pool_nd",
    "avg_pool_nd_backward",
    "conv_nd",
    "conv_nd_backward",
    "conv_transpose_nd",
    "conv_transpose_nd_backward",
    "max_pool_nd",
    "max_pool_nd_backward",
]

# ----------------------------------------------------------------------------
# convolution taps


def _tap_slices(
    out_size: int, in_size: int, stride: int, offset: int
) -> tuple[slice, slice] | None:
    """Outputs along one axis whose tap lands inside the input, and what they read.

    Output ``o`` reads input ``o * stride + offset``. Returns two slices of
    equal length, over the outputs with ``0 <= o * stride + offset < in_size``
    and over the inputs they read, or None when no output reads the input.
    """
    first = max(0, -(offset // stride))
    stop = min(out_size, (in_size - 1 - offset) // stride + 1)
    if first >= stop:
        return None
    start = first * stride + offset
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


def _axis_taps(out_size: int, in_size: int, kernel: int, stride: int, dilation: int,
               pad: int) -> list[tuple[int, slice, slice]]:
    """(tap, outputs, inputs) for each tap of one axis that reads the input."""
    taps = []
    for t in range(kernel):
        pixels = _tap_slices(out_size, in_size, stride, t * dilation - pad)
        if pixels is not None:
            taps.append((t, *pixels))
    return taps


def _conv_taps(g: ConvGeometry) -> Iterator[tuple[tuple[int, ...], tuple, tuple]]:
    """Kernel taps that read the input, with the pixels each one connects.

    Yields ``(tap, out, inp)``: ``tap`` indexes the kernel viewed as
    ``(KD, KH, KW, C_in / groups, C_out)``; ``out`` and ``inp`` index the
    output and input viewed as ``(N, D, H, W, C)``, and output pixel
    ``y[out]`` reads input pixel ``x[inp]`` through that tap.
    """
    axes = (
        _axis_taps(g.od, g.d, g.kd, g.stride_d, g.dil_d, g.pad_front),
        _axis_taps(g.oh, g.h, g.kh, g.stride_h, g.dil_h, g.pad_top),
        _axis_taps(g.ow, g.w, g.kw, g.stride_w, g.dil_w, g.pad_left),
    )
    for (td, od, id_), (th, oh, ih), (tw, ow, iw) in itertools.product(*axes):
        yield (td, th, tw), (slice(None), od, oh, ow), (slice(None), id_, ih, iw)


def _input5(g: ConvGeometry) -> tuple[int, ...]:
    return (g.n, g.d, g.h, g.w, g.c_in)


def _output5(g: ConvGeometry) -> tuple[int, ...]:
    return (g.n, g.od, g.oh, g.ow, g.c_out)


def _kernel5(g: ConvGeometry) -> tuple[int, ...]:
    return (g.kd, g.kh, g.kw, g.c_in // g.groups, g.c_out)


# Grouped channel mixing of one tap. Channels split as (groups, per group):
# input channel g * C_in/G + i, output channel g * C_out/G + o, and the tap's
# kernel (C_in/G, C_out) as (i, g, o). optimize=True lets einsum use BLAS.


def _by_group(a: np.ndarray, groups: int) -> np.ndarray:
    """(..., C) viewed as (..., groups, C / groups)."""
    return a.reshape(*a.shape[:-1], groups, a.shape[-1] // groups)


def _mix(x: np.ndarray, k: np.ndarray, groups: int) -> np.ndarray:
    """(..., C_in) through the tap kernel k (C_in / G, C_out): (..., C_out)."""
    y = np.einsum("...gi,igo->...go", _by_group(x, groups), _by_group(k, groups), optimize=True)
    return y.reshape(*x.shape[:-1], k.shape[-1])


def _mix_back(dy: np.ndarray, k: np.ndarray, groups: int) -> np.ndarray:
    """(..., C_out) back through the tap kernel k (C_in / G, C_out): (..., C_in)."""
    dx = np.einsum("...go,igo->...gi", _by_group(dy, groups), _by_group(k, groups),
                   optimize=True)
    return dx.reshape(*dy.shape[:-1], groups * k.shape[0])


def _mix_grad(x: np.ndarray, dy: np.ndarray, groups: int) -> np.ndarray:
    """Sum over pixels of x (..., C_in) times dy (..., C_out): (C_in / G, C_out)."""
    xs = x.reshape(-1, groups, x.shape[-1] // groups)
    dys = dy.reshape(-1, groups, dy.shape[-1] // groups)
    return np.einsum("mgi,mgo->igo", xs, dys, optimize=True).reshape(xs.shape[-1], -1)


def _correlate(x5: np.ndarray, w5: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The convolution g of x5 (N, D, H, W, C_in): (N, OD, OH, OW, C_out)."""
    y5 = np.zeros(_output5(g), dtype=x5.dtype)
    for tap, out, inp in _conv_taps(g):
        y5[out] += _mix(x5[inp], w5[tap], g.groups)
    return y5


def _correlate_dx(dy5: np.ndarray, w5: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The input gradient of the convolution g: a scatter of dy5 per tap."""
    dx5 = np.zeros(_input5(g), dtype=dy5.dtype)
    for tap, out, inp in _conv_taps(g):
        dx5[inp] += _mix_back(dy5[out], w5[tap], g.groups)
    return dx5


def _correlate_dw(dy5: np.ndarray, x5: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The weight gradient of the convolution g: (KD, KH, KW, C_in / G, C_out)."""
    dw5 = np.zeros(_kernel5(g), dtype=dy5.dtype)
    for tap, out, inp in _conv_taps(g):
        dw5[tap] = _mix_grad(x5[inp], dy5[out], g.groups)
    return dw5


# ----------------------------------------------------------------------------
# convolution


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
    """Convolution (cross-correlation) with 1, 2 or 3 spatial axes.

    ``y[n, o] = b + sum over taps t of x[n, o * stride - pad_before +
    t * dilation] @ w[t]`` per axis, each output channel reading only its
    group's input channels; taps in the padding contribute nothing.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C_in)
        float32 or float64; ``spatial`` has 1, 2 or 3 axes.
    w : ndarray of shape (*kernel_size, C_in / groups, C_out)
        Same dtype as ``x``.
    b : ndarray of shape (C_out,), optional
        Same dtype as ``x``.
    strides, dilation : int or tuple of ints, one per spatial axis
    padding : {"valid", "same", "causal"}, int, tuple of ints or of (before, after) pairs
        "same" gives ``ceil(size / stride)`` outputs with an odd extra pad
        after (TensorFlow); "causal" (rank 1) pads ``(k - 1) * dilation``
        before only.
    groups : int
        Divides ``C_in`` and ``C_out``. Output channel ``co`` is in group
        ``co // (C_out / groups)`` and reads input channels
        ``[g * C_in / groups, (g + 1) * C_in / groups)``; a depthwise
        convolution with multiplier m is ``groups = C_in`` with output
        channel ``c * m + j``.
    activation : None or "relu"
        "relu" returns ``max(y, 0)``.

    Returns
    -------
    y : ndarray of shape (N, *out_spatial, C_out)
        Dtype of ``x``.
    """
    x, w, b, g = check_conv_nd(x, w, b, strides, padding, dilation, groups)
    activation = check_activation(activation)
    y = _correlate(x.reshape(_input5(g)), w.reshape(_kernel5(g)), g).reshape(g.output_shape)
    if b is not None:
        y += b
    if activation == "relu":
        y = np.maximum(y, 0)
    return y


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
    """Gradients of :func:`conv_nd` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dy : ndarray of shape (N, *out_spatial, C_out)
        Gradient of the loss with respect to the forward output.
    x : ndarray of shape (N, *spatial, C_in)
        Forward input.
    w : ndarray of shape (*kernel_size, C_in / groups, C_out)
        Forward kernel.
    strides, padding, dilation, groups
        As given to :func:`conv_nd`.
    need_dx, need_dw, need_db : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray of shape (N, *spatial, C_in) or None
    dw : ndarray of shape (*kernel_size, C_in / groups, C_out) or None
    db : ndarray of shape (C_out,) or None
        ``dy`` summed over the batch and spatial axes. All in the inputs' dtype.
    """
    dy, x, w, g, (need_dx, need_dw, need_db) = check_conv_nd_backward(
        dy, x, w, strides, padding, dilation, groups, need_dx, need_dw, need_db)
    dy5 = dy.reshape(_output5(g))
    dx = _correlate_dx(dy5, w.reshape(_kernel5(g)), g).reshape(x.shape) if need_dx else None
    dw = _correlate_dw(dy5, x.reshape(_input5(g)), g).reshape(w.shape) if need_dw else None
    db = dy5.sum(axis=(0, 1, 2, 3)) if need_db else None
    return dx, dw, db


def conv_transpose_nd(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: int | tuple[int, ...] = 1,
    padding: str = "valid",
    output_padding: int | tuple[int, ...] | None = None,
    dilation: int | tuple[int, ...] = 1,
) -> np.ndarray:
    """Transposed convolution with 1, 2 or 3 spatial axes (Keras' ConvNDTranspose).

    The transpose of the convolution ``G`` with input of y's shape, output
    of x's shape, kernel ``w`` and these strides, padding and dilation: each
    ``x[n, o]`` is scattered through every tap ``t`` to
    ``y[n, o * stride - pad_before + t * dilation] += x[n, o] @ w[t].T``;
    contributions landing in the padding are dropped.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C_in)
        float32 or float64; ``spatial`` has 1, 2 or 3 axes.
    w : ndarray of shape (*kernel_size, filters, C_in)
        Keras' kernel layout. Same dtype as ``x``.
    b : ndarray of shape (filters,), optional
        Same dtype as ``x``.
    strides, dilation : int or tuple of ints, one per spatial axis
    padding : {"valid", "same"}
    output_padding : None, int or tuple of ints, each smaller than its stride
        Extra size along each axis, as Keras' ``deconv_output_length``.

    Returns
    -------
    y : ndarray of shape (N, *out_spatial, filters)
        Keras' output size per axis: without output_padding, ``size *
        stride + max(k_eff - stride, 0)`` ("valid") or ``size * stride``
        ("same"); with it, ``(size - 1) * stride + k_eff - 2 * pad +
        output_padding``, ``pad = k_eff // 2`` for "same", else 0, where
        ``k_eff = (k - 1) * dilation + 1``. Dtype of ``x``.
    """
    x, w, b, g = check_conv_transpose_nd(x, w, b, strides, padding, output_padding, dilation)
    y = _correlate_dx(x.reshape(_output5(g)), w.reshape(_kernel5(g)), g).reshape(g.input_shape)
    if b is not None:
        y += b
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
    """Gradients of :func:`conv_transpose_nd` with respect to ``x``, ``w`` and ``b``.

    With ``G`` the convolution it transposes: ``dx`` is G applied to ``dy``;
    ``dw`` is G's weight gradient for input ``dy`` and output gradient ``x``,
    ``dw[t, f, c] = sum over n, o of dy[n, o * stride - pad_before +
    t * dilation, f] * x[n, o, c]``; ``db`` is ``dy`` summed over the batch
    and spatial axes.

    Parameters
    ----------
    dy : ndarray of shape (N, *out_spatial, filters)
        Gradient of the loss with respect to the forward output.
    x : ndarray of shape (N, *spatial, C_in)
        Forward input.
    w : ndarray of shape (*kernel_size, filters, C_in)
        Forward kernel.
    strides, padding, output_padding, dilation
        As given to :func:`conv_transpose_nd`.
    need_dx, need_dw, need_db : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray of shape (N, *spatial, C_in) or None
    dw : ndarray of shape (*kernel_size, filters, C_in) or None
    db : ndarray of shape (filters,) or None
        All in the dtype of the inputs.
    """
    dy, x, w, g, (need_dx, need_dw, need_db) = check_conv_transpose_nd_backward(
        dy, x, w, strides, padding, output_padding, dilation, need_dx, need_dw, need_db)
    dy5 = dy.reshape(_input5(g))
    dx = _correlate(dy5, w.reshape(_kernel5(g)), g).reshape(x.shape) if need_dx else None
    dw = _correlate_dw(x.reshape(_output5(g)), dy5, g).reshape(w.shape) if need_dw else None
    db = dy5.sum(axis=(0, 1, 2, 3)) if need_db else None
    return dx, dw, db


# ----------------------------------------------------------------------------
# pooling


def _window_index(
    out_size: int, in_size: int, window: int, stride: int, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input index read by every (output, window tap) pair along one axis.

    Returns ``index`` of shape (out_size, T), clipped into the input so it
    can be used for gathering, and ``inside`` of the same shape, True where
    the unclipped index lies in the input rather than the padding.
    """
    # Offsets (tap - pad) outside [-(out_size - 1) * stride, in_size) are in
    # the padding for every output; dropping them keeps a huge "same" window
    # as cheap as the input itself.
    offsets = np.arange(max(-pad, -(out_size - 1) * stride), min(window - pad, in_size))
    index = np.arange(out_size)[:, None] * stride + offsets
    inside = (index >= 0) & (index < in_size)
    return np.clip(index, 0, in_size - 1), inside


def _pool_windows(g: PoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Flat spatial index ``(id * H + ih) * W + iw`` of every window element.

    Returns ``flat`` and ``inside``, both of shape (OD * OH * OW, T), with
    the T taps of each window in row-major window order (depth, height,
    width); ``inside`` is False for taps in the padding (whose ``flat``
    entry is a harmless in-input index).
    """
    i_d, in_d = _window_index(g.od, g.d, g.kd, g.stride_d, g.pad_front)
    i_h, in_h = _window_index(g.oh, g.h, g.kh, g.stride_h, g.pad_top)
    i_w, in_w = _window_index(g.ow, g.w, g.kw, g.stride_w, g.pad_left)
    # Axes (OD, OH, OW, TD, TH, TW): tap (td, th, tw) of window (od, oh, ow).
    d = (slice(None), None, None, slice(None), None, None)
    h = (None, slice(None), None, None, slice(None), None)
    w = (None, None, slice(None), None, None, slice(None))
    flat = (i_d[d] * g.h + i_h[h]) * g.w + i_w[w]
    inside = in_d[d] & in_h[h] & in_w[w]
    shape = (g.od * g.oh * g.ow, i_d.shape[1] * i_h.shape[1] * i_w.shape[1])
    return flat.reshape(shape), inside.reshape(shape)


def _gather_windows(x: np.ndarray, g: PoolGeometry, flat: np.ndarray) -> np.ndarray:
    """Every window of x: (N, OD * OH * OW, T, C)."""
    return x.reshape(g.n, g.d * g.h * g.w, g.c)[:, flat]


def max_pool_nd(
    x: np.ndarray,
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling with 1, 2 or 3 spatial axes, returning where each maximum is.

    Padding never wins. Ties go to the first maximum in row-major window
    order (depth, then height, then width); a window holding NaN gives NaN,
    located at its first NaN.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C)
        float32 or float64; ``spatial`` has 1, 2 or 3 axes.
    pool_size : int or tuple of ints, one per spatial axis
    strides : int or tuple of ints, optional
        Step between windows; defaults to ``pool_size``.
    padding : {"valid", "same"}, int, tuple of ints or of (before, after) pairs
        Explicit padding must be smaller than the window, so that every
        window holds an element of the input.

    Returns
    -------
    y : ndarray of shape (N, *out_spatial, C)
        Dtype of ``x``.
    argmax : ndarray of shape (N, *out_spatial, C), int32
        Flat spatial index in ``x`` of each maximum: ``iw`` (rank 1),
        ``ih * W + iw`` (rank 2) or ``(id * H + ih) * W + iw`` (rank 3).
    """
    x, g = check_pool_nd(x, pool_size, strides, padding)
    flat, inside = _pool_windows(g)
    windows = np.where(inside[..., None], _gather_windows(x, g, flat), -np.inf)
    y = windows.max(axis=2)
    tap = np.argmax(windows, axis=2)  # (N, P, C); NaN counts as the maximum
    # A window whose input elements are all -inf ties with its padding, and
    # the padding must not win: take the window's first element in the input.
    tap = np.where(y == -np.inf, np.argmax(inside, axis=1)[:, None], tap)
    argmax = np.take_along_axis(flat[None, :, :, None], tap[:, :, None, :], axis=2)[:, :, 0]
    return y.reshape(g.output_shape), argmax.astype(ARGMAX_DTYPE).reshape(g.output_shape)


def max_pool_nd_backward(
    dy: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, ...],
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of :func:`max_pool_nd` with respect to ``x``.

    Each ``dy`` entry flows to the element its window selected; elements
    selected by several overlapping windows receive the sum.

    Parameters
    ----------
    dy : ndarray of shape (N, *out_spatial, C)
        Gradient of the loss with respect to the forward output.
    argmax : ndarray of shape (N, *out_spatial, C), int32
        As returned by :func:`max_pool_nd`.
    x_shape : (N, *spatial, C)
        Shape of the forward input.
    pool_size, strides, padding
        As given to :func:`max_pool_nd`; they must give dy's shape.

    Returns
    -------
    dx : ndarray of shape x_shape
        Dtype of ``dy``.
    """
    dy, argmax, g = check_max_pool_nd_backward(dy, argmax, x_shape, pool_size, strides, padding)
    outputs = g.od * g.oh * g.ow
    dx = np.zeros((g.n, g.d * g.h * g.w, g.c), dtype=dy.dtype)
    # np.add.at accumulates repeated indices, where `dx[idx] += dy` would
    # keep only one of them.
    np.add.at(dx, (np.arange(g.n)[:, None, None], argmax.reshape(g.n, outputs, g.c),
                   np.arange(g.c)), dy.reshape(g.n, outputs, g.c))
    return dx.reshape(g.input_shape)


def avg_pool_nd(
    x: np.ndarray,
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Average pooling with 1, 2 or 3 spatial axes, over the part of each
    window inside the input.

    As in Keras, padding counts in neither the sum nor the divisor, for
    "same" and explicit padding alike.

    Parameters
    ----------
    x : ndarray of shape (N, *spatial, C)
        float32 or float64; ``spatial`` has 1, 2 or 3 axes.
    pool_size, strides, padding
        As for :func:`max_pool_nd`.

    Returns
    -------
    y : ndarray of shape (N, *out_spatial, C)
        Dtype of ``x``.
    """
    x, g = check_pool_nd(x, pool_size, strides, padding)
    flat, inside = _pool_windows(g)
    total = np.where(inside[..., None], _gather_windows(x, g, flat), 0).sum(axis=2)
    count = inside.sum(axis=1).astype(x.dtype)
    return (total / count[:, None]).reshape(g.output_shape)


def avg_pool_nd_backward(
    dy: np.ndarray,
    x_shape: tuple[int, ...],
    pool_size: int | tuple[int, ...],
    strides: int | tuple[int, ...] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of :func:`avg_pool_nd` with respect to ``x``.

    Each ``dy`` entry is shared equally among the elements of its window
    that lie inside the input.

    Parameters
    ----------
    dy : ndarray of shape (N, *out_spatial, C)
        Gradient of the loss with respect to the forward output.
    x_shape : (N, *spatial, C)
        Shape of the forward input.
    pool_size, strides, padding
        As given to :func:`avg_pool_nd`.

    Returns
    -------
    dx : ndarray of shape x_shape
        Dtype of ``dy``.
    """
    dy, g = check_avg_pool_nd_backward(dy, x_shape, pool_size, strides, padding)
    flat, inside = _pool_windows(g)
    count = inside.sum(axis=1).astype(dy.dtype)
    share = dy.reshape(g.n, g.od * g.oh * g.ow, 1, g.c) / count[:, None, None]
    dx = np.zeros((g.n, g.d * g.h * g.w, g.c), dtype=dy.dtype)
    np.add.at(dx, (slice(None), flat), np.where(inside[..., None], share, 0))
    return dx.reshape(g.input_shape)

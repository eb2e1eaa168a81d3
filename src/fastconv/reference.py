"""Plain-NumPy definitions of every fastconv op.

Each function here states what the function of the same name in
:mod:`fastconv.ops` computes, with the same signature and the same argument
checking (both call :mod:`fastconv._validation`). The test suite uses this
module as its oracle, and it is a fallback backend where the compiled kernels
are unavailable. It is written to be read: vectorised over the batch, pixels
and channels, with Python loops only over kernel taps.

Shapes: activations are NHWC ``(N, H, W, C)``, kernels HWIO
``(KH, KW, C_in, C_out)``. Every op computes in the dtype of its inputs.

Padding is never materialised. A convolution tap that falls in the padding
contributes nothing (zero padding for finite weights); a pooling window pools
only the elements that lie inside the image.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fastconv._validation import (
    ARGMAX_DTYPE,
    ConvGeometry,
    PoolGeometry,
    check_activation,
    check_avg_pool2d_backward,
    check_conv2d,
    check_conv2d_backward,
    check_conv2d_max_pool2d,
    check_conv2d_max_pool2d_backward,
    check_max_pool2d,
    check_max_pool2d_backward,
    check_pool2d,
    check_relu_backward,
)
from fastconv.reference_nd import (
    avg_pool_nd,
    avg_pool_nd_backward,
    conv_nd,
    conv_nd_backward,
    conv_transpose_nd,
    conv_transpose_nd_backward,
    max_pool_nd,
    max_pool_nd_backward,
)
from fastconv.reference_norm import (  # batch normalization
    batch_norm,
    batch_norm_backward,
    batch_norm_inference,
)
from fastconv.reference_resample import (  # global pooling, upsampling, padding, cropping
    crop,
    crop_backward,
    global_avg_pool,
    global_avg_pool_backward,
    global_max_pool,
    global_max_pool_backward,
    upsample,
    upsample_backward,
    zero_pad,
    zero_pad_backward,
)

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool_nd",
    "avg_pool_nd_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_max_pool2d",
    "conv2d_max_pool2d_backward",
    "conv_nd",
    "conv_nd_backward",
    "conv_transpose_nd",
    "conv_transpose_nd_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool_nd",
    "max_pool_nd_backward",
    "relu_backward",
]
__all__ += [
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
__all__ += ["batch_norm", "batch_norm_backward", "batch_norm_inference"]


# ----------------------------------------------------------------------------
# convolution


def _tap_slices(
    out_size: int, in_size: int, stride: int, offset: int
) -> tuple[slice, slice] | None:
    """Outputs along one axis whose tap lands inside the image, and what they read.

    Output ``o`` reads input ``o * stride + offset``. Returns two slices of
    equal length, over the outputs with ``0 <= o * stride + offset < in_size``
    and over the inputs they read, or None when no output reads the image.
    """
    first = max(0, -(offset // stride))
    stop = min(out_size, (in_size - 1 - offset) // stride + 1)
    if first >= stop:
        return None
    start = first * stride + offset
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


def _conv_taps(g: ConvGeometry) -> Iterator[tuple[int, int, slice, slice, slice, slice]]:
    """Kernel taps that read the image, with the pixels each one connects.

    Yields ``(kh, kw, oh, ow, ih, iw)``: output rows ``oh`` and columns ``ow``
    read input rows ``ih`` and columns ``iw`` through tap ``(kh, kw)``, where
    input row = output row * stride_h - pad_top + kh * dil_h (columns alike).
    """
    for kh in range(g.kh):
        rows = _tap_slices(g.oh, g.h, g.stride_h, kh * g.dil_h - g.pad_top)
        for kw in range(g.kw):
            cols = _tap_slices(g.ow, g.w, g.stride_w, kw * g.dil_w - g.pad_left)
            if rows is not None and cols is not None:
                yield kh, kw, rows[0], cols[0], rows[1], cols[1]


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
    activation: str | None = None,
) -> np.ndarray:
    """2-D convolution (cross-correlation, as in deep-learning libraries).

    ``y[n, oh, ow] = b + sum over (kh, kw) of x[n, ih, iw] @ w[kh, kw]`` with
    ``ih = oh * stride_h - pad_top + kh * dil_h`` and
    ``iw = ow * stride_w - pad_left + kw * dil_w``; terms whose ``(ih, iw)``
    lies in the padding are zero.

    Parameters
    ----------
    x : ndarray of shape (N, H, W, C_in)
        float32 or float64.
    w : ndarray of shape (KH, KW, C_in, C_out)
        Same dtype as ``x``.
    b : ndarray of shape (C_out,), optional
        Same dtype as ``x``.
    strides : int or (int, int)
        Step between output pixels, ``(stride_h, stride_w)``.
    padding : {"valid", "same"}, int, (int, int) or ((int, int), (int, int))
        "valid" pads nothing; "same" gives ``OH = ceil(H / stride_h)`` and,
        as TensorFlow does, puts an odd extra row/column at the bottom/right;
        explicit padding is ``p``, ``(pad_h, pad_w)`` or
        ``((top, bottom), (left, right))``.
    dilation : int or (int, int)
        Spacing between kernel taps, ``(dil_h, dil_w)``.
    activation : None or "relu"
        "relu" returns ``max(y, 0)``.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C_out)
        Dtype of ``x``.
    """
    x, w, b, g = check_conv2d(x, w, b, strides, padding, dilation)
    activation = check_activation(activation)
    y = np.zeros(g.output_shape, dtype=x.dtype)
    for kh, kw, oh, ow, ih, iw in _conv_taps(g):
        y[:, oh, ow] += x[:, ih, iw] @ w[kh, kw]
    if b is not None:
        y += b
    if activation == "relu":
        y = np.maximum(y, 0)
    return y


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of ReLU given its output ``y``: ``dy`` where ``y > 0``, else 0.

    Parameters
    ----------
    dy : ndarray, any shape
        Gradient of the loss with respect to the ReLU's output.
    y : ndarray, the shape of ``dy``
        The ReLU's output.

    Returns
    -------
    dx : ndarray, the shape of ``dy``
    """
    dy, y = check_relu_backward(dy, y)
    return np.where(y > 0, dy, dy.dtype.type(0))


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    strides: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`conv2d` with respect to ``x``, ``w`` and ``b``.

    Parameters
    ----------
    dy : ndarray of shape (N, OH, OW, C_out)
        Gradient of the loss with respect to the forward output.
    x : ndarray of shape (N, H, W, C_in)
        Forward input.
    w : ndarray of shape (KH, KW, C_in, C_out)
        Forward kernel.
    strides, padding, dilation
        As given to :func:`conv2d`.
    need_dx, need_dw, need_db : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray of shape (N, H, W, C_in) or None
    dw : ndarray of shape (KH, KW, C_in, C_out) or None
    db : ndarray of shape (C_out,) or None
        All in the dtype of the inputs.
    """
    dy, x, w, g, (need_dx, need_dw, need_db) = check_conv2d_backward(
        dy, x, w, strides, padding, dilation, need_dx, need_dw, need_db
    )
    dx = np.zeros_like(x) if need_dx else None
    dw = np.zeros_like(w) if need_dw else None
    db = dy.sum(axis=(0, 1, 2)) if need_db else None
    for kh, kw, oh, ow, ih, iw in _conv_taps(g):
        if dx is not None:
            dx[:, ih, iw] += dy[:, oh, ow] @ w[kh, kw].T
        if dw is not None:
            dw[kh, kw] = np.tensordot(x[:, ih, iw], dy[:, oh, ow], axes=([0, 1, 2], [0, 1, 2]))
    return dx, dw, db


# ----------------------------------------------------------------------------
# pooling


def _window_index(
    out_size: int, in_size: int, window: int, stride: int, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input index read by every (output, window tap) pair along one axis.

    Returns ``index`` of shape (out_size, T), clipped into the image so it
    can be used for gathering, and ``inside`` of the same shape, True where
    the unclipped index lies in the image rather than the padding.
    """
    # Offsets (tap - pad) outside [-(out_size - 1) * stride, in_size) are in
    # the padding for every output; dropping them keeps a huge "same" window
    # as cheap as the image itself.
    offsets = np.arange(max(-pad, -(out_size - 1) * stride), min(window - pad, in_size))
    index = np.arange(out_size)[:, None] * stride + offsets
    inside = (index >= 0) & (index < in_size)
    return np.clip(index, 0, in_size - 1), inside


def _pool_windows(g: PoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Flat spatial index ``ih * W + iw`` of every window element.

    Returns ``flat`` and ``inside``, both of shape (OH, OW, T), with the T
    taps of each window in row-major window order; ``inside`` is False for
    taps in the padding (whose ``flat`` entry is a harmless in-image index).
    """
    ih, inside_h = _window_index(g.oh, g.h, g.kh, g.stride_h, g.pad_top)
    iw, inside_w = _window_index(g.ow, g.w, g.kw, g.stride_w, g.pad_left)
    shape = (g.oh, g.ow, ih.shape[1] * iw.shape[1])
    # (OH, 1, TH, 1) against (1, OW, 1, TW): tap (th, tw) of window (oh, ow).
    flat = ih[:, None, :, None] * g.w + iw[None, :, None, :]
    inside = inside_h[:, None, :, None] & inside_w[None, :, None, :]
    return flat.reshape(shape), inside.reshape(shape)


def max_pool2d(
    x: np.ndarray,
    pool_size: int | tuple[int, int],
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> tuple[np.ndarray, np.ndarray]:
    """2-D max pooling, returning the position of each maximum.

    Padding never wins. Ties go to the first maximum in row-major window
    order; a window holding NaN gives NaN, located at its first NaN.

    Parameters
    ----------
    x : ndarray of shape (N, H, W, C)
        float32 or float64.
    pool_size : int or (int, int)
        Window ``(KH, KW)``.
    strides : int or (int, int), optional
        Step between windows; defaults to ``pool_size``.
    padding : {"valid", "same"}, int, (int, int) or ((int, int), (int, int))
        As for :func:`conv2d`; explicit padding must be smaller than the
        window so that every window holds an element of the image.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C)
        Dtype of ``x``.
    argmax : ndarray of shape (N, OH, OW, C), int32
        Flat spatial index ``ih * W + iw`` in ``x`` of each maximum.
    """
    x, g = check_max_pool2d(x, pool_size, strides, padding)
    flat, inside = _pool_windows(g)
    values = x.reshape(g.n, g.h * g.w, g.c)[:, flat]  # (N, OH, OW, T, C)
    windows = np.where(inside[..., None], values, -np.inf)
    y = windows.max(axis=3)
    tap = np.argmax(windows, axis=3)
    # A window whose image elements are all -inf ties with its padding, and
    # the padding must not win: take the window's first element in the image.
    tap = np.where(y == -np.inf, np.argmax(inside, axis=2)[..., None], tap)
    argmax = np.take_along_axis(flat[None, ..., None], tap[:, :, :, None, :], axis=3)[:, :, :, 0]
    return y, argmax.astype(ARGMAX_DTYPE)


def conv2d_max_pool2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
    activation: str | None = None,
    pool_size: int | tuple[int, int] = 2,
    pool_strides: int | tuple[int, int] | None = None,
    pool_padding: str | int | tuple = "valid",
) -> tuple[np.ndarray, np.ndarray]:
    """A convolution followed by max pooling of its output:
    ``max_pool2d(conv2d(x, w, b, strides, padding, dilation, activation),
    pool_size, pool_strides, pool_padding)``.

    The convolution's arguments are those of :func:`conv2d`; ``pool_size``,
    ``pool_strides`` and ``pool_padding`` are the ``pool_size``, ``strides``
    and ``padding`` of :func:`max_pool2d`. Its gradient is
    :func:`conv2d_max_pool2d_backward`.

    Returns
    -------
    y : ndarray of shape (N, POH, POW, C_out)
        Dtype of ``x``.
    argmax : ndarray of shape (N, POH, POW, C_out), int32
        Flat spatial index ``oh * OW + ow`` in the convolution's output of
        each maximum.
    """
    x, w, b, _, _ = check_conv2d_max_pool2d(x, w, b, strides, padding, dilation, pool_size,
                                            pool_strides, pool_padding)
    return max_pool2d(conv2d(x, w, b, strides, padding, dilation, activation), pool_size,
                      pool_strides, pool_padding)


def conv2d_max_pool2d_backward(
    dy: np.ndarray,
    argmax: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    strides: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
    activation: str | None = None,
    pool_size: int | tuple[int, int] = 2,
    pool_strides: int | tuple[int, int] | None = None,
    pool_padding: str | int | tuple = "valid",
    y: np.ndarray | None = None,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradient of :func:`conv2d_max_pool2d`: :func:`max_pool2d_backward`
    into the convolution's output shape, through the ReLU when
    ``activation="relu"``, then :func:`conv2d_backward`.

    Parameters
    ----------
    dy : ndarray of shape (N, POH, POW, C_out)
        Gradient of the loss with respect to the pooled output.
    argmax : ndarray of shape (N, POH, POW, C_out), int32
        As returned by :func:`conv2d_max_pool2d`.
    x, w, strides, padding, dilation, activation, pool_size, pool_strides, pool_padding
        As given to :func:`conv2d_max_pool2d`.
    y : ndarray of shape (N, POH, POW, C_out), optional
        The pooled output, needed with ``activation="relu"`` (and only
        then): each maximum is the rectified value at its argmax, so the
        gradient passes where ``y > 0``.
    need_dx, need_dw, need_db : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray of shape (N, H, W, C_in), or None
    dw : ndarray of shape (KH, KW, C_in, C_out), or None
    db : ndarray of shape (C_out,), or None
    """
    dy, argmax, x, w, y, g, _, (need_dx, need_dw, need_db) = check_conv2d_max_pool2d_backward(
        dy, argmax, x, w, strides, padding, dilation, activation, pool_size, pool_strides,
        pool_padding, y, need_dx, need_dw, need_db)
    if y is not None:
        dy = relu_backward(dy, y)
    dz = max_pool2d_backward(dy, argmax, g.output_shape)
    return conv2d_backward(dz, x, w, strides, padding, dilation, need_dx, need_dw, need_db)


def max_pool2d_backward(
    dy: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool_size: int | tuple[int, int] | None = None,
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    Each ``dy`` entry flows to the element its window selected; elements
    selected by several overlapping windows receive the sum.

    Parameters
    ----------
    dy : ndarray of shape (N, OH, OW, C)
        Gradient of the loss with respect to the forward output.
    argmax : ndarray of shape (N, OH, OW, C), int32
        As returned by :func:`max_pool2d`.
    x_shape : (N, H, W, C)
        Shape of the forward input.
    pool_size, strides, padding : optional
        The forward pass's, if known: they must give dy's shape. The result
        does not depend on them (argmax locates every gradient); the
        compiled backend uses them to write dx in one pass when the windows
        do not overlap.

    Returns
    -------
    dx : ndarray of shape (N, H, W, C)
        Dtype of ``dy``.
    """
    dy, argmax, (n, h, w, c), _ = check_max_pool2d_backward(dy, argmax, x_shape, pool_size,
                                                            strides, padding)
    dx = np.zeros((n, h * w, c), dtype=dy.dtype)
    # np.add.at accumulates repeated indices, where `dx[idx] += dy` would
    # keep only one of them.
    np.add.at(dx, (np.arange(n)[:, None, None, None], argmax, np.arange(c)), dy)
    return dx.reshape(n, h, w, c)


def avg_pool2d(
    x: np.ndarray,
    pool_size: int | tuple[int, int],
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """2-D average pooling over the part of each window inside the image.

    As in Keras, padding counts in neither the sum nor the divisor, for
    "same" and explicit padding alike.

    Parameters
    ----------
    x : ndarray of shape (N, H, W, C)
        float32 or float64.
    pool_size : int or (int, int)
        Window ``(KH, KW)``.
    strides : int or (int, int), optional
        Step between windows; defaults to ``pool_size``.
    padding : {"valid", "same"}, int, (int, int) or ((int, int), (int, int))
        As for :func:`max_pool2d`.

    Returns
    -------
    y : ndarray of shape (N, OH, OW, C)
        Dtype of ``x``.
    """
    x, g = check_pool2d(x, pool_size, strides, padding)
    flat, inside = _pool_windows(g)
    values = x.reshape(g.n, g.h * g.w, g.c)[:, flat]  # (N, OH, OW, T, C)
    total = np.where(inside[..., None], values, 0).sum(axis=3)
    count = inside.sum(axis=2).astype(x.dtype)
    return total / count[:, :, None]


def avg_pool2d_backward(
    dy: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool_size: int | tuple[int, int],
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to ``x``.

    Each ``dy`` entry is shared equally among the elements of its window
    that lie inside the image.

    Parameters
    ----------
    dy : ndarray of shape (N, OH, OW, C)
        Gradient of the loss with respect to the forward output.
    x_shape : (N, H, W, C)
        Shape of the forward input.
    pool_size, strides, padding
        As given to :func:`avg_pool2d`.

    Returns
    -------
    dx : ndarray of shape (N, H, W, C)
        Dtype of ``dy``.
    """
    dy, g = check_avg_pool2d_backward(dy, x_shape, pool_size, strides, padding)
    flat, inside = _pool_windows(g)
    count = inside.sum(axis=2).astype(dy.dtype)
    share = (dy / count[:, :, None])[:, :, :, None, :]  # (N, OH, OW, 1, C)
    dx = np.zeros((g.n, g.h * g.w, g.c), dtype=dy.dtype)
    np.add.at(dx, (slice(None), flat), np.where(inside[..., None], share, 0))
    return dx.reshape(g.n, g.h, g.w, g.c)

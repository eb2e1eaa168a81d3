"""The drop-in backend: convolution and pooling on plain NumPy arrays.

Every function here has the signature of its namesake in
``fastconv.reference`` (the NumPy definition of the op) and returns the same
values to rounding. Arguments are checked once, here; then the compiled
kernels (``fastconv._kernels``, OpenMP over ``fastconv.get_num_threads()``
threads, GIL released) compute into freshly allocated outputs. A call never
uses more threads than it has independent rows (or images) to share out.

Layouts: activations NHWC ``(N, H, W, C)``, kernels HWIO
``(KH, KW, C_in, C_out)``; float32 or float64, one dtype per call.
Non-contiguous, read-only and Fortran-ordered inputs are accepted (copied to
C order when needed); inputs are never modified.

Workspace beyond the outputs: ``conv2d_backward`` uses a transposed copy of
``w`` for ``dx`` and, for ``dw``, one copy of it when the output channels
come in whole vector blocks (each thread then owns blocks of ``dw`` and adds
the batch chunks' sums to them in chunk order) or else ``min(N, 16)``
partial copies summed in a fixed order (plus ``min(N, 16)`` of ``db``), so
results do not depend on the thread count; ``conv2d_max_pool2d`` one convolution output plane ``(OH, OW, C_out)``
per thread, and its gradient a few of them per thread (about 512 KB) besides
the copies above. The other ops use none.
"""

from __future__ import annotations

import numpy as np

from fastconv.runtime import batch as _batch
from fastconv.runtime import settings as _settings
from fastconv import _validation as v
from fastconv._kernels import conv as _conv
from fastconv._kernels import conv_pool as _conv_pool
from fastconv._kernels import pool as _pool


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
    activation: str | None = None,
) -> np.ndarray:
    """2-D convolution (cross-correlation, as in Keras): y = x * w + b.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in)
    w : ndarray, shape (KH, KW, C_in, C_out)
    b : ndarray, shape (C_out,), optional
    strides, dilation : int or (int, int)
        Positive steps between output pixels and between kernel taps.
    padding : "valid", "same", int, (pad_h, pad_w) or ((top, bottom), (left, right))
        "same" places padding as TensorFlow does: when the total is odd, the
        extra row/column goes at the bottom/right. Padding is zeros.
    activation : None or "relu"
        "relu" returns max(y, 0), applied by the kernel while each output is
        still in cache (its gradient: ``relu_backward``).

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out)
    """
    x, w, b, geom = v.check_conv2d(x, w, b, strides, padding, dilation)
    relu = v.check_activation(activation) == "relu"
    y = np.empty(geom.output_shape, dtype=x.dtype)
    if geom.n:
        _conv.conv2d_forward(x, w, b, y, geom, relu, _settings.isa_code(),
                             _settings.threads_for(geom.n * geom.oh))
    return y


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of ReLU given its output: dx = dy where y > 0, else 0.

    Parameters
    ----------
    dy : ndarray, any shape
    y : ndarray, the shape of dy
        The ReLU's output (e.g. ``conv2d(..., activation="relu")``).

    Returns
    -------
    dx : ndarray, the shape of dy
    """
    dy, y = v.check_relu_backward(dy, y)
    dx = np.empty_like(dy)
    if dy.size:
        # Elementwise work: one thread per 32k elements is plenty.
        _conv.relu_backward(dy.reshape(-1), y.reshape(-1), dx.reshape(-1),
                            _settings.isa_code(), _settings.threads_for(dy.size >> 15))
    return dx


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
    """Gradients of ``conv2d`` given dy = dL/dy.

    Parameters
    ----------
    dy : ndarray, shape (N, OH, OW, C_out)
    x : ndarray, shape (N, H, W, C_in)
    w : ndarray, shape (KH, KW, C_in, C_out)
    strides, padding, dilation
        As given to ``conv2d``.
    need_dx, need_dw, need_db : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or None
    dw : ndarray, shape (KH, KW, C_in, C_out), or None
    db : ndarray, shape (C_out,), or None
    """
    dy, x, w, geom, (need_dx, need_dw, need_db) = v.check_conv2d_backward(
        dy, x, w, strides, padding, dilation, need_dx, need_dw, need_db
    )
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
    dw = np.empty(w.shape, dtype=x.dtype) if need_dw else None
    db = np.empty((geom.c_out,), dtype=x.dtype) if need_db else None
    if geom.n == 0:
        # An empty batch contributes nothing to the weight gradients.
        return dx, None if dw is None else np.zeros_like(dw), None if db is None else np.zeros_like(db)
    if need_dx or need_dw or need_db:
        _conv.conv2d_backward(
            dy, x, w, dx, dw, db, geom, _settings.isa_code(),
            _settings.threads_for(geom.n * geom.h),
            weight_chunks=_batch.weight_chunks(geom.n),
        )
    return dx, dw, db


def max_pool2d(
    x: np.ndarray,
    pool_size: int | tuple[int, int],
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling, with the position of each maximum for the backward pass.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
    pool_size : int or (int, int)
    strides : int or (int, int), optional
        Defaults to ``pool_size``.
    padding : "valid", "same" or explicit (each amount < pool size)
        Padded positions never win.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C)
    argmax : ndarray of int32, shape (N, OH, OW, C)
        Flat index ``ih * W + iw`` of each window's maximum; on ties the first
        in row-major window order; a window holding NaN gives NaN and the
        index of its first NaN.
    """
    x, geom = v.check_max_pool2d(x, pool_size, strides, padding)
    y = np.empty(geom.output_shape, dtype=x.dtype)
    argmax = np.empty(geom.output_shape, dtype=v.ARGMAX_DTYPE)
    if geom.n:
        _pool.max_pool2d_forward(
            x, y, argmax, geom, _settings.isa_code(), _settings.threads_for(geom.n * geom.oh)
        )
    return y, argmax


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
    """``max_pool2d(conv2d(x, w, b, strides, padding, dilation, activation),
    pool_size, pool_strides, pool_padding)``, bit for bit, without writing the
    convolution's output to memory.

    Each thread convolves one image at a time into a plane of its own, still
    in cache when it is pooled; only the pooled output and argmax are
    written. Only the part of the convolution's output that some window
    reads is computed: 11 rows pooled by 2 use 10. With fewer images than
    threads, the two ops run one after the other instead (they split rows,
    so every thread has work).

    Parameters
    ----------
    x, w, b, strides, padding, dilation, activation
        As for ``conv2d``.
    pool_size, pool_strides, pool_padding
        The ``pool_size``, ``strides`` and ``padding`` of ``max_pool2d``.

    Returns
    -------
    y : ndarray, shape (N, POH, POW, C_out)
    argmax : ndarray of int32, shape (N, POH, POW, C_out)
        Flat index ``oh * OW + ow`` in the convolution's output of each
        window's maximum, for the gradient, ``conv2d_max_pool2d_backward``.
    """
    x, w, b, conv, pool = v.check_conv2d_max_pool2d(x, w, b, strides, padding, dilation,
                                                    pool_size, pool_strides, pool_padding)
    relu = v.check_activation(activation) == "relu"
    threads = _settings.get_num_threads()
    if conv.n < threads:
        return max_pool2d(conv2d(x, w, b, strides, padding, dilation, activation), pool_size,
                          pool_strides, pool_padding)
    y = np.empty(pool.output_shape, dtype=x.dtype)
    argmax = np.empty(pool.output_shape, dtype=v.ARGMAX_DTYPE)
    scratch = np.empty((threads, conv.oh, conv.ow, conv.c_out), dtype=x.dtype)
    _conv_pool.conv2d_max_pool2d_forward(x, w, b, y, argmax, scratch, conv, pool, relu,
                                         _settings.isa_code(), threads)
    return y, argmax


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
    """Gradient of ``conv2d_max_pool2d``, bit for bit that of
    ``max_pool2d_backward`` (through ``relu_backward`` with ``activation=
    "relu"``) then ``conv2d_backward``, without writing the convolution
    output's gradient to memory.

    Each thread takes a few images at a time: it writes their convolution
    output's gradient into planes of its own (a gather, each element written
    once, when the pooling windows do not overlap), still in cache when it
    computes their dx and adds their dw and db. That gradient is zero where
    no window reads the output; disjoint windows then leave those rows and
    columns out of the sums, which keeps the bits (a zero adds nothing)
    except where a zero would meet an infinite or NaN input or weight, or
    turn the -0 of an underflowed product into +0: those images, or in the
    last case the whole call, take the whole plane. With fewer images than threads, the ops run
    one after the other instead.

    Parameters
    ----------
    dy : ndarray, shape (N, POH, POW, C_out)
    argmax : ndarray of int32, shape (N, POH, POW, C_out)
        As returned by ``conv2d_max_pool2d``.
    x, w, strides, padding, dilation, activation, pool_size, pool_strides, pool_padding
        As given to ``conv2d_max_pool2d``.
    y : ndarray, shape (N, POH, POW, C_out), optional
        Its pooled output, needed with ``activation="relu"`` (and only then):
        the gradient passes where ``y > 0``.
    need_dx, need_dw, need_db : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or None
    dw : ndarray, shape (KH, KW, C_in, C_out), or None
    db : ndarray, shape (C_out,), or None
    """
    dy, argmax, x, w, y, geom, pool, (need_dx, need_dw, need_db) = (
        v.check_conv2d_max_pool2d_backward(dy, argmax, x, w, strides, padding, dilation,
                                           activation, pool_size, pool_strides, pool_padding,
                                           y, need_dx, need_dw, need_db))
    threads = _settings.get_num_threads()
    chunks = _batch.weight_chunks(geom.n)
    if min(geom.n, chunks) < threads:  # the fused kernel runs a thread per chunk at most
        if y is not None:
            dy = relu_backward(dy, y)
        dz = max_pool2d_backward(dy, argmax, geom.output_shape, pool_size, pool_strides,
                                 pool_padding)
        return conv2d_backward(dz, x, w, strides, padding, dilation, need_dx, need_dw, need_db)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
    dw = np.empty(w.shape, dtype=x.dtype) if need_dw else None
    db = np.empty((geom.c_out,), dtype=x.dtype) if need_db else None
    if need_dx or need_dw or need_db:
        group = _conv_pool.group_size(geom, x.dtype.itemsize)
        scratch = np.empty((threads, group, geom.oh, geom.ow, geom.c_out), dtype=x.dtype)
        _conv_pool.conv2d_max_pool2d_backward(dy, y, argmax, x, w, dx, dw, db, scratch, geom,
                                              pool, _settings.isa_code(), threads,
                                              weight_chunks=chunks)
    return dx, dw, db


def max_pool2d_backward(
    dy: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool_size: int | tuple[int, int] | None = None,
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of ``max_pool2d``: dy routed to each window's maximum.

    Parameters
    ----------
    dy : ndarray, shape (N, OH, OW, C)
    argmax : ndarray of int32, shape (N, OH, OW, C)
        As returned by ``max_pool2d``.
    x_shape : (N, H, W, C)
        Shape of the pooled input.
    pool_size, strides, padding : optional
        The forward pass's, if known (they must give dy's shape). With them,
        windows that do not overlap are written in one pass, each dx element
        once (a gather); without them, or for overlapping windows, dx is
        zeroed and each dy element added at its argmax (a scatter). Both give
        the same values: an argmax outside its window sends the images of
        that thread's share back to the scatter.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C)
    """
    dy, argmax, shape, geom = v.check_max_pool2d_backward(dy, argmax, x_shape, pool_size,
                                                          strides, padding)
    dx = np.empty(shape, dtype=dy.dtype)
    if shape[0]:
        disjoint = geom is not None and (geom.stride_h >= geom.kh and geom.stride_w >= geom.kw)
        if geom is None:
            # The scatter reads the sizes (n, h, w, c, oh, ow); the windows
            # are implied by argmax.
            geom = v.PoolGeometry(*shape, 1, 1, dy.shape[1], dy.shape[2], 1, 1, 0, 0, 0, 0)
        _pool.max_pool2d_backward(dy, argmax, dx, geom, disjoint, _settings.isa_code(),
                                  _settings.threads_for(geom.n))
    return dx


def avg_pool2d(
    x: np.ndarray,
    pool_size: int | tuple[int, int],
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Average pooling over the window's elements inside the image (Keras).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
    pool_size : int or (int, int)
    strides : int or (int, int), optional
        Defaults to ``pool_size``.
    padding : "valid", "same" or explicit (each amount < pool size)
        Padded positions count in neither the sum nor the divisor.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C)
    """
    x, geom = v.check_pool2d(x, pool_size, strides, padding)
    y = np.empty(geom.output_shape, dtype=x.dtype)
    if geom.n:
        _pool.avg_pool2d_forward(x, y, geom, _settings.isa_code(),
                                 _settings.threads_for(geom.n * geom.oh))
    return y


def avg_pool2d_backward(
    dy: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool_size: int | tuple[int, int],
    strides: int | tuple[int, int] | None = None,
    padding: str | int | tuple = "valid",
) -> np.ndarray:
    """Gradient of ``avg_pool2d``: each window's dy / count to its elements.

    Parameters
    ----------
    dy : ndarray, shape (N, OH, OW, C)
    x_shape : (N, H, W, C)
        Shape of the pooled input.
    pool_size, strides, padding
        As given to ``avg_pool2d``.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C)
    """
    dy, geom = v.check_avg_pool2d_backward(dy, x_shape, pool_size, strides, padding)
    dx = np.empty((geom.n, geom.h, geom.w, geom.c), dtype=dy.dtype)
    if geom.n:
        _pool.avg_pool2d_backward(dy, dx, geom, _settings.isa_code(),
                                  _settings.threads_for(geom.n * geom.h))
    return dx

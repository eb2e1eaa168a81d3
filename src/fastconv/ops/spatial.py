"""Rank-generic convolution and pooling on a module of kernel functions.

The layers (on ``fastconv.layers.kernels()``: ``fastconv.ops`` or
``fastconv.reference``) and the Keras ops of ``fastconv.ops.nn`` compute
their 1-, 2- and 3-D convolutions and poolings through these functions,
which pick the kernel function by one rule:

- a rank-1 or rank-2 call without groups runs the 2-D kernels (``conv2d``,
  ``max_pool2d``, ``avg_pool2d``, ``conv2d_max_pool2d`` and their
  gradients), a rank-1 input ``(N, L, C)`` as the height-1 image
  ``(N, 1, L, C)`` (a view; "causal" padding becomes explicit padding before
  the sequence);
- every other call (rank 3, or groups) runs ``conv_nd`` / ``max_pool_nd`` /
  ``avg_pool_nd`` and their gradients.

So a Conv2D computes the very bits it always did, and a Conv1D + MaxPooling1D
pair fused into one ``conv2d_max_pool2d`` call gives exactly what the two
layers give apart (the 2-D kernels guarantee that for images).

Arrays are channels-last; hyper-parameters are tuples of ``rank`` ints and
padding one of "valid", "same", "causal" (rank 1).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

Pads = Any  # a padding the kernel functions take: "valid", "same" or explicit pairs


def conv_output_length(size: int | None, window: int, stride: int, dilation: int,
                       padding: str) -> int | None:
    """Keras' output length along one axis of a convolution or pooling (the
    layers' and the Keras ops' shapes): ceil(size / stride) for "same" and
    "causal", floor((size - (window - 1) * dilation - 1) / stride) + 1 for
    "valid"; None for an unknown size. A "valid" window larger than the
    input gives a length below 1, for the caller to refuse."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    return (size - (window - 1) * dilation - 1) // stride + 1


def _on_images(rank: int, groups: int = 1) -> bool:
    """Whether the 2-D kernels compute this call."""
    return rank <= 2 and groups == 1


def _image_padding(padding: str, kernel: tuple, dilation: tuple) -> Pads:
    """A rank-1 padding as the 2-D kernels take it for a height-1 image."""
    if padding == "causal":
        return ((0, 0), ((kernel[-1] - 1) * dilation[-1], 0))
    return padding


def _image(a: np.ndarray | None, rank: int) -> np.ndarray | None:
    """An activation ``(N, L, C)`` as ``(N, 1, L, C)``; rank-2 arrays as they are."""
    return a if a is None or rank == 2 else a[:, None]


def _sequence(a: np.ndarray | None, rank: int) -> np.ndarray | None:
    return a if a is None or rank == 2 else a[:, 0]


def _pair(values: tuple, rank: int) -> tuple:
    return tuple(values) if rank == 2 else (1, *values)


def conv(module: ModuleType, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
         strides: tuple, padding: str, dilation: tuple, groups: int = 1,
         activation: str | None = None) -> np.ndarray:
    """``conv_nd(x, w, b, ...)`` of ``module``, on its 2-D kernel when it can.

    x ``(N, *spatial, C_in)``, w ``(*kernel, C_in / groups, C_out)``, b
    ``(C_out,)`` or None; returns ``(N, *out_spatial, C_out)``.
    """
    rank = x.ndim - 2
    if not _on_images(rank, groups):
        return module.conv_nd(x, w, b, strides, padding, dilation, groups, activation)
    kernel = w.shape[:rank]
    y = module.conv2d(_image(x, rank), w if rank == 2 else w[None], b, _pair(strides, rank),
                      _image_padding(padding, kernel, dilation), _pair(dilation, rank),
                      activation=activation)
    return _sequence(y, rank)


def conv_backward(module: ModuleType, dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                  strides: tuple, padding: str, dilation: tuple, groups: int = 1,
                  need_dx: bool = True, need_dw: bool = True, need_db: bool = True
                  ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(dx, dw, db)`` of :func:`conv` given dy = dL/dy (None where not needed)."""
    rank = x.ndim - 2
    if not _on_images(rank, groups):
        return module.conv_nd_backward(dy, x, w, strides, padding, dilation, groups,
                                       need_dx=need_dx, need_dw=need_dw, need_db=need_db)
    kernel = w.shape[:rank]
    dx, dw, db = module.conv2d_backward(
        _image(dy, rank), _image(x, rank), w if rank == 2 else w[None], _pair(strides, rank),
        _image_padding(padding, kernel, dilation), _pair(dilation, rank),
        need_dx=need_dx, need_dw=need_dw, need_db=need_db)
    if rank == 1 and dw is not None:
        dw = dw[0]
    return _sequence(dx, rank), dw, db


def conv_max_pool(module: ModuleType, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                  strides: tuple, padding: str, dilation: tuple, pool_size: tuple,
                  pool_strides: tuple, pool_padding: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``max_pool(conv(x, ..., activation="relu"), ...)`` bit for bit in one
    ``conv2d_max_pool2d`` call (rank 1 or 2, no groups): the pooled output and
    its argmax, shaped as the pooled output."""
    rank = x.ndim - 2
    y, argmax = module.conv2d_max_pool2d(
        _image(x, rank), w if rank == 2 else w[None], b, _pair(strides, rank),
        _image_padding(padding, w.shape[:rank], dilation), _pair(dilation, rank),
        activation="relu", pool_size=_pair(pool_size, rank),
        pool_strides=_pair(pool_strides, rank), pool_padding=pool_padding)
    return _sequence(y, rank), _sequence(argmax, rank)


def conv_max_pool_backward(module: ModuleType, dy: np.ndarray, argmax: np.ndarray,
                           x: np.ndarray, w: np.ndarray, y: np.ndarray, strides: tuple,
                           padding: str, dilation: tuple, pool_size: tuple,
                           pool_strides: tuple, pool_padding: str, need_dx: bool = True,
                           need_dw: bool = True, need_db: bool = True
                           ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The gradient of :func:`conv_max_pool` (``y`` its pooled output) in one
    ``conv2d_max_pool2d_backward`` call."""
    rank = x.ndim - 2
    dx, dw, db = module.conv2d_max_pool2d_backward(
        _image(dy, rank), _image(argmax, rank), _image(x, rank), w if rank == 2 else w[None],
        _pair(strides, rank), _image_padding(padding, w.shape[:rank], dilation),
        _pair(dilation, rank), activation="relu", pool_size=_pair(pool_size, rank),
        pool_strides=_pair(pool_strides, rank), pool_padding=pool_padding,
        y=_image(y, rank), need_dx=need_dx, need_dw=need_dw, need_db=need_db)
    if rank == 1 and dw is not None:
        dw = dw[0]
    return _sequence(dx, rank), dw, db


def max_pool(module: ModuleType, x: np.ndarray, pool_size: tuple, strides: tuple,
             padding: str) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling of x ``(N, *spatial, C)``: the output and the int32 argmax
    (flat spatial index of each window's first maximum)."""
    rank = x.ndim - 2
    if not _on_images(rank):
        return module.max_pool_nd(x, pool_size, strides, padding)
    y, argmax = module.max_pool2d(_image(x, rank), _pair(pool_size, rank),
                                  _pair(strides, rank), padding)
    return _sequence(y, rank), _sequence(argmax, rank)


def max_pool_backward(module: ModuleType, dy: np.ndarray, argmax: np.ndarray,
                      x_shape: tuple, pool_size: tuple, strides: tuple,
                      padding: str) -> np.ndarray:
    """dL/dx of :func:`max_pool`: each dy element goes to its window's argmax."""
    rank = len(x_shape) - 2
    if not _on_images(rank):
        return module.max_pool_nd_backward(dy, argmax, x_shape, pool_size, strides, padding)
    shape = tuple(x_shape) if rank == 2 else (x_shape[0], 1, *x_shape[1:])
    dx = module.max_pool2d_backward(_image(dy, rank), _image(argmax, rank), shape,
                                    _pair(pool_size, rank), _pair(strides, rank), padding)
    return _sequence(dx, rank)


def avg_pool(module: ModuleType, x: np.ndarray, pool_size: tuple, strides: tuple,
             padding: str) -> np.ndarray:
    """Average pooling of x ``(N, *spatial, C)`` over each window's elements
    inside the input."""
    rank = x.ndim - 2
    if not _on_images(rank):
        return module.avg_pool_nd(x, pool_size, strides, padding)
    y = module.avg_pool2d(_image(x, rank), _pair(pool_size, rank), _pair(strides, rank),
                          padding)
    return _sequence(y, rank)


def avg_pool_backward(module: ModuleType, dy: np.ndarray, x_shape: tuple, pool_size: tuple,
                      strides: tuple, padding: str) -> np.ndarray:
    """dL/dx of :func:`avg_pool`."""
    rank = len(x_shape) - 2
    if not _on_images(rank):
        return module.avg_pool_nd_backward(dy, x_shape, pool_size, strides, padding)
    shape = tuple(x_shape) if rank == 2 else (x_shape[0], 1, *x_shape[1:])
    dx = module.avg_pool2d_backward(_image(dy, rank), shape, _pair(pool_size, rank),
                                    _pair(strides, rank), padding)
    return _sequence(dx, rank)

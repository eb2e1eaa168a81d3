"""``torch.autograd.Function``s running fastconv's compiled kernels.

Each forward converts its tensors to the kernels' channels-last arrays
(:mod:`fastconv.torch._bridge`), calls the op of :mod:`fastconv.ops`, and
keeps on ``ctx`` the arrays its backward reads (and the input through
``save_for_backward``, so that autograd's version check catches an input
changed in place between forward and backward: the arrays may share its
memory); each backward computes only
the gradients ``ctx.needs_input_grad`` asks for. The arguments arrive
checked and normalised by :mod:`fastconv.torch.functional`; padding is
explicit ``(before, after)`` pairs per spatial axis. Backward passes are not
themselves differentiable (``once_differentiable``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from fastconv import ops
from fastconv.torch import _bridge as b


class ConvFunction(torch.autograd.Function):
    """y = conv(x, weight) + bias, PyTorch layouts in and out."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, pads, dilation, groups):
        xa, wa = b.to_channels_last(x), b.weight_to_kernel(weight)
        y = ops.conv_nd(xa, wa, b.vector(bias), stride, pads, dilation, groups)
        ctx.arrays = (xa, wa)
        ctx.save_for_backward(x)
        ctx.geometry = (stride, pads, dilation, groups)
        ctx.has_bias = bias is not None
        return b.from_channels_last(y)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        ctx.saved_tensors  # noqa: B018 -- raises if x was modified in place since forward
        xa, wa = ctx.arrays
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        dx, dw, db = ops.conv_nd_backward(b.to_channels_last(dy), xa, wa, *ctx.geometry,
                                          need_dx=need_dx, need_dw=need_dw,
                                          need_db=need_db and ctx.has_bias)
        return (None if dx is None else b.from_channels_last(dx),
                None if dw is None else b.kernel_to_weight(dw),
                None if db is None else torch.from_numpy(db), None, None, None, None)


class ConvTransposeFunction(torch.autograd.Function):
    """The transposed convolution: the input gradient of the convolution of
    ``out_shape`` (N, *spatial, C_out) with ``weight``, plus bias."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, pads, dilation, groups, out_shape):
        xa, wa = b.to_channels_last(x), b.weight_to_kernel(weight)
        # The convolution's input is only a shape here: with need_dw False
        # its values are never read.
        y, _, _ = ops.conv_nd_backward(xa, np.empty(out_shape, dtype=xa.dtype), wa, stride,
                                       pads, dilation, groups, need_dx=True, need_dw=False,
                                       need_db=False)
        if bias is not None:
            y += b.vector(bias)
        ctx.arrays = (xa, wa)
        ctx.save_for_backward(x)
        ctx.geometry = (stride, pads, dilation, groups)
        ctx.has_bias = bias is not None
        return b.from_channels_last(y)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        ctx.saved_tensors  # noqa: B018 -- raises if x was modified in place since forward
        xa, wa = ctx.arrays
        stride, pads, dilation, groups = ctx.geometry
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        dya = b.to_channels_last(dy)
        dx = dw = db = None
        if need_dx:
            dx = b.from_channels_last(ops.conv_nd(dya, wa, None, stride, pads, dilation, groups))
        if need_dw:
            # The convolution's weight gradient, with dy as its input and x
            # as its output gradient.
            _, dwa, _ = ops.conv_nd_backward(xa, dya, wa, stride, pads, dilation, groups,
                                             need_dx=False, need_dw=True, need_db=False)
            dw = b.kernel_to_weight(dwa)
        if need_db and ctx.has_bias:
            db = torch.from_numpy(np.add.reduce(dya.reshape(-1, dya.shape[-1]), axis=0))
        return dx, dw, db, None, None, None, None, None


class MaxPoolFunction(torch.autograd.Function):
    """Max pooling; backward scatters dy through the kernels' argmax."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, pads):
        xa = b.to_channels_last(x)
        y, argmax = ops.max_pool_nd(xa, kernel_size, stride, pads)
        ctx.argmax, ctx.x_shape = argmax, xa.shape
        ctx.geometry = (kernel_size, stride, pads)
        return b.from_channels_last(y)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        dx = ops.max_pool_nd_backward(b.to_channels_last(dy), ctx.argmax, ctx.x_shape,
                                      *ctx.geometry)
        return b.from_channels_last(dx), None, None, None


class AvgPoolFunction(torch.autograd.Function):
    """Average pooling. ``count_include_pad``: the zero padding counts in the
    divisor (PyTorch's default), done by pooling an explicitly zero-padded
    copy without padding; otherwise the kernels' own padding, which counts
    only the elements inside the input."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, pads, count_include_pad):
        xa = b.to_channels_last(x)
        ctx.crop = None
        if count_include_pad and any(p for pair in pads for p in pair):
            ctx.crop = (slice(None), *(slice(lo, lo + n) for (lo, _), n in
                                       zip(pads, xa.shape[1:-1])), slice(None))
            xa = np.pad(xa, ((0, 0), *pads, (0, 0)))
            pads = ((0, 0),) * len(pads)
        y = ops.avg_pool_nd(xa, kernel_size, stride, pads)
        ctx.x_shape, ctx.geometry = xa.shape, (kernel_size, stride, pads)
        return b.from_channels_last(y)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        dx = ops.avg_pool_nd_backward(b.to_channels_last(dy), ctx.x_shape, *ctx.geometry)
        if ctx.crop is not None:
            dx = np.ascontiguousarray(dx[ctx.crop])
        return b.from_channels_last(dx), None, None, None, None


def _bn_layout(x: torch.Tensor) -> tuple[np.ndarray, int, bool]:
    """x's array and channel axis: (N, C, ...) as it is when contiguous, else
    the channels-last view (no copy for channels_last memory)."""
    if x.dim() > 2 and not x.is_contiguous():
        return b.to_channels_last(x), -1, True
    return x.detach().contiguous().numpy(), 1, False


class BatchNormFunction(torch.autograd.Function):
    """Batch normalization with the batch's statistics (``training``) or
    given ones. Returns y and, in training, the batch mean and biased
    variance (for the running averages; not differentiable)."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, variance, training, eps):
        xa, axis, last = _bn_layout(x)
        gamma, beta = b.vector(weight), b.vector(bias)
        if training:
            y, mean_a, var_a = ops.batch_norm(xa, gamma, beta, eps, axis)
        else:
            mean_a = mean.detach().to(x.dtype).contiguous().numpy().copy()
            var_a = variance.detach().to(x.dtype).contiguous().numpy().copy()
            y = ops.batch_norm_inference(xa, mean_a, var_a, gamma, beta, eps, axis)
        ctx.arrays = (xa, mean_a, var_a, gamma)
        ctx.save_for_backward(x)
        ctx.settings = (eps, axis, training, last)
        ctx.has = (weight is not None, bias is not None)
        out = b.from_channels_last(y) if last else torch.from_numpy(y)
        stats = (torch.from_numpy(mean_a), torch.from_numpy(var_a))
        ctx.mark_non_differentiable(*stats)
        return out, *stats

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _dmean, _dvar):
        ctx.saved_tensors  # noqa: B018 -- raises if x was modified in place since forward
        xa, mean_a, var_a, gamma = ctx.arrays
        eps, axis, training, last = ctx.settings
        dya = b.to_channels_last(dy) if last else dy.detach().contiguous().numpy()
        dx, dgamma, dbeta = ops.batch_norm_backward(dya, xa, mean_a, var_a, gamma, eps, axis,
                                                    training)
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        dx = None if not need_dx else (b.from_channels_last(dx) if last
                                       else torch.from_numpy(dx))
        dw = torch.from_numpy(dgamma) if need_dw and ctx.has[0] else None
        db = torch.from_numpy(dbeta) if need_db and ctx.has[1] else None
        return dx, dw, db, None, None, None, None

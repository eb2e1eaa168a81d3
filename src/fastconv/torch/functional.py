"""``fastconv.torch.functional``: ``torch.nn.functional``'s convolution,
pooling and batch-normalization functions, with its signatures, computed by
fastconv's kernels on float32/float64 CPU tensors (autograd included).

Results have the logical shape PyTorch gives, (N, C, *spatial), stored in
channels-last memory, the kernels' layout (batch normalization keeps its
input's layout). What the kernels do not cover raises a ValueError saying
so: ``dilation`` and ``ceil_mode`` in pooling, ``return_indices``,
``divisor_override``, and transposed convolutions whose ``output_padding``
is not below their stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fastconv.torch import _bridge as b
from fastconv.torch import _functions as f

__all__ = ["avg_pool2d", "batch_norm", "conv1d", "conv2d", "conv3d", "conv_transpose2d",
           "max_pool2d"]


def _ints(value: object, rank: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, each >= minimum, as a tuple."""
    if isinstance(value, bool):
        values = None
    elif isinstance(value, int):
        values = (value,) * rank
    elif (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == rank
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        values = tuple(value)
    else:
        values = None
    if values is None or any(v < minimum for v in values):
        raise ValueError(f"Invalid value for argument `{name}`: expected an int or a tuple of "
                         f"{rank} ints, each >= {minimum}, received {name}={value!r}.")
    return tuple(int(v) for v in values)


def _pairs(padding: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((p, p) for p in padding)


def _check_input(x: object, weight: object, rank: int) -> None:
    b.check_tensor(x, "input", rank + 2)
    b.check_tensor(weight, "weight", rank + 2, x.dtype)


def _conv_padding(padding: object, kernel: tuple[int, ...], stride: tuple[int, ...],
                  dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    rank = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * rank
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("Invalid value for argument `padding`: padding='same' is "
                                 f"only supported with stride 1, received stride={stride}.")
            # PyTorch places an odd extra element after.
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError("Invalid value for argument `padding`: expected 'valid', 'same', an "
                         f"int or a tuple of {rank} ints, received padding={padding!r}.")
    return _pairs(_ints(padding, rank, "padding", 0))


def _conv(x, weight, bias, stride, padding, dilation, groups, rank):
    _check_input(x, weight, rank)
    if bias is not None:
        b.check_tensor(bias, "bias", 1, x.dtype)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError("Invalid value for argument `groups`: expected a positive int, "
                         f"received groups={groups!r}.")
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"Invalid shape for argument `input`: expected {weight.shape[1] * groups}"
                         f" channels (weight.shape[1] * groups), received shape "
                         f"{tuple(x.shape)}.")
    stride = _ints(stride, rank, "stride")
    dilation = _ints(dilation, rank, "dilation")
    pads = _conv_padding(padding, tuple(weight.shape[2:]), stride, dilation)
    return f.ConvFunction.apply(x, weight, bias, stride, pads, dilation, groups)


def conv1d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int | tuple[int] = 1, padding: str | int | tuple[int] = 0,
           dilation: int | tuple[int] = 1, groups: int = 1) -> torch.Tensor:
    """1-D convolution, as ``torch.nn.functional.conv1d``.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, L)
    weight : Tensor, shape (C_out, C_in / groups, k)
    bias : Tensor, shape (C_out,), optional
    stride, padding, dilation, groups
        As PyTorch: padding an int, a tuple, 'valid' or 'same' (stride 1).

    Returns
    -------
    Tensor, shape (N, C_out, L_out)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int | tuple[int, int] = 1, padding: str | int | tuple[int, int] = 0,
           dilation: int | tuple[int, int] = 1, groups: int = 1) -> torch.Tensor:
    """2-D convolution, as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W)
    weight : Tensor, shape (C_out, C_in / groups, kH, kW)
    bias : Tensor, shape (C_out,), optional
    stride, padding, dilation, groups
        As PyTorch: padding an int, a tuple, 'valid' or 'same' (stride 1).

    Returns
    -------
    Tensor, shape (N, C_out, H_out, W_out)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int | tuple[int, int, int] = 1,
           padding: str | int | tuple[int, int, int] = 0,
           dilation: int | tuple[int, int, int] = 1, groups: int = 1) -> torch.Tensor:
    """3-D convolution, as ``torch.nn.functional.conv3d``.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, D, H, W)
    weight : Tensor, shape (C_out, C_in / groups, kD, kH, kW)
    bias : Tensor, shape (C_out,), optional

    Returns
    -------
    Tensor, shape (N, C_out, D_out, H_out, W_out)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3)


def conv_transpose2d(input: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor | None = None, stride: int | tuple[int, int] = 1,
                     padding: int | tuple[int, int] = 0,
                     output_padding: int | tuple[int, int] = 0, groups: int = 1,
                     dilation: int | tuple[int, int] = 1) -> torch.Tensor:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``:
    the input gradient of the convolution with these arguments, run on
    fastconv's convolution-gradient kernels.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W)
    weight : Tensor, shape (C_in, C_out / groups, kH, kW)
    bias : Tensor, shape (C_out,), optional
    stride, padding, dilation, groups : as PyTorch (padding ints only)
    output_padding : int or tuple
        Each value below its stride (PyTorch also allows values below the
        dilation; those raise a ValueError here).

    Returns
    -------
    Tensor, shape (N, C_out, H_out, W_out), H_out = (H - 1) * stride -
    2 * padding + dilation * (kH - 1) + output_padding + 1
    """
    b.check_tensor(input, "input", 4)
    b.check_tensor(weight, "weight", 4, input.dtype)
    if bias is not None:
        b.check_tensor(bias, "bias", 1, input.dtype)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError("Invalid value for argument `groups`: expected a positive int, "
                         f"received groups={groups!r}.")
    if input.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ValueError(f"Invalid shape for argument `input`: expected {weight.shape[0]} "
                         f"channels (weight.shape[0], divisible by groups={groups}), "
                         f"received shape {tuple(input.shape)}.")
    stride = _ints(stride, 2, "stride")
    dilation = _ints(dilation, 2, "dilation")
    padding = _ints(padding, 2, "padding", 0)
    extra = _ints(output_padding, 2, "output_padding", 0)
    if any(e >= s for e, s in zip(extra, stride)):
        raise ValueError("Invalid value for argument `output_padding`: fastconv supports "
                         f"values below the stride {stride}, received "
                         f"output_padding={output_padding!r}.")
    kernel = weight.shape[2:]
    sizes = tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, s, p, d, k, e in
                  zip(input.shape[2:], stride, padding, dilation, kernel, extra))
    if any(n < 1 for n in sizes):
        raise ValueError(f"Invalid value for argument `padding`: the output would have "
                         f"spatial size {sizes}, received padding={padding}.")
    out_shape = (input.shape[0], *sizes, weight.shape[1] * groups)
    return f.ConvTransposeFunction.apply(input, weight, bias, stride, _pairs(padding), dilation,
                                         groups, out_shape)


def check_pool_options(dilation: object, ceil_mode: object,
                       return_indices: object = False) -> None:
    """ValueError for the pooling options the kernels do not cover."""
    if _ints(dilation, 2, "dilation") != (1, 1):
        raise ValueError("Invalid value for argument `dilation`: fastconv's pooling supports "
                         f"dilation=1 only, received dilation={dilation!r}.")
    if ceil_mode:
        raise ValueError("Invalid value for argument `ceil_mode`: fastconv's pooling supports "
                         f"ceil_mode=False only, received ceil_mode={ceil_mode!r}.")
    if return_indices:
        raise ValueError("Invalid value for argument `return_indices`: fastconv's max pooling "
                         "supports return_indices=False only, received "
                         f"return_indices={return_indices!r}.")


def _pool_arguments(x, kernel_size, stride, padding, dilation, ceil_mode):
    b.check_tensor(x, "input", 4)
    kernel = _ints(kernel_size, 2, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _ints(
        stride, 2, "stride")
    padding = _ints(padding, 2, "padding", 0)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError("Invalid value for argument `padding`: expected at most half the "
                         f"kernel size {kernel}, received padding={padding}.")
    check_pool_options(dilation, ceil_mode)
    if any(n + 2 * p < k for n, p, k in zip(x.shape[2:], padding, kernel)):
        raise ValueError(f"Invalid shape for argument `input`: the padded input is smaller "
                         f"than kernel_size={kernel}, received shape {tuple(x.shape)}.")
    return kernel, stride, _pairs(padding)


def max_pool2d(input: torch.Tensor, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
               dilation: int | tuple[int, int] = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> torch.Tensor:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Padded positions never win. Supported: dilation=1, ceil_mode=False,
    return_indices=False (others raise a ValueError).

    Parameters
    ----------
    input : Tensor, shape (N, C, H, W)

    Returns
    -------
    Tensor, shape (N, C, H_out, W_out)
    """
    kernel, stride, pads = _pool_arguments(input, kernel_size, stride, padding, dilation,
                                           ceil_mode)
    check_pool_options(1, False, return_indices)
    return f.MaxPoolFunction.apply(input, kernel, stride, pads)


def avg_pool2d(input: torch.Tensor, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> torch.Tensor:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    ``count_include_pad=True`` (PyTorch's default; Keras has no such mode)
    divides every window by kH * kW, padding included; False divides by the
    number of elements inside the input. Supported: ceil_mode=False,
    divisor_override=None (others raise a ValueError).

    Parameters
    ----------
    input : Tensor, shape (N, C, H, W)

    Returns
    -------
    Tensor, shape (N, C, H_out, W_out)
    """
    kernel, stride, pads = _pool_arguments(input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        raise ValueError("Invalid value for argument `divisor_override`: fastconv's average "
                         "pooling supports divisor_override=None only, received "
                         f"divisor_override={divisor_override!r}.")
    return f.AvgPoolFunction.apply(input, kernel, stride, pads, bool(count_include_pad))


def batch_norm(input: torch.Tensor, running_mean: torch.Tensor | None,
               running_var: torch.Tensor | None, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """Batch normalization, as ``torch.nn.functional.batch_norm``.

    ``training``: normalizes with the batch's mean and biased variance and,
    when given, updates ``running_mean``/``running_var`` in place as PyTorch
    does: ``r = (1 - momentum) * r + momentum * s`` with the unbiased
    variance ``var * M / (M - 1)`` (M values per channel). Otherwise
    normalizes with the running statistics.

    Parameters
    ----------
    input : Tensor, shape (N, C, ...)
    running_mean, running_var : Tensor, shape (C,), or None (training only)
    weight, bias : Tensor, shape (C,), optional

    Returns
    -------
    Tensor, the shape and memory layout of input
    """
    x = b.check_tensor(input, "input")
    if x.dim() < 2:
        raise ValueError("Invalid shape for argument `input`: expected at least 2 dimensions "
                         f"(N, C, ...), received shape {tuple(x.shape)}.")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None:
            b.check_tensor(t, name, 1)
            if t.shape[0] != c:
                raise ValueError(f"Invalid shape for argument `{name}`: expected ({c},), "
                                 f"received shape {tuple(t.shape)}.")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"Invalid value for argument `{name}`: expected the input's dtype "
                            f"{x.dtype}, received dtype {t.dtype}.")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("Invalid value for argument `running_mean`: normalizing with "
                         "training=False needs running_mean and running_var, received None.")
    count = x.numel() // max(c, 1)
    if training and count <= 1:
        raise ValueError("Invalid shape for argument `input`: training needs more than 1 "
                         f"value per channel, received shape {tuple(x.shape)}.")
    y, mean, var = f.BatchNormFunction.apply(x, weight, bias, running_mean, running_var,
                                             bool(training), float(eps))
    if training and running_mean is not None:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
        if running_var is not None:
            with torch.no_grad():
                unbiased = var.to(running_var.dtype) * (count / (count - 1))
                running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
    return y

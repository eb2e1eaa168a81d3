"""Modules with ``torch.nn``'s names, arguments, defaults, parameters and
buffers, whose forward runs fastconv's kernels.

Each is a subclass of its ``torch.nn`` namesake: construction, weight
initialization, ``state_dict`` keys and shapes, ``repr`` and ``isinstance``
checks are PyTorch's own; ``__init__`` rejects the arguments the kernels do
not cover, with a ValueError, and ``forward`` calls
:mod:`fastconv.torch.functional`.
"""

from __future__ import annotations

import torch

from fastconv.torch import functional as F

__all__ = ["AvgPool2d", "BatchNorm2d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d",
           "MaxPool2d"]


def _zeros_only(padding_mode: str) -> None:
    if padding_mode != "zeros":
        raise ValueError("Invalid value for argument `padding_mode`: fastconv supports "
                         f"'zeros' only, received padding_mode={padding_mode!r}.")


class _ConvMixin:
    _functional = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        _zeros_only(self.padding_mode)
        return type(self)._functional(input, self.weight, self.bias, self.stride,
                                      self.padding, self.dilation, self.groups)


class Conv1d(_ConvMixin, torch.nn.Conv1d):
    """``torch.nn.Conv1d`` on fastconv's kernels (padding_mode='zeros' only)."""

    _functional = staticmethod(F.conv1d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        _zeros_only(padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)


class Conv2d(_ConvMixin, torch.nn.Conv2d):
    """``torch.nn.Conv2d`` on fastconv's kernels (padding_mode='zeros' only).

    Input (N, C_in, H, W) in either memory format; a channels_last input is
    read without a copy. Output (N, C_out, H_out, W_out) in channels_last
    memory.
    """

    _functional = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        _zeros_only(padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)


class Conv3d(_ConvMixin, torch.nn.Conv3d):
    """``torch.nn.Conv3d`` on fastconv's kernels (padding_mode='zeros' only)."""

    _functional = staticmethod(F.conv3d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        _zeros_only(padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` on fastconv's convolution-gradient kernels.

    Supported: padding_mode='zeros' and output_padding (given, or implied by
    ``forward``'s ``output_size``) below the stride; others raise a
    ValueError.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        _zeros_only(padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         output_padding, groups, bias, dilation, padding_mode, device, dtype)
        if any(e >= s for e, s in zip(self.output_padding, self.stride)):
            raise ValueError("Invalid value for argument `output_padding`: fastconv supports "
                             f"values below the stride {self.stride}, received "
                             f"output_padding={output_padding!r}.")

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None
                ) -> torch.Tensor:
        _zeros_only(self.padding_mode)
        extra = self._output_padding(input, output_size, self.stride, self.padding,
                                     self.kernel_size, 2, self.dilation)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  tuple(extra), self.groups, self.dilation)


class MaxPool2d(torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` on fastconv's kernels (dilation=1,
    ceil_mode=False, return_indices=False)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        F.check_pool_options(dilation, ceil_mode, return_indices)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool2d(torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` on fastconv's kernels, count_include_pad as
    PyTorch (ceil_mode=False, divisor_override=None)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)
        F.check_pool_options(1, ceil_mode)
        if divisor_override is not None:
            raise ValueError("Invalid value for argument `divisor_override`: fastconv's average "
                             "pooling supports divisor_override=None only, received "
                             f"divisor_override={divisor_override!r}.")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class BatchNorm2d(torch.nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` on fastconv's kernels: batch statistics in
    training (running averages updated with momentum, or the cumulative
    average when momentum is None, and the unbiased variance), the running
    statistics in eval mode unless track_running_stats is False."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                      else self.momentum)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            use_batch, factor, self.eps)

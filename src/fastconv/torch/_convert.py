"""``convert``: swap a model's torch.nn layers for fastconv.torch's."""

from __future__ import annotations

import torch

from fastconv.torch import modules as m

_CONV_ARGS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
              "groups")


def _conv(cls, old):
    return cls(*(getattr(old, a) for a in _CONV_ARGS), bias=old.bias is not None,
               padding_mode=old.padding_mode, device=old.weight.device, dtype=old.weight.dtype)


def _conv_transpose(old):
    return m.ConvTranspose2d(old.in_channels, old.out_channels, old.kernel_size, old.stride,
                             old.padding, old.output_padding, old.groups, old.bias is not None,
                             old.dilation, old.padding_mode, device=old.weight.device,
                             dtype=old.weight.dtype)


def _batch_norm(old):
    dtype = old.weight.dtype if old.weight is not None else (
        old.running_mean.dtype if old.running_mean is not None else None)
    return m.BatchNorm2d(old.num_features, old.eps, old.momentum, old.affine,
                         old.track_running_stats, dtype=dtype)


_BUILDERS = {
    torch.nn.Conv1d: lambda old: _conv(m.Conv1d, old),
    torch.nn.Conv2d: lambda old: _conv(m.Conv2d, old),
    torch.nn.Conv3d: lambda old: _conv(m.Conv3d, old),
    torch.nn.ConvTranspose2d: _conv_transpose,
    torch.nn.MaxPool2d: lambda old: m.MaxPool2d(old.kernel_size, old.stride, old.padding,
                                                old.dilation, old.return_indices, old.ceil_mode),
    torch.nn.AvgPool2d: lambda old: m.AvgPool2d(old.kernel_size, old.stride, old.padding,
                                                old.ceil_mode, old.count_include_pad,
                                                old.divisor_override),
    torch.nn.BatchNorm2d: _batch_norm,
}


def _on_cpu_floats(module: torch.nn.Module) -> bool:
    tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
    return all(t.device.type == "cpu" for t in tensors) and all(
        t.dtype in (torch.float32, torch.float64) for t in tensors if t.is_floating_point())


def _replacement(module: torch.nn.Module) -> torch.nn.Module | None:
    """fastconv's equivalent of module with its weights copied, or None when
    its type or arguments are not covered (it then stays as it is)."""
    build = _BUILDERS.get(type(module))
    if build is None or not _on_cpu_floats(module):
        return None
    try:
        new = build(module)
    except ValueError:  # an option the kernels do not cover
        return None
    new.load_state_dict(module.state_dict())
    new.train(module.training)
    for p_new, p_old in zip(new.parameters(), module.parameters()):
        p_new.requires_grad_(p_old.requires_grad)
    return new


def convert(module: torch.nn.Module) -> torch.nn.Module:
    """Replace, in place, every submodule of ``module`` that is exactly a
    torch.nn Conv1d, Conv2d, Conv3d, ConvTranspose2d, MaxPool2d, AvgPool2d or
    BatchNorm2d (on CPU, float32/float64, with options fastconv covers) by
    fastconv.torch's module of that name, with copies of its parameters and
    buffers and its training mode. Others are left untouched.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        ``module`` itself, or its replacement when ``module`` is itself one of
        these layers. Create optimizers after converting: the replacements'
        parameters are new tensors.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError("Invalid value for argument `module`: expected a torch.nn.Module, "
                        f"received module of type {type(module).__name__}.")
    root = _replacement(module)
    if root is not None:
        return root
    for name, child in list(module.named_children()):
        setattr(module, name, convert(child))
    return module

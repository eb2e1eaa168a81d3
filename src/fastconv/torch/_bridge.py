"""Tensors to the kernels' NumPy arrays and back.

The kernels read channels-last arrays, (N, *spatial, C). A tensor in
PyTorch's channels_last (or channels_last_3d) memory format already holds
that layout, so its permuted view is C-contiguous and ``.numpy()`` shares its
memory; a contiguous (N, C, *spatial) tensor is copied once into it. Results
come back the other way as zero-copy permuted views of the kernels' output,
i.e. tensors of the logical shape (N, C, *spatial) in channels-last memory.
"""

from __future__ import annotations

import numpy as np
import torch

SUPPORTED_DTYPES = (torch.float32, torch.float64)


def check_tensor(t: object, name: str, dim: int | None = None,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """t as a strided float32/float64 CPU tensor of ``dim`` dimensions, else
    a TypeError/ValueError naming ``name``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"Invalid value for argument `{name}`: expected a torch.Tensor, "
                        f"received {name} of type {type(t).__name__}.")
    if t.device.type != "cpu" or t.layout != torch.strided:
        raise TypeError(f"Invalid value for argument `{name}`: fastconv's kernels run on "
                        f"dense CPU tensors, received a tensor on device {t.device} with "
                        f"layout {t.layout}.")
    if t.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"Invalid value for argument `{name}`: expected dtype torch.float32 "
                        f"or torch.float64, received dtype {t.dtype}.")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"Invalid value for argument `{name}`: expected the input's dtype "
                        f"{dtype}, received dtype {t.dtype}.")
    if dim is not None and t.dim() != dim:
        raise ValueError(f"Invalid shape for argument `{name}`: expected a {dim}-D tensor, "
                         f"received shape {tuple(t.shape)}.")
    return t


def to_channels_last(t: torch.Tensor) -> np.ndarray:
    """(N, C, *spatial) tensor -> C-contiguous (N, *spatial, C) array; no copy
    when t is in channels-last memory."""
    a = t.detach().permute(0, *range(2, t.dim()), 1)
    if not a.is_contiguous():
        a = a.contiguous()
    return a.numpy()


def from_channels_last(a: np.ndarray) -> torch.Tensor:
    """(N, *spatial, C) array -> (N, C, *spatial) tensor view of its memory."""
    return torch.from_numpy(a).permute(0, a.ndim - 1, *range(1, a.ndim - 1))


def weight_to_kernel(w: torch.Tensor) -> np.ndarray:
    """PyTorch's (C_out, C_in / groups, *k) -> fastconv's (*k, C_in / groups, C_out)
    (a transposed convolution's (C_in, C_out / groups, *k) maps the same way
    onto the kernel of the convolution it transposes)."""
    rank = w.dim() - 2
    return w.detach().permute(*range(2, 2 + rank), 1, 0).contiguous().numpy()


def kernel_to_weight(dw: np.ndarray) -> torch.Tensor:
    """The inverse of ``weight_to_kernel``, as a contiguous tensor."""
    rank = dw.ndim - 2
    return torch.from_numpy(dw).permute(rank + 1, rank, *range(rank)).contiguous()


def vector(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().contiguous().numpy()

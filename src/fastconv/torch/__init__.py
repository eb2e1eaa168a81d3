"""``fastconv.torch``: PyTorch modules and functions on fastconv's kernels.

Needs PyTorch (``pip install fastconv[torch]``); ``import fastconv`` alone
never imports it.

- ``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose2d``, ``MaxPool2d``,
  ``AvgPool2d``, ``BatchNorm2d``: subclasses of their ``torch.nn``
  namesakes (same arguments, defaults, initialization and ``state_dict``)
  whose forward and backward run fastconv's compiled kernels;
- ``functional``: ``conv1d``, ``conv2d``, ``conv3d``, ``conv_transpose2d``,
  ``max_pool2d``, ``avg_pool2d``, ``batch_norm`` with
  ``torch.nn.functional``'s signatures;
- ``convert(model)``: swaps a model's supported layers for these in place.

Tensors must be float32 or float64 on the CPU (else a TypeError). The
kernels work channels-last: a (N, C, H, W) tensor in ``channels_last``
memory is read without a copy, and results come back in that memory format.
"""

from __future__ import annotations

from fastconv.torch import functional
from fastconv.torch._convert import convert
from fastconv.torch.modules import (
    AvgPool2d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose2d,
    MaxPool2d,
)

__all__ = ["AvgPool2d", "BatchNorm2d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d",
           "MaxPool2d", "convert", "functional"]

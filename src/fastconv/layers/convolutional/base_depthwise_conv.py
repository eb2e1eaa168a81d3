"""BaseDepthwiseConv(rank): depthwise convolution of any rank, and the thin
DepthwiseConv1D and DepthwiseConv2D, as Keras 3's ``base_depthwise_conv.py``.

Each input channel is convolved with its own ``depth_multiplier`` filters:
output channel ``c * depth_multiplier + j`` is input channel ``c`` through
filter ``j``. That is a grouped convolution with one group per input
channel, so the layer runs ``conv(..., groups=C_in)`` with Keras' kernel
``(*kernel_size, C_in, m)`` viewed as ``(*kernel_size, 1, C_in * m)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv import activations as activations_module
from fastconv import constraints as constraints_module
from fastconv import initializers as initializers_module
from fastconv import regularizers as regularizers_module
from fastconv.layers._spatial import (
    ActivatedOutput,
    SpatialLayout,
    check_positive_int,
    conv_output_sizes,
)
from fastconv.layers.backend import kernels
from fastconv.layers.base import (
    Layer,
    Shape,
    Variable,
    normalize_data_format,
    normalize_padding,
    normalize_tuple,
)
from fastconv.ops import spatial


def grouped_kernel(kernel: np.ndarray) -> np.ndarray:
    """A depthwise kernel ``(*k, C_in, m)`` as the grouped convolution's
    ``(*k, 1, C_in * m)`` (a view)."""
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def depthwise(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: tuple,
              padding: str, dilation: tuple, activation: str | None = None) -> np.ndarray:
    """The depthwise convolution of channels-last ``x`` by ``kernel`` ``(*k, C_in, m)``."""
    return spatial.conv(kernels(), x, grouped_kernel(kernel), bias, strides, padding,
                        dilation, kernel.shape[-2], activation)


def depthwise_backward(dy: np.ndarray, x: np.ndarray, kernel: np.ndarray, strides: tuple,
                       padding: str, dilation: tuple, need_dx: bool, need_dw: bool,
                       need_db: bool
                       ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(dx, dkernel, dbias)`` of :func:`depthwise`, dkernel shaped as ``kernel``."""
    dx, dw, db = spatial.conv_backward(kernels(), dy, x, grouped_kernel(kernel), strides,
                                       padding, dilation, kernel.shape[-2], need_dx=need_dx,
                                       need_dw=need_dw, need_db=need_db)
    return dx, None if dw is None else dw.reshape(kernel.shape), db


class BaseDepthwiseConv(ActivatedOutput, SpatialLayout, Layer):
    """Depthwise convolution over ``rank`` spatial axes, as Keras' BaseDepthwiseConv.

    Parameters
    ----------
    rank : int
        1 or 2 spatial axes (DepthwiseConv1D, DepthwiseConv2D); 3 works too.
    depth_multiplier : int
        Output channels per input channel.
    kernel_size, strides, dilation_rate : int or tuple of ``rank`` ints
    padding : "valid" or "same"
    data_format : "channels_last" (default) or "channels_first"
    activation, use_bias
    depthwise_initializer, bias_initializer, depthwise_regularizer,
    bias_regularizer, activity_regularizer, depthwise_constraint, bias_constraint
        As in Keras (defaults "glorot_uniform" and "zeros").

    Weights: kernel ``(*kernel_size, C_in, depth_multiplier)`` and bias
    ``(C_in * depth_multiplier,)``, named "kernel" and "bias" as in Keras 3.
    """

    def __init__(self, rank: int, depth_multiplier: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rank = rank
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.activation = activations_module.get(activation, keeps_shape=True)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers_module.get(depthwise_initializer)
        self.bias_initializer = initializers_module.get(bias_initializer)
        self.depthwise_regularizer = regularizers_module.get(depthwise_regularizer)
        self.bias_regularizer = regularizers_module.get(bias_regularizer)
        self.depthwise_constraint = constraints_module.get(depthwise_constraint)
        self.bias_constraint = constraints_module.get(bias_constraint)
        self.kernel: Variable | None = None
        self.bias: Variable | None = None

    def build(self, input_shape: Shape) -> None:
        _, _, c_in = self.split_shape(input_shape)
        if c_in is None:
            raise ValueError(f"Layer '{self.name}' needs a known number of input channels, "
                             f"received input shape {tuple(input_shape)}.")
        self.kernel = self.add_weight((*self.kernel_size, c_in, self.depth_multiplier),
                                      self.depthwise_initializer,
                                      regularizer=self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint, name="kernel")
        if self.use_bias:
            self.bias = self.add_weight((c_in * self.depth_multiplier,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        n, sizes, c_in = self.split_shape(input_shape)
        out = conv_output_sizes(self, sizes, self.kernel_size, self.strides,
                                self.dilation_rate, self.padding)
        return self.join_shape(n, out, None if c_in is None else c_in * self.depth_multiplier)

    def forward_flops(self, batch: int, input_shape: Shape | None = None) -> float:
        """2 FLOPs per multiply-add (0 when the spatial sizes are unknown)."""
        _, sizes, c_out = self.split_shape(self.compute_output_shape(
            self.input_shape if input_shape is None else input_shape))
        if any(s is None for s in sizes):
            return 0.0
        return 2.0 * batch * math.prod(sizes) * math.prod(self.kernel_size) * c_out

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "activation": activations_module.serialize(self.activation),
            "use_bias": self.use_bias,
            "depthwise_initializer": initializers_module.serialize(self.depthwise_initializer),
            "bias_initializer": initializers_module.serialize(self.bias_initializer),
            "depthwise_regularizer": regularizers_module.serialize(self.depthwise_regularizer),
            "bias_regularizer": regularizers_module.serialize(self.bias_regularizer),
            "depthwise_constraint": constraints_module.serialize(self.depthwise_constraint),
            "bias_constraint": constraints_module.serialize(self.bias_constraint),
        }

    def _depthwise(self, x: np.ndarray, activation: str | None) -> np.ndarray:
        return depthwise(x, self.kernel.value, self.bias.value if self.use_bias else None,
                         self.strides, self.padding, self.dilation_rate, activation)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context ``(x, z, y)`` (``x`` channels-last; ``z``
        the pre-activation, None when the kernel applied the ReLU)."""
        x = self.to_channels_last(x)
        y, z = self.activated(self._depthwise, x)
        return y, (x, z, y)

    def forward_scaled(self, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """``scale * (depthwise(x, kernel) + bias) + shift`` per output channel
        (float64 (C_in * depth_multiplier,)) with the kernel and bias scaled
        first: this layer followed by a BatchNormalization, at inference. Only
        for a linear activation."""
        kernel = self.kernel.value
        folded = (kernel * scale.reshape(kernel.shape[-2:])).astype(kernel.dtype)
        bias = (shift if not self.use_bias else self.bias.value * scale + shift)
        y = depthwise(self.to_channels_last(x), folded, bias.astype(kernel.dtype), self.strides,
                      self.padding, self.dilation_rate)
        return self.from_channels_last(y)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True,
                 activation_done: bool = False) -> np.ndarray | None:
        x, z, y = ctx
        dz = self.preactivation_gradient(dy, z, y, activation_done)
        need_w = self.trainable
        if not (need_dx or need_w):
            return None
        dx, dw, db = depthwise_backward(dz, x, self.kernel.value, self.strides, self.padding,
                                        self.dilation_rate, need_dx, need_w,
                                        need_w and self.use_bias)
        if need_w:
            self.kernel.accumulate_grad(dw)
            if self.use_bias:
                self.bias.accumulate_grad(db)
        return None if dx is None else self.from_channels_last(dx)


class DepthwiseConv1D(BaseDepthwiseConv):
    """Depthwise 1-D convolution over ``(N, steps, C)`` (channels_first:
    ``(N, C, steps)``). Arguments as ``BaseDepthwiseConv``'s."""

    def __init__(self, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 depth_multiplier: int = 1, data_format: str | None = None,
                 dilation_rate: Any = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(1, depth_multiplier, kernel_size, strides, padding, data_format,
                         dilation_rate, activation, use_bias, depthwise_initializer,
                         bias_initializer, depthwise_regularizer, bias_regularizer,
                         depthwise_constraint, bias_constraint, **kwargs)


class DepthwiseConv2D(BaseDepthwiseConv):
    """Depthwise 2-D convolution over ``(N, H, W, C)`` (channels_first:
    ``(N, C, H, W)``). Arguments as ``BaseDepthwiseConv``'s."""

    def __init__(self, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 depth_multiplier: int = 1, data_format: str | None = None,
                 dilation_rate: Any = (1, 1), activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None,
                 depthwise_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(2, depth_multiplier, kernel_size, strides, padding, data_format,
                         dilation_rate, activation, use_bias, depthwise_initializer,
                         bias_initializer, depthwise_regularizer, bias_regularizer,
                         depthwise_constraint, bias_constraint, **kwargs)

"""BaseSeparableConv(rank): depthwise separable convolution of any rank, and
the thin SeparableConv1D and SeparableConv2D, as Keras 3's
``base_separable_conv.py``.

A depthwise convolution (``depth_multiplier`` filters per input channel,
with the layer's strides, padding and dilation), then a pointwise 1x1
convolution to ``filters`` channels that adds the bias and applies the
activation.
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
from fastconv.layers.convolutional.base_depthwise_conv import (
    depthwise,
    depthwise_backward,
)
from fastconv.ops import spatial


class BaseSeparableConv(ActivatedOutput, SpatialLayout, Layer):
    """Depthwise separable convolution over ``rank`` spatial axes, as Keras'
    BaseSeparableConv.

    Parameters
    ----------
    rank : int
        1 or 2 spatial axes (SeparableConv1D, SeparableConv2D); 3 works too.
    depth_multiplier : int
        Depthwise output channels per input channel.
    filters : int
        Output channels of the pointwise convolution.
    kernel_size, strides, dilation_rate : int or tuple of ``rank`` ints
        Of the depthwise step.
    padding : "valid" or "same"
    data_format : "channels_last" (default) or "channels_first"
    activation, use_bias
    depthwise_initializer, pointwise_initializer, bias_initializer,
    depthwise_regularizer, pointwise_regularizer, bias_regularizer,
    activity_regularizer, depthwise_constraint, pointwise_constraint, bias_constraint
        As in Keras.

    Weights, in Keras' order: depthwise_kernel ``(*kernel_size, C_in,
    depth_multiplier)``, pointwise_kernel ``(1, ..., 1, C_in * depth_multiplier,
    filters)`` and bias ``(filters,)``.
    """

    def __init__(self, rank: int, depth_multiplier: int, filters: int, kernel_size: Any,
                 strides: Any = 1, padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, depthwise_constraint: Any = None,
                 pointwise_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rank = rank
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier")
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.activation = activations_module.get(activation, keeps_shape=True)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers_module.get(depthwise_initializer)
        self.pointwise_initializer = initializers_module.get(pointwise_initializer)
        self.bias_initializer = initializers_module.get(bias_initializer)
        self.depthwise_regularizer = regularizers_module.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers_module.get(pointwise_regularizer)
        self.bias_regularizer = regularizers_module.get(bias_regularizer)
        self.depthwise_constraint = constraints_module.get(depthwise_constraint)
        self.pointwise_constraint = constraints_module.get(pointwise_constraint)
        self.bias_constraint = constraints_module.get(bias_constraint)
        self.depthwise_kernel: Variable | None = None
        self.pointwise_kernel: Variable | None = None
        self.bias: Variable | None = None

    def build(self, input_shape: Shape) -> None:
        _, _, c_in = self.split_shape(input_shape)
        if c_in is None:
            raise ValueError(f"Layer '{self.name}' needs a known number of input channels, "
                             f"received input shape {tuple(input_shape)}.")
        self.depthwise_kernel = self.add_weight(
            (*self.kernel_size, c_in, self.depth_multiplier), self.depthwise_initializer,
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint,
            name="depthwise_kernel")
        self.pointwise_kernel = self.add_weight(
            (*(1,) * self.rank, c_in * self.depth_multiplier, self.filters),
            self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint, name="pointwise_kernel")
        if self.use_bias:
            self.bias = self.add_weight((self.filters,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        n, sizes, _ = self.split_shape(input_shape)
        out = conv_output_sizes(self, sizes, self.kernel_size, self.strides,
                                self.dilation_rate, self.padding)
        return self.join_shape(n, out, self.filters)

    def forward_flops(self, batch: int, input_shape: Shape | None = None) -> float:
        """2 FLOPs per multiply-add of both steps (0 when the spatial sizes
        are unknown)."""
        shape = self.input_shape if input_shape is None else input_shape
        _, sizes, _ = self.split_shape(self.compute_output_shape(shape))
        if any(s is None for s in sizes):
            return 0.0
        mid = self.pointwise_kernel.shape[-2]
        return 2.0 * batch * math.prod(sizes) * mid * (math.prod(self.kernel_size)
                                                       + self.filters)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "activation": activations_module.serialize(self.activation),
            "use_bias": self.use_bias,
            "depthwise_initializer": initializers_module.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers_module.serialize(self.pointwise_initializer),
            "bias_initializer": initializers_module.serialize(self.bias_initializer),
            "depthwise_regularizer": regularizers_module.serialize(self.depthwise_regularizer),
            "pointwise_regularizer": regularizers_module.serialize(self.pointwise_regularizer),
            "bias_regularizer": regularizers_module.serialize(self.bias_regularizer),
            "depthwise_constraint": constraints_module.serialize(self.depthwise_constraint),
            "pointwise_constraint": constraints_module.serialize(self.pointwise_constraint),
            "bias_constraint": constraints_module.serialize(self.bias_constraint),
        }

    def _pointwise(self, h: np.ndarray, activation: str | None) -> np.ndarray:
        ones = (1,) * self.rank
        return spatial.conv(kernels(), h, self.pointwise_kernel.value,
                            self.bias.value if self.use_bias else None, ones, "valid", ones,
                            1, activation)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context ``(x, h, z, y)``: the channels-last input
        and depthwise output, the pre-activation (None for relu) and output."""
        x = self.to_channels_last(x)
        h = depthwise(x, self.depthwise_kernel.value, None, self.strides, self.padding,
                      self.dilation_rate)
        y, z = self.activated(self._pointwise, h)
        return y, (x, h, z, y)

    def forward_scaled(self, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """``scale * (separable(x) + bias) + shift`` per output channel (float64
        (filters,)) with the pointwise kernel and bias scaled first: this layer
        followed by a BatchNormalization, at inference. Only for a linear
        activation."""
        pointwise = self.pointwise_kernel.value
        dtype = pointwise.dtype
        h = depthwise(self.to_channels_last(x), self.depthwise_kernel.value, None, self.strides,
                      self.padding, self.dilation_rate)
        ones = (1,) * self.rank
        bias = shift if not self.use_bias else self.bias.value * scale + shift
        y = spatial.conv(kernels(), h, (pointwise * scale).astype(dtype), bias.astype(dtype),
                         ones, "valid", ones, 1, None)
        return self.from_channels_last(y)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True,
                 activation_done: bool = False) -> np.ndarray | None:
        x, h, z, y = ctx
        dz = self.preactivation_gradient(dy, z, y, activation_done)
        need_w = self.trainable
        if not (need_dx or need_w):
            return None
        ones = (1,) * self.rank
        dh, dpw, db = spatial.conv_backward(kernels(), dz, h, self.pointwise_kernel.value,
                                            ones, "valid", ones, 1, need_dx=True,
                                            need_dw=need_w, need_db=need_w and self.use_bias)
        dx, ddw, _ = depthwise_backward(dh, x, self.depthwise_kernel.value, self.strides,
                                        self.padding, self.dilation_rate, need_dx, need_w,
                                        False)
        if need_w:
            self.depthwise_kernel.accumulate_grad(ddw)
            self.pointwise_kernel.accumulate_grad(dpw)
            if self.use_bias:
                self.bias.accumulate_grad(db)
        return None if dx is None else self.from_channels_last(dx)


class SeparableConv1D(BaseSeparableConv):
    """Depthwise separable 1-D convolution over ``(N, steps, C)``
    (channels_first: ``(N, C, steps)``). Arguments as ``BaseSeparableConv``'s."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, depth_multiplier: int = 1, activation: Any = None,
                 use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, depthwise_constraint: Any = None,
                 pointwise_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(1, depth_multiplier, filters, kernel_size, strides, padding,
                         data_format, dilation_rate, activation, use_bias,
                         depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)


class SeparableConv2D(BaseSeparableConv):
    """Depthwise separable 2-D convolution over ``(N, H, W, C)``
    (channels_first: ``(N, C, H, W)``). Arguments as ``BaseSeparableConv``'s."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1),
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = (1, 1), depth_multiplier: int = 1,
                 activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, depthwise_constraint: Any = None,
                 pointwise_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(2, depth_multiplier, filters, kernel_size, strides, padding,
                         data_format, dilation_rate, activation, use_bias,
                         depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)


SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D

"""BaseConvTranspose(rank): the transposed convolution of any rank, and the
thin Conv1DTranspose, Conv2DTranspose and Conv3DTranspose, as Keras 3's
``base_conv_transpose.py``.

It computes ``conv_transpose_nd`` of ``kernels()``: the gradient of a
convolution with respect to its input, so that an input shaped as that
convolution's output gives an output shaped as its input. The output size
along each axis is Keras 3's (``fastconv._validation_nd.conv_transpose_padding``):
without ``output_padding``, ``(size - 1) * stride + max(extent, stride)`` for
"valid" and ``size * stride`` for "same"; with it, ``(size - 1) * stride +
extent + output_padding`` for "valid" and ``(size - 1) * stride + extent % 2 +
output_padding`` for "same", where ``extent = (kernel - 1) * dilation + 1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv.layers._spatial import (
    ActivatedOutput,
    SpatialLayout,
    check_positive_int,
    check_strides_and_dilation,
    conv_transpose_output_sizes,
)
from fastconv.layers.backend import kernels
from fastconv.layers.base import (
    KernelBiasLayer,
    Shape,
    normalize_data_format,
    normalize_padding,
    normalize_tuple,
)


def _output_padding(value: Any, rank: int, strides: tuple) -> tuple[int, ...] | None:
    if value is None:
        return None
    ints = (int, np.integer)
    if isinstance(value, ints) and not isinstance(value, bool):
        values = (int(value),) * rank
    elif (isinstance(value, (tuple, list)) and len(value) == rank
          and all(isinstance(v, ints) and not isinstance(v, bool) for v in value)):
        values = tuple(int(v) for v in value)
    else:
        raise ValueError(f"Invalid value for argument `output_padding`: expected None, an int "
                         f"or a tuple of {rank} ints, received output_padding={value!r}.")
    if min(values) < 0 or any(p >= s for p, s in zip(values, strides)):
        raise ValueError(
            "Invalid value for argument `output_padding`: each value must be a "
            "non-negative int strictly less than the stride along its axis, received "
            f"output_padding={value!r} with strides={strides}.")
    return values


class BaseConvTranspose(ActivatedOutput, SpatialLayout, KernelBiasLayer):
    """Transposed convolution over ``rank`` spatial axes (a "deconvolution"),
    as Keras' BaseConvTranspose.

    Parameters
    ----------
    rank : int
        1, 2 or 3 spatial axes.
    filters : int
        Output channels.
    kernel_size, strides, dilation_rate : int or tuple of ``rank`` ints
        ``strides`` > 1 and ``dilation_rate`` > 1 do not go together (Keras).
    padding : "valid" or "same"
    output_padding : None, int or tuple of ``rank`` ints
        Extra size added after the output along each axis, each less than
        its stride; None uses Keras' default sizes (see the module doc).
    data_format : "channels_last" (default) or "channels_first"
    activation, use_bias, kernel_initializer, bias_initializer,
    kernel_regularizer, bias_regularizer, activity_regularizer,
    kernel_constraint, bias_constraint
        As in Keras.

    Weights: kernel ``(*kernel_size, filters, C_in)`` (Keras' layout) and bias
    ``(filters,)``.
    """

    def __init__(self, rank: int, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", output_padding: Any = None,
                 data_format: str | None = None, dilation_rate: Any = 1,
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)
        self.rank = rank
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        self.output_padding = _output_padding(output_padding, rank, self.strides)
        check_strides_and_dilation(self.strides, self.dilation_rate)

    def build(self, input_shape: Shape) -> None:
        _, _, c_in = self.split_shape(input_shape)
        if c_in is None:
            raise ValueError(f"Layer '{self.name}' needs a known number of input channels, "
                             f"received input shape {tuple(input_shape)}.")
        self.build_kernel_and_bias((*self.kernel_size, self.filters, c_in), self.filters)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        n, sizes, _ = self.split_shape(input_shape)
        out = conv_transpose_output_sizes(sizes, self.kernel_size, self.strides,
                                          self.dilation_rate, self.padding,
                                          self.output_padding)
        if any(s is not None and s < 1 for s in out):
            raise ValueError(
                f"Invalid value for argument `output_padding`: layer '{self.name}' would give "
                f"the output spatial size {out} for the input's {sizes}, received "
                f"output_padding={self.output_padding}.")
        return self.join_shape(n, out, self.filters)

    def forward_flops(self, batch: int, input_shape: Shape | None = None) -> float:
        """2 FLOPs per multiply-add: each input element meets every kernel tap
        and filter (0 when the spatial sizes are unknown)."""
        _, sizes, c_in = self.split_shape(self.input_shape if input_shape is None
                                          else input_shape)
        if any(s is None for s in sizes):
            return 0.0
        return 2.0 * batch * math.prod(sizes) * math.prod(self.kernel_size) * c_in * self.filters

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "output_padding": None if self.output_padding is None else list(
                self.output_padding),
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
        }

    def _conv_transpose(self, x: np.ndarray, activation: str | None) -> np.ndarray:
        bias = self.bias.value if self.use_bias else None
        y = kernels().conv_transpose_nd(x, self.kernel.value, bias, self.strides, self.padding,
                                        self.output_padding, self.dilation_rate)
        # conv_transpose_nd has no epilogue: the fused-relu path applies it here.
        return np.maximum(y, y.dtype.type(0)) if activation == "relu" else y

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output and the context ``(x, z, y)`` (``x`` channels-last; ``z``
        the pre-activation, None for relu)."""
        x = self.to_channels_last(x)
        y, z = self.activated(self._conv_transpose, x)
        return y, (x, z, y)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True,
                 activation_done: bool = False) -> np.ndarray | None:
        x, z, y = ctx
        dz = self.preactivation_gradient(dy, z, y, activation_done)
        need_w = self.trainable
        if not (need_dx or need_w):
            return None
        dx, dw, db = kernels().conv_transpose_nd_backward(
            dz, x, self.kernel.value, self.strides, self.padding, self.output_padding,
            self.dilation_rate, need_dx=need_dx, need_dw=need_w,
            need_db=need_w and self.use_bias)
        if need_w:
            self.kernel.accumulate_grad(dw)
            if self.use_bias:
                self.bias.accumulate_grad(db)
        return None if dx is None else self.from_channels_last(dx)


class Conv1DTranspose(BaseConvTranspose):
    """Transposed 1-D convolution over ``(N, steps, C)`` (channels_first:
    ``(N, C, steps)``). Arguments as ``BaseConvTranspose``'s."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", output_padding: Any = None,
                 data_format: str | None = None, dilation_rate: Any = 1,
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(1, filters, kernel_size, strides, padding, output_padding,
                         data_format, dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


class Conv2DTranspose(BaseConvTranspose):
    """Transposed 2-D convolution over ``(N, H, W, C)`` (channels_first:
    ``(N, C, H, W)``). Arguments as ``BaseConvTranspose``'s."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1),
                 padding: str = "valid", output_padding: Any = None,
                 data_format: str | None = None, dilation_rate: Any = (1, 1),
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(2, filters, kernel_size, strides, padding, output_padding,
                         data_format, dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


class Conv3DTranspose(BaseConvTranspose):
    """Transposed 3-D convolution over ``(N, D, H, W, C)`` (channels_first:
    ``(N, C, D, H, W)``). Arguments as ``BaseConvTranspose``'s; as in Keras,
    ``data_format`` comes before ``output_padding`` here."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1, 1),
                 padding: str = "valid", data_format: str | None = None,
                 output_padding: Any = None, dilation_rate: Any = (1, 1, 1),
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(3, filters, kernel_size, strides, padding, output_padding,
                         data_format, dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose

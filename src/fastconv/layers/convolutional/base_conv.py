"""BaseConv(rank): the convolution layer of any rank, and its thin Conv1D,
Conv2D and Conv3D (Conv1D adds only causal padding), as Keras 3's
``base_conv.py``.

The layer computes through ``fastconv.ops.spatial`` on ``kernels()``: the
2-D kernels for rank 1 and 2 without groups (a sequence as a height-1
image), ``conv_nd`` otherwise. With ``activation="relu"`` the kernel applies
the ReLU itself, and a rank-1 or rank-2 convolution then runs fused with the
max pooling that reads it (``forward_max_pooled``; the model's rewrite pass
``fastconv.graph.passes`` decides when).
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
    conv_output_sizes,
    conv_padding,
)
from fastconv.layers.backend import kernels
from fastconv.layers.base import (
    KernelBiasLayer,
    Shape,
    normalize_data_format,
    normalize_tuple,
)
from fastconv.layers.pooling import BasePooling
from fastconv.ops import spatial


class BaseConv(ActivatedOutput, SpatialLayout, KernelBiasLayer):
    """Convolution over ``rank`` spatial axes:
    ``activation(conv(x, kernel) + bias)``, as Keras' BaseConv.

    Parameters
    ----------
    rank : int
        1, 2 or 3 spatial axes.
    filters : int
        Output channels.
    kernel_size, strides, dilation_rate : int or tuple of ``rank`` ints
        ``strides`` > 1 and ``dilation_rate`` > 1 do not go together (Keras).
    padding : "valid", "same" or (rank 1 only) "causal"
        "same" pads as TensorFlow does (an odd extra row/column after);
        "causal" pads ``(kernel - 1) * dilation`` before the sequence only.
    data_format : "channels_last" (default) or "channels_first"
        channels_first inputs are transposed to channels-last for the kernels
        and back; the activation runs in the layer's own layout, as in Keras.
    groups : int
        Splits the input channels into ``groups`` convolved separately, each
        with ``filters // groups`` filters; must divide both.
    activation, use_bias, kernel_initializer, bias_initializer,
    kernel_regularizer, bias_regularizer, activity_regularizer,
    kernel_constraint, bias_constraint
        As in Keras.

    Weights: kernel ``(*kernel_size, C_in // groups, filters)`` and bias ``(filters,)``.
    """

    def __init__(self, rank: int, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, groups: int = 1, activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)
        self.rank = rank
        self.filters = check_positive_int(filters, "filters")
        self.groups = check_positive_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError(
                "Invalid value for argument `groups`: the number of filters must be evenly "
                f"divisible by the number of groups, received groups={self.groups} and "
                f"filters={self.filters}.")
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = conv_padding(padding, rank)
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        check_strides_and_dilation(self.strides, self.dilation_rate)

    # -- lifecycle -----------------------------------------------------------

    def build(self, input_shape: Shape) -> None:
        _, _, c_in = self.split_shape(input_shape)
        if c_in is None:
            raise ValueError(f"Layer '{self.name}' needs a known number of input channels, "
                             f"received input shape {tuple(input_shape)}.")
        if c_in % self.groups:
            raise ValueError(
                "Invalid value for argument `groups`: the number of input channels must be "
                f"evenly divisible by the number of groups, received groups={self.groups} "
                f"for an input with {c_in} channels (input shape {tuple(input_shape)}).")
        self.build_kernel_and_bias((*self.kernel_size, c_in // self.groups, self.filters),
                                   self.filters)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        n, spatial_sizes, _ = self.split_shape(input_shape)
        sizes = conv_output_sizes(self, spatial_sizes, self.kernel_size, self.strides,
                                  self.dilation_rate, self.padding)
        return self.join_shape(n, sizes, self.filters)

    def forward_flops(self, batch: int, input_shape: Shape | None = None) -> float:
        """2 FLOPs per multiply-add of the forward pass for ``batch`` samples of
        ``input_shape`` (by default the shape the layer was built for; 0 when
        its spatial sizes are unknown)."""
        shape = self.input_shape if input_shape is None else input_shape
        _, sizes, _ = self.split_shape(self.compute_output_shape(shape))
        if any(s is None for s in sizes):
            return 0.0
        c_in = self.kernel.shape[-2]
        return (2.0 * batch * math.prod(sizes) * math.prod(self.kernel_size) * c_in
                * self.filters)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
        }

    # -- computing -----------------------------------------------------------

    def _conv(self, x: np.ndarray, activation: str | None) -> np.ndarray:
        bias = self.bias.value if self.use_bias else None
        return spatial.conv(kernels(), x, self.kernel.value, bias, self.strides, self.padding,
                            self.dilation_rate, self.groups, activation)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output, and the context ``(x, z, y)`` backward needs (``x``
        channels-last; ``z`` is None when the kernel applied the ReLU itself)."""
        x = self.to_channels_last(x)
        y, z = self.activated(self._conv, x)
        return y, (x, z, y)

    def forward_scaled(self, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """``scale * (conv(x, kernel) + bias) + shift`` per output channel (scale
        and shift float64 (filters,)) as one convolution, with the kernel and
        bias scaled first: the inference pass of this layer followed by a
        BatchNormalization. Only for a linear activation."""
        dtype = self.kernel.value.dtype
        kernel = (self.kernel.value * scale).astype(dtype)
        bias = (shift if not self.use_bias else self.bias.value * scale + shift).astype(dtype)
        y = spatial.conv(kernels(), self.to_channels_last(x), kernel, bias, self.strides,
                         self.padding, self.dilation_rate, self.groups, None)
        return self.from_channels_last(y)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True,
                 activation_done: bool = False) -> np.ndarray | None:
        """Gradients given dL/d(output); with ``activation_done`` dy is already
        dL/d(pre-activation) (the model's fused softmax + cross-entropy).
        Arrays are in the layer's data format."""
        x, z, y = ctx
        dz = self.preactivation_gradient(dy, z, y, activation_done)
        need_w = self.trainable
        if not (need_dx or need_w):
            return None
        dx, dw, db = spatial.conv_backward(
            kernels(), dz, x, self.kernel.value, self.strides, self.padding,
            self.dilation_rate, self.groups, need_dx=need_dx, need_dw=need_w,
            need_db=need_w and self.use_bias)
        self._accumulate(dw, db, need_w)
        return None if dx is None else self.from_channels_last(dx)

    def _accumulate(self, dw: np.ndarray | None, db: np.ndarray | None, need_w: bool) -> None:
        if need_w:
            self.kernel.accumulate_grad(dw)
            if self.use_bias:
                self.bias.accumulate_grad(db)

    # -- fused with the max pooling that reads this layer ----------------------

    def _check_max_pooled(self, pool: Any) -> None:
        expected = f"MaxPooling{self.rank}D"
        if not (isinstance(pool, BasePooling) and pool.pool_mode == "max"
                and pool.rank == self.rank):
            raise TypeError(
                f"Invalid value for argument `pool`: expected a {expected} layer, "
                f"received {type(pool).__name__}.")
        if self.rank > 2 or self.groups != 1:
            raise ValueError(
                f"Layer '{self.name}' runs fused with a max pool only as a 1-D or 2-D "
                f"convolution without groups; it has rank {self.rank} and "
                f"groups={self.groups}.")
        if not self._fused_relu() or self.data_format != "channels_last" or (
                pool.data_format != "channels_last"):
            raise ValueError(
                f"Layer '{self.name}' runs fused with a max pool only with "
                f"activation='relu' and both layers channels_last; it has "
                f"activation={self.activation.name!r}, data_format="
                f"{self.data_format!r} (the pool: {pool.data_format!r}).")

    def forward_max_pooled(self, x: np.ndarray, pool: Any,
                           training: bool = False) -> tuple[np.ndarray, tuple]:
        """This layer then ``pool`` (a MaxPooling of the same rank) in one
        kernel call that never writes this layer's output to memory; both
        layers must be channels_last, this one of rank 1 or 2 without groups
        and with the kernels' fused ReLU.

        The context keeps this layer's input and the pool's argmax and
        output: the gradient is ``backward_max_pooled``'s."""
        self._check_max_pooled(pool)
        bias = self.bias.value if self.use_bias else None
        y, argmax = spatial.conv_max_pool(
            kernels(), x, self.kernel.value, bias, self.strides, self.padding,
            self.dilation_rate, pool.pool_size, pool.strides, pool.padding)
        return y, (x, argmax, y)

    def backward_max_pooled(self, ctx: tuple, dy: np.ndarray, pool: Any,
                            need_dx: bool = True) -> np.ndarray | None:
        """Backward through ``pool`` and this layer after ``forward_max_pooled``,
        in one kernel call that never writes the gradient of this layer's
        output to memory: dy is dL/d(pool's output)."""
        self._check_max_pooled(pool)
        x, argmax, y = ctx
        dy = np.ascontiguousarray(dy, dtype=self.dtype)
        need_w = self.trainable
        if not (need_dx or need_w):
            return None
        dx, dw, db = spatial.conv_max_pool_backward(
            kernels(), dy, argmax, x, self.kernel.value, y, self.strides, self.padding,
            self.dilation_rate, pool.pool_size, pool.strides, pool.padding, need_dx=need_dx,
            need_dw=need_w, need_db=need_w and self.use_bias)
        self._accumulate(dw, db, need_w)
        return dx


class Conv1D(BaseConv):
    """1-D convolution (temporal convolution) over ``(N, steps, channels)``
    inputs (channels_first: ``(N, channels, steps)``); ``padding="causal"``
    makes ``output[t]`` depend on ``input[:t + 1]`` only (WaveNet's dilated
    causal convolutions). Arguments as ``BaseConv``'s.

    Weights: kernel ``(kernel_size, C_in // groups, filters)``, bias ``(filters,)``.
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, groups: int = 1, activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(1, filters, kernel_size, strides, padding, data_format,
                         dilation_rate, groups, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


class Conv2D(BaseConv):
    """2-D convolution over ``(N, H, W, C)`` inputs (channels_first:
    ``(N, C, H, W)``). Arguments as ``BaseConv``'s.

    Weights: kernel ``(KH, KW, C_in // groups, filters)``, bias ``(filters,)``.
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1),
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = (1, 1), groups: int = 1, activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(2, filters, kernel_size, strides, padding, data_format,
                         dilation_rate, groups, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


class Conv3D(BaseConv):
    """3-D convolution over ``(N, D, H, W, C)`` inputs (channels_first:
    ``(N, C, D, H, W)``). Arguments as ``BaseConv``'s.

    Weights: kernel ``(KD, KH, KW, C_in // groups, filters)``, bias ``(filters,)``.
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1, 1),
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = (1, 1, 1), groups: int = 1, activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(3, filters, kernel_size, strides, padding, data_format,
                         dilation_rate, groups, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D

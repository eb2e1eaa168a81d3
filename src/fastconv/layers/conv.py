"""Conv2D: 2-D convolution layer on fastconv's compiled kernels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv import activations
from fastconv.layers.backend import kernels
from fastconv.layers.pooling import MaxPooling2D
from fastconv.layers.base import (
    KernelBiasLayer,
    Shape,
    check_ndim,
    normalize_data_format,
    normalize_padding,
    normalize_tuple,
)


class Conv2D(KernelBiasLayer):
    """2-D convolution: ``activation(conv(x, kernel) + bias)``, as Keras' Conv2D.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
    strides : int or (int, int)
    padding : "valid" or "same"
        "same" pads as TensorFlow does (extra row/column at the bottom/right).
    data_format : "channels_last" (default, NHWC) or "channels_first" (NCHW)
        channels_first inputs are transposed to NHWC for the kernels and back.
    dilation_rate : int or (int, int)
    activation : str, callable or None
    use_bias : bool
    kernel_initializer, bias_initializer
        Defaults "glorot_uniform" and "zeros".
    kernel_regularizer, bias_regularizer, activity_regularizer
    kernel_constraint, bias_constraint

    Weights: kernel ``(KH, KW, C_in, filters)`` and bias ``(filters,)``.
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, int],
                 strides: int | tuple[int, int] = (1, 1), padding: str = "valid",
                 data_format: str | None = None, dilation_rate: int | tuple[int, int] = (1, 1),
                 groups: int = 1, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters < 1:
            raise ValueError(
                "Invalid value for argument `filters`: expected a positive int, "
                f"received filters={filters!r}."
            )
        if groups != 1:
            raise ValueError(
                f"Invalid value for argument `groups`: only groups=1 is supported, "
                f"received groups={groups!r}."
            )
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")

    def _channels_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else -1

    def build(self, input_shape: Shape) -> None:
        check_ndim(self, input_shape, 4)
        c_in = input_shape[self._channels_axis()]
        self.build_kernel_and_bias((*self.kernel_size, c_in, self.filters), self.filters)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_ndim(self, input_shape, 4)
        if self.data_format == "channels_first":
            n, c, h, w = input_shape
        else:
            n, h, w, c = input_shape
        sizes = []
        for size, k, s, d in zip((h, w), self.kernel_size, self.strides, self.dilation_rate):
            extent = (k - 1) * d + 1
            if size is None:
                sizes.append(None)
            elif self.padding == "same":
                sizes.append(-(-size // s))
            elif size < extent:
                raise ValueError(
                    f"Layer '{self.name}': the input's spatial size {(h, w)} is smaller than "
                    f"the dilated kernel {(self.kernel_size, self.dilation_rate)}; use "
                    "padding='same' or a smaller kernel."
                )
            else:
                sizes.append((size - extent) // s + 1)
        if self.data_format == "channels_first":
            return (n, self.filters, *sizes)
        return (n, *sizes, self.filters)

    def forward_flops(self, batch: int) -> float:
        """2 FLOPs per multiply-add of the forward pass for ``batch`` images."""
        out = self.output_shape
        spatial = out[2] * out[3] if self.data_format == "channels_first" else out[1] * out[2]
        c_in = self.kernel.shape[2]
        return 2.0 * batch * spatial * math.prod(self.kernel_size) * c_in * self.filters

    def _fused_relu(self) -> bool:
        """Whether the activation is Keras' relu, which the kernels fuse."""
        return self.activation is activations.get("relu")

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        """The output, and the context ``(x, z, y)`` backward needs (``x`` in
        NHWC; ``z`` is None when the kernel applied the ReLU itself)."""
        first = self.data_format == "channels_first"
        if first:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        bias = self.bias.value if self.use_bias else None
        if self._fused_relu():
            # The kernel applies ReLU in its epilogue (elementwise, so the
            # layout does not matter); backward needs only y.
            z = None
            y = kernels().conv2d(x, self.kernel.value, bias, self.strides, self.padding,
                                 self.dilation_rate, activation="relu")
            if first:
                y = y.transpose(0, 3, 1, 2)
        else:
            z = kernels().conv2d(x, self.kernel.value, bias, self.strides, self.padding,
                                 self.dilation_rate)
            # Keras applies the activation to the output in its own layout
            # (softmax then runs over the last axis, as the losses expect).
            if first:
                z = z.transpose(0, 3, 1, 2)
            y = self.activation.forward(z)
        return y, (x, z, y)

    def _check_max_pooled(self, pool: Any) -> None:
        if not isinstance(pool, MaxPooling2D):
            raise TypeError(
                f"Invalid value for argument `pool`: expected a MaxPooling2D layer, "
                f"received {type(pool).__name__}."
            )
        if not self._fused_relu() or self.data_format != "channels_last" or (
                pool.data_format != "channels_last"):
            raise ValueError(
                f"Layer '{self.name}' runs fused with a max pool only with "
                f"activation='relu' and both layers channels_last; it has "
                f"activation={self.activation.name!r}, data_format="
                f"{self.data_format!r} (the pool: {pool.data_format!r})."
            )

    def forward_max_pooled(self, x: np.ndarray, pool: Any,
                           training: bool = False) -> tuple[np.ndarray, tuple]:
        """This layer then ``pool`` (a MaxPooling2D) in one kernel call that
        never writes this layer's output to memory; both layers must be
        channels_last, this one with the kernels' fused ReLU.

        The context keeps this layer's input and the pool's argmax and
        output: the gradient is ``backward_max_pooled``'s."""
        self._check_max_pooled(pool)
        bias = self.bias.value if self.use_bias else None
        y, argmax = kernels().conv2d_max_pool2d(
            x, self.kernel.value, bias, self.strides, self.padding, self.dilation_rate,
            activation="relu", pool_size=pool.pool_size, pool_strides=pool.strides,
            pool_padding=pool.padding)
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
        dx, dw, db = kernels().conv2d_max_pool2d_backward(
            dy, argmax, x, self.kernel.value, self.strides, self.padding,
            self.dilation_rate, activation="relu", pool_size=pool.pool_size,
            pool_strides=pool.strides, pool_padding=pool.padding, y=y, need_dx=need_dx,
            need_dw=need_w, need_db=need_w and self.use_bias,
        )
        if need_w:
            self.kernel.accumulate_grad(dw)
            if self.use_bias:
                self.bias.accumulate_grad(db)
        return dx

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True,
                 activation_done: bool = False) -> np.ndarray | None:
        """Gradients given dL/d(output); with ``activation_done`` dy is already
        dL/d(pre-activation) (the model's fused softmax + cross-entropy).
        Arrays are in the layer's data format."""
        x, z, y = ctx
        if activation_done:
            dz = dy
        elif self._fused_relu():
            dz = kernels().relu_backward(np.asarray(dy, dtype=self.dtype), y)
        else:
            dz = self.activation.backward(dy, z, y)
        if self.data_format == "channels_first":
            dz = dz.transpose(0, 2, 3, 1)
        dz = np.ascontiguousarray(dz, dtype=self.dtype)
        need_w = self.trainable
        if not (need_dx or need_w):
            return None
        dx, dw, db = kernels().conv2d_backward(
            dz, x, self.kernel.value, self.strides, self.padding, self.dilation_rate,
            need_dx=need_dx, need_dw=need_w, need_db=need_w and self.use_bias,
        )
        if need_w:
            self.kernel.accumulate_grad(dw)
            if self.use_bias:
                self.bias.accumulate_grad(db)
        if dx is not None and self.data_format == "channels_first":
            dx = dx.transpose(0, 3, 1, 2)
        return dx

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
        }

"""What the convolution and pooling layers share: data formats, padding,
output sizes and the input check of Keras' ``InputSpec``.

Shapes include the batch dimension first; a spatial size may be None
(unknown until data arrives), and then so is the output size it gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._validation_nd import conv_transpose_padding
from fastconv.layers.base import Layer, Shape, check_ndim
from fastconv.ops.spatial import conv_output_length


def conv_padding(value: Any, rank: int) -> str:
    """"valid" or "same" (any case), and "causal" for rank 1 (Conv1D)."""
    allowed = ("valid", "same", "causal") if rank == 1 else ("valid", "same")
    if not isinstance(value, str) or value.lower() not in allowed:
        expected = ("'valid', 'same' or 'causal'" if rank == 1
                    else "'valid' or 'same' ('causal' only for Conv1D)")
        raise ValueError(f"Invalid value for argument `padding`: expected {expected}, "
                         f"received padding={value!r}.")
    return value.lower()


def check_positive_int(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Invalid value for argument `{name}`: expected a positive int, "
                         f"received {name}={value!r}.")
    return int(value)


def check_strides_and_dilation(strides: tuple, dilation_rate: tuple) -> None:
    """Keras' rule for convolutions: not both a stride and a dilation above 1."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(
            "Invalid values for arguments `strides` and `dilation_rate`: `strides` > 1 is "
            f"not supported together with `dilation_rate` > 1, received strides={strides} "
            f"and dilation_rate={dilation_rate}.")


def channels_last_order(ndim: int) -> tuple[int, ...]:
    """The axes that turn (N, C, *spatial) into (N, *spatial, C)."""
    return (0, *range(2, ndim), 1)


def channels_first_order(ndim: int) -> tuple[int, ...]:
    """The axes that turn (N, *spatial, C) into (N, C, *spatial)."""
    return (0, ndim - 1, *range(1, ndim - 1))


class SpatialLayout:
    """Mixed into a layer over ``rank`` spatial axes with a ``data_format``
    (before its Layer base): once built, it checks the input's rank and
    channels but not its spatial sizes (as Keras' InputSpec does), and moves
    between the layer's layout and the kernels' channels-last one."""

    rank: int
    data_format: str
    name: str
    input_shape: Shape | None
    checks_channels = True  # pooling checks only the rank

    @property
    def channel_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else -1

    def split_shape(self, input_shape: Shape) -> tuple[Any, tuple, Any]:
        """(batch, spatial sizes, channels) of a shape in the layer's layout."""
        check_ndim(self, input_shape, self.rank + 2)
        if self.data_format == "channels_first":
            return input_shape[0], tuple(input_shape[2:]), input_shape[1]
        return input_shape[0], tuple(input_shape[1:-1]), input_shape[-1]

    def join_shape(self, batch: Any, spatial: tuple, channels: Any) -> Shape:
        if self.data_format == "channels_first":
            return (batch, channels, *spatial)
        return (batch, *spatial, channels)

    def _accepts_shape(self, input_shape: Any) -> bool:
        if not isinstance(input_shape, tuple) or len(input_shape) != self.rank + 2:
            return False
        if not self.checks_channels:
            return True
        axis = self.channel_axis
        known, given = self.input_shape[axis], input_shape[axis]
        return known is None or given is None or known == given

    def to_channels_last(self, x: np.ndarray) -> np.ndarray:
        if self.data_format != "channels_first":
            return x
        return np.ascontiguousarray(x.transpose(channels_last_order(x.ndim)))

    def from_channels_last(self, y: np.ndarray) -> np.ndarray:
        if self.data_format != "channels_first":
            return y
        return y.transpose(channels_first_order(y.ndim))


def conv_output_sizes(layer: Layer, spatial: tuple, kernel: tuple, strides: tuple,
                      dilation: tuple, padding: str, what: str = "the dilated kernel"
                      ) -> tuple:
    sizes = tuple(conv_output_length(n, k, s, d, padding)
                  for n, k, s, d in zip(spatial, kernel, strides, dilation))
    if any(s is not None and s < 1 for s in sizes):
        window = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
        raise ValueError(
            f"Layer '{layer.name}': the input's spatial size {spatial} is smaller than "
            f"{what} {window}; use padding='same' or a smaller window.")
    return sizes


def conv_transpose_output_sizes(spatial: tuple, kernel: tuple, strides: tuple,
                                dilation: tuple, padding: str,
                                output_padding: tuple | None) -> tuple:
    """Keras' output sizes of a transposed convolution (None stays None), by
    the rule the op uses (``conv_transpose_padding``)."""
    return tuple(
        None if n is None else conv_transpose_padding(
            n, k, s, d, padding, None if output_padding is None else output_padding[a])[0]
        for a, (n, k, s, d) in enumerate(zip(spatial, kernel, strides, dilation)))


class ActivatedOutput:
    """Mixed into the convolution layers: the activation applied to the
    convolution's output, in the layer's own layout as Keras applies it
    (softmax then runs over the last axis, as the losses expect), or by the
    kernel itself for relu (elementwise, so the layout does not matter;
    backward then needs only the output)."""

    activation: Any
    dtype: str

    def _fused_relu(self) -> bool:
        """Whether the activation is Keras' relu, which the kernels fuse."""
        from fastconv import activations
        return self.activation is activations.get("relu")

    def activated(self, compute: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(y, z)``: the output in the layer's layout and the pre-activation
        (None when the kernel applied the ReLU), where ``compute(x,
        activation)`` convolves the channels-last ``x``."""
        if self._fused_relu():
            return self.from_channels_last(compute(x, "relu")), None
        z = self.from_channels_last(compute(x, None))
        return self.activation.forward(z), z

    def preactivation_gradient(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray,
                               activation_done: bool) -> np.ndarray:
        """dL/d(pre-activation), channels-last and contiguous, given dL/dy in
        the layer's layout (with ``activation_done`` dy already is it: the
        model's fused softmax + cross-entropy)."""
        from fastconv.layers.backend import kernels

        if activation_done:
            dz = dy
        elif z is None:
            dz = kernels().relu_backward(np.asarray(dy, dtype=self.dtype), y)
        else:
            dz = self.activation.backward(dy, z, y)
        return np.ascontiguousarray(self.to_channels_last(dz), dtype=self.dtype)

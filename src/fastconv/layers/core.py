"""Core layers: Input, Dense, Flatten, Reshape, Dropout, Identity and Lambda.
The activation layers (Activation, ReLU, Softmax, ...) live in
``fastconv.layers.activations`` and are importable from here too."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv.graph.node import KerasTensor, Node

# The activation layers, importable from here as before they had a module.
from fastconv.layers.activations import Activation, ReLU, Softmax  # noqa: F401
from fastconv.layers.base import (
    KernelBiasLayer,
    Layer,
    Shape,
    _check_shape_arg,
    normalize_data_format,
)
from fastconv.ops import dense as _dense
from fastconv.runtime import random as _random


def _input_dtype(dtype: Any) -> str:
    """An Input's dtype: a float dtype of the layers, or an integer dtype."""
    if isinstance(dtype, dict):  # Keras 3's DTypePolicy config
        dtype = dtype.get("config", {}).get("name", "float32")
    if dtype is None:
        return "float32"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _INPUT_DTYPES:
        raise ValueError(f"Invalid value for argument `dtype`: expected one of "
                         f"{list(_INPUT_DTYPES)}, received dtype={dtype!r}.")
    return name


_INPUT_DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                 "uint32", "uint64")


class InputLayer(Layer):
    """The entry point of a model: holds the shape of one batch of inputs.

    ``dtype`` is "float32" (default), "float64", or an integer dtype such as
    "int32" / "int64": integer data then reaches the layers as integers (an
    ``Embedding`` reads them as indices; float layers cast them to their own
    dtype, as Keras computes them).
    """

    def __init__(self, shape: tuple | None = None, batch_size: int | None = None,
                 dtype: str | None = None, name: str | None = None,
                 batch_shape: tuple | None = None, input_shape: tuple | None = None,
                 batch_input_shape: tuple | None = None, **kwargs: Any) -> None:
        # Keras 3 still accepts the Keras 2 names of both arguments.
        shape = input_shape if shape is None else shape
        batch_shape = batch_input_shape if batch_shape is None else batch_shape
        if batch_shape is None:
            if shape is None:
                raise ValueError("Invalid arguments: `shape` (one sample's shape) or "
                                 "`batch_shape` is required, received neither.")
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                           or isinstance(batch_size, bool) or batch_size < 1):
                raise ValueError(f"Invalid value for argument `batch_size`: expected a positive "
                                 f"int or None, received batch_size={batch_size!r}.")
            batch_shape = (batch_size, *_check_shape_arg(shape, "shape"))
        batch_shape = _check_shape_arg(batch_shape, "batch_shape")
        input_dtype = _input_dtype(dtype)
        super().__init__(name=name, dtype=None if input_dtype.startswith(("int", "uint"))
                         else input_dtype, batch_input_shape=batch_shape, **kwargs)
        # Integer inputs (indices for an Embedding) stay integers through the
        # graph; the float layers they reach cast them (fastconv.graph.executor).
        self.dtype = input_dtype
        self.built = True
        self.input_shape = self.output_shape = self.batch_input_shape
        self.output = KerasTensor(self.batch_input_shape, self.dtype, name=self.name)
        self._inbound_nodes.append(Node(self, [], "single", [self.output], "single"))

    is_input_layer = True

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        return x, None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype,
                "batch_shape": list(self.batch_input_shape)}


def Input(shape: tuple | None = None, batch_size: int | None = None, dtype: str | None = None,
          name: str | None = None, batch_shape: tuple | None = None) -> KerasTensor:
    """A symbolic input of one sample's ``shape`` (Keras' ``keras.Input``)."""
    return InputLayer(shape, batch_size, dtype, name, batch_shape).output


class _WithActivation(Layer):
    """A layer whose output passes through an activation function; its
    context keeps the pre-activation ``z`` and the output ``y`` the
    activation's backward needs."""

    def _activation_backward(self, dy: np.ndarray, z: np.ndarray, y: np.ndarray,
                             activation_done: bool) -> np.ndarray:
        return dy if activation_done else self.activation.backward(dy, z, y)


class Dense(_WithActivation, KernelBiasLayer):
    """Fully connected layer: ``activation(x @ kernel + bias)`` over the last axis.

    Weights: kernel ``(input_dim, units)`` and bias ``(units,)``. Computed with
    fastconv's dense kernel (``fastconv.ops.dense``).
    """

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Invalid value for argument `units`: expected a positive int, "
                             f"received units={units!r}.")
        self.units = int(units)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' needs a known last input dimension, "
                             f"received input shape {tuple(input_shape)}.")
        self.build_kernel_and_bias((input_shape[-1], self.units), self.units)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def forward_flops(self, batch: int) -> float:
        """2 FLOPs per multiply-add of the forward pass for ``batch`` samples."""
        rows = batch * math.prod(self.input_shape[1:-1])
        return 2.0 * rows * self.kernel.shape[0] * self.units

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        w = self.kernel.value
        x = x.astype(w.dtype, copy=False)  # the models cast already; a direct call may not
        z = _dense.linear(x.reshape(-1, x.shape[-1]), w,
                          self.bias.value if self.use_bias else None)
        z = z.reshape(*x.shape[:-1], self.units)
        y = self.activation.forward(z)
        return y, (x, z, y)

    def forward_scaled(self, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """``scale * (x @ kernel + bias) + shift`` per unit (scale and shift
        float64 (units,)) with the kernel and bias scaled first: the inference
        pass of this layer followed by a BatchNormalization. Only for a linear
        activation."""
        dtype = self.kernel.value.dtype
        x = x.astype(dtype, copy=False)
        w = (self.kernel.value * scale).astype(dtype)
        b = (shift if not self.use_bias else self.bias.value * scale + shift).astype(dtype)
        z = _dense.linear(x.reshape(-1, x.shape[-1]), w, b)
        return z.reshape(*x.shape[:-1], self.units)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True,
                 activation_done: bool = False) -> np.ndarray | None:
        """Gradients given dL/d(output); with ``activation_done`` dy is already
        dL/d(pre-activation) (the model's fused softmax + cross-entropy)."""
        x, z, y = ctx
        dz = self._activation_backward(dy, z, y, activation_done)
        x2 = x.reshape(-1, x.shape[-1])
        dz2 = np.ascontiguousarray(dz, dtype=x.dtype).reshape(-1, self.units)
        if self.trainable:
            self.kernel.accumulate_grad(_dense.linear_weight_gradient(x2, dz2, len(x)))
            if self.use_bias:
                # The column sums of dz by the same chunked kernel (a row of
                # ones times dz: each chunk's rows added in order, then the
                # chunks in order), one call instead of one NumPy sum a chunk.
                ones = np.ones((len(x2), 1), dtype=x2.dtype)
                self.bias.accumulate_grad(_dense.linear_weight_gradient(ones, dz2, len(x))[0])
        if not need_dx:
            return None
        return _dense.linear_input_gradient(dz2, self.kernel.value).reshape(x.shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
        }


class Flatten(Layer):
    """Flattens each sample to one axis (channels-last order, as Keras)."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def _channels_first(self, ndim: int) -> bool:
        return self.data_format == "channels_first" and ndim > 2

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        shape = x.shape
        if self._channels_first(x.ndim):
            x = np.moveaxis(x, 1, -1)
        return np.ascontiguousarray(x).reshape(x.shape[0], -1), shape

    def backward(self, shape: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        if self._channels_first(len(shape)):
            moved = (shape[0], *shape[2:], shape[1])
            return np.moveaxis(dy.reshape(moved), -1, 1)
        return dy.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape: tuple, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (not isinstance(target_shape, (tuple, list)) or not target_shape
                or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                           and (d > 0 or d == -1) for d in target_shape)
                or list(target_shape).count(-1) > 1):
            raise ValueError(
                "Invalid value for argument `target_shape`: expected a tuple of positive "
                f"ints with at most one -1, received target_shape={target_shape!r}."
            )
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if any(d is None for d in input_shape[1:]):  # the -1 entry stays unknown (Keras)
            return (input_shape[0], *(None if d == -1 else d for d in self.target_shape))
        size = math.prod(input_shape[1:])
        known = math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and size % known) or (
                -1 not in self.target_shape and known != size):
            raise ValueError(
                f"Layer '{self.name}': cannot reshape input of shape {tuple(input_shape)} "
                f"({size} values per sample) to {self.target_shape}."
            )
        return (input_shape[0], *(size // known if d == -1 else d for d in self.target_shape))

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        return x.reshape(x.shape[0], *self.target_shape), x.shape

    def backward(self, shape: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return dy.reshape(shape) if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Dropout(Layer):
    """Sets a random fraction ``rate`` of inputs to 0 during training and scales
    the rest by 1 / (1 - rate); the identity at inference."""

    def __init__(self, rate: float, noise_shape: tuple | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float, np.floating)) or isinstance(rate, bool) or not (
                0 <= rate < 1):
            raise ValueError(f"Invalid value for argument `rate`: expected a float in [0, 1), "
                             f"received rate={rate!r}.")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def restart_random_state(self) -> None:
        if self.seed is not None:
            self._rng = np.random.default_rng(self.seed)

    def _noise_shape(self, shape: tuple) -> tuple:
        """The mask's shape for an input of ``shape`` (broadcast over the axes of size 1)."""
        if self.noise_shape is None:
            return shape
        return tuple(shape[i] if d is None else d for i, d in enumerate(self.noise_shape))

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        if not training or self.rate == 0:
            return x, None
        draws = _random.LayerDraws(self._rng, len(x))
        keep = _random.uniform_mask(draws, self._noise_shape(x.shape), self.noise_shape) >= self.rate
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * mask, mask

    def backward(self, mask: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        return dy if mask is None else dy * mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                "seed": self.seed}


class Identity(Layer):
    """Returns its input unchanged (one tensor or a list of them); a
    placeholder where no operation is to be performed."""

    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list):
            return [tuple(shape) for shape in input_shape]
        return tuple(input_shape)

    def forward(self, x: Any, training: bool = False) -> tuple[Any, None]:
        return x, None

    def backward(self, ctx: None, dy: Any, need_dx: bool = True) -> Any:
        return dy if need_dx else None


class Lambda(Layer):
    """Wraps a function of the inputs written with Keras ops (``fastconv.ops``)
    as a layer; it is traced and differentiated like any ``call``.

    ``output_shape`` is accepted for compatibility (fastconv infers it).
    Python code cannot be saved: a model holding a Lambda saves only after
    replacing it by a registered layer class.
    """

    def __init__(self, function: Any, output_shape: Any = None, mask: Any = None,
                 arguments: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Invalid value for argument `function`: expected a callable, "
                            f"received {function!r}.")
        self.function = function
        self.arguments = dict(arguments or {})

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.function(inputs, **self.arguments)

    def get_config(self) -> dict[str, Any]:
        raise TypeError(f"Layer '{self.name}' (Lambda) wraps Python code, which fastconv does "
                        "not save; write it as a Layer subclass registered with "
                        "fastconv.saving.register_keras_serializable.")

"""The layer lifecycle shared by every layer, the weights it owns, and the
symbolic tensors that connect layers into models.

A layer follows Keras' lifecycle:

- ``__init__`` normalises and checks its arguments (nothing is allocated);
- ``build(input_shape)`` creates the weights once the input shape is known;
- ``compute_output_shape(input_shape)`` gives the output shape without data;
- ``forward(x, training)`` computes the output and keeps only what
  ``backward`` will need; ``backward(dy, need_dx)`` returns dL/dx (or None
  when ``need_dx`` is False) and stores the weight gradients in each
  ``Variable.grad``;
- ``get_config()`` / ``from_config()`` describe it for saving.

Every shape here includes the batch dimension first (None when unknown),
as Keras' ``input_shape`` / ``output_shape`` do; only the ``input_shape=``
argument of a first layer gives one sample's shape.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np

from fastconv import activations as activations_module
from fastconv import constraints as constraints_module
from fastconv import initializers as initializers_module
from fastconv import regularizers as regularizers_module
from fastconv._restore import stored_weight

Shape = tuple  # a shape with the batch dimension first (None when unknown)

_name_counts: defaultdict[str, int] = defaultdict(int)


def unique_name(prefix: str) -> str:
    """Keras' automatic names: "conv2d", then "conv2d_1", "conv2d_2", ..."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def reset_names() -> None:
    """Restart automatic naming (``fastconv.backend.clear_session``)."""
    _name_counts.clear()


def snake_case(name: str) -> str:
    """MaxPooling2D -> max_pooling2d, as Keras names layers."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Variable:
    """A weight: its value, its gradient and how it is kept in bounds.

    ``value`` is updated in place by the optimizer; ``grad`` has the same
    shape and is written by the owning layer's ``backward``.
    """

    def __init__(self, value: np.ndarray, name: str, trainable: bool = True,
                 regularizer: Any = None, constraint: Any = None) -> None:
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def numpy(self) -> np.ndarray:
        """A copy of the value."""
        return self.value.copy()

    def assign(self, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(
                f"Invalid shape for variable `{self.name}`: expected {self.value.shape}, "
                f"received {value.shape}."
            )
        self.value[...] = value

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable {self.name} shape={self.shape} dtype={self.dtype}>"


class KerasTensor:
    """A symbolic tensor: the shape of a layer's output, and where it came from.

    ``fastconv.Input`` makes one with no producing layer; calling a layer on a
    KerasTensor builds the layer and returns the KerasTensor of its output.
    Models follow these links back from their outputs to their inputs.
    """

    def __init__(self, shape: Shape, dtype: str = "float32", layer: Layer | None = None,
                 source: KerasTensor | None = None, name: str | None = None) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.layer = layer
        self.source = source
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        producer = f", produced by {self.layer.name}" if self.layer is not None else ""
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}{producer}>"


def _check_shape_arg(value: Any, name: str) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(
        v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0)
        for v in value
    ):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a tuple of positive ints "
            f"(or None), received {name}={value!r}."
        )
    return tuple(None if v is None else int(v) for v in value)


class Layer:
    """Base class of every layer.

    Parameters
    ----------
    name : str, optional
        Unique name; by default the snake_case class name with a counter.
    trainable : bool
        Whether the optimizer updates this layer's weights.
    dtype : str
        "float32" (default) or "float64" (used by gradient checks).
    input_shape : tuple, optional
        Shape of one sample (without the batch), for the first layer of a
        ``Sequential`` model, as in Keras.
    """

    def __init__(self, name: str | None = None, trainable: bool = True,
                 dtype: str | None = None, input_shape: tuple | None = None,
                 batch_input_shape: tuple | None = None, activity_regularizer: Any = None,
                 input_dim: int | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                f"{sorted(kwargs)}."
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Invalid value for argument `name`: expected a non-empty "
                             f"string, received name={name!r}.")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        dtype = "float32" if dtype is None else np.dtype(dtype).name
        if dtype not in ("float32", "float64"):
            raise ValueError(f"Invalid value for argument `dtype`: expected 'float32' or "
                             f"'float64', received dtype={dtype!r}.")
        self.dtype = dtype
        self.batch_input_shape: tuple | None = None
        if batch_input_shape is not None:
            self.batch_input_shape = _check_shape_arg(batch_input_shape, "batch_input_shape")
        elif input_shape is not None:
            self.batch_input_shape = (None, *_check_shape_arg(input_shape, "input_shape"))
        elif input_dim is not None:  # Keras' shorthand for input_shape=(input_dim,)
            self.batch_input_shape = (None, *_check_shape_arg((input_dim,), "input_dim"))
        # A penalty on the layer's output, added to the loss as Keras 3 does
        # (not divided by the batch size); the model applies it around
        # forward/backward.
        self.activity_regularizer = regularizers_module.get(activity_regularizer)
        self.built = False
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.output: KerasTensor | None = None
        self.input: KerasTensor | None = None
        self._weights: list[Variable] = []

    # -- lifecycle ---------------------------------------------------------

    def build(self, input_shape: Shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch first)."""
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def ensure_built(self, input_shape: Shape) -> None:
        """Build on first use, then insist on a compatible input shape."""
        input_shape = tuple(input_shape)
        if not self.built:
            # The shape check comes first: a rejected shape leaves the layer unbuilt.
            output_shape = self.compute_output_shape((None, *input_shape[1:]))
            self.build(input_shape)
            self.built = True
            self.input_shape = (None, *input_shape[1:])
            self.output_shape = output_shape
        elif len(input_shape) != len(self.input_shape) or any(
                a is not None and b is not None and a != b
                for a, b in zip(input_shape[1:], self.input_shape[1:])):
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"shape {self.input_shape}, found shape {input_shape}."
            )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, inputs: Any, training: bool = False) -> Any:
        """Symbolically on a KerasTensor (returns the output KerasTensor), or
        eagerly on an array (returns the output array)."""
        if isinstance(inputs, KerasTensor):
            self.ensure_built(inputs.shape)
            out = KerasTensor(self.compute_output_shape(inputs.shape), inputs.dtype,
                              layer=self, source=inputs)
            if self.output is None:
                # As in Keras, layer.input / layer.output are those of the
                # first call; later calls (a model reused on a new Input) must
                # not disconnect the models built on the first.
                self.input, self.output = inputs, out
            return out
        x = np.asarray(inputs, dtype=self.dtype)
        self.ensure_built(x.shape)
        return self.forward(x, training=training)

    # -- weights -----------------------------------------------------------

    def add_weight(self, name: str, shape: tuple, initializer: Any = "zeros",
                   regularizer: Any = None, constraint: Any = None,
                   trainable: bool = True) -> Variable:
        init = initializers_module.get(initializer)
        value = stored_weight(shape, self.dtype, f"{self.name}/{name}")  # loading a model file
        if value is None:
            value = np.ascontiguousarray(init(tuple(shape), dtype=self.dtype), dtype=self.dtype)
        var = Variable(value, f"{self.name}/{name}", trainable, regularizer, constraint)
        self._weights.append(var)
        return var

    @property
    def weights(self) -> list[Variable]:
        return list(self._weights)

    @property
    def trainable_weights(self) -> list[Variable]:
        return [w for w in self._weights if w.trainable and self.trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [w for w in self._weights if not (w.trainable and self.trainable)]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras' order (e.g. kernel, then bias)."""
        return [w.numpy() for w in self._weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace the weights; shapes must match ``get_weights()``'s."""
        if len(weights) != len(self._weights):
            raise ValueError(
                f"Layer '{self.name}' expects {len(self._weights)} weight arrays, "
                f"received {len(weights)}."
            )
        for var, value in zip(self._weights, weights):
            var.assign(np.asarray(value, dtype=self.dtype))

    def count_params(self) -> int:
        return int(sum(w.value.size for w in self._weights))

    def regularization_loss(self) -> float:
        """Sum of the trainable weights' penalties (0 without regularizers);
        frozen weights add nothing, as in Keras 3."""
        return float(sum(w.regularizer(w.value) for w in self.trainable_weights
                         if w.regularizer))

    def add_regularization_gradients(self) -> None:
        """Add each trainable weight's penalty gradient to its gradient."""
        for w in self.trainable_weights:
            if w.regularizer is not None:
                w.grad += w.regularizer.gradient(w.value).astype(w.dtype, copy=False)

    def apply_constraints(self) -> None:
        """Project each constrained weight back into its set (after an update)."""
        for w in self._weights:
            if w.constraint is not None:
                w.value[...] = w.constraint(w.value)

    # -- config ------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": self.dtype}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers_module.serialize(
                self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"



class KernelBiasLayer(Layer):
    """A layer with an activation, a kernel and an optional bias, each with
    Keras' initializer, regularizer and constraint arguments (Conv2D, Dense)."""

    def __init__(self, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers_module.get(kernel_initializer)
        self.bias_initializer = initializers_module.get(bias_initializer)
        self.kernel_regularizer = regularizers_module.get(kernel_regularizer)
        self.bias_regularizer = regularizers_module.get(bias_regularizer)
        self.kernel_constraint = constraints_module.get(kernel_constraint)
        self.bias_constraint = constraints_module.get(bias_constraint)
        self.kernel = self.bias = None

    def build_kernel_and_bias(self, kernel_shape: tuple, units: int) -> None:
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer,
                                      self.kernel_regularizer, self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (units,), self.bias_initializer,
                                        self.bias_regularizer, self.bias_constraint)
        self.built = True

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "activation": activations_module.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers_module.serialize(self.kernel_initializer),
            "bias_initializer": initializers_module.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers_module.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers_module.serialize(self.bias_regularizer),
            "kernel_constraint": constraints_module.serialize(self.kernel_constraint),
            "bias_constraint": constraints_module.serialize(self.bias_constraint),
        }

# ----------------------------------------------------------------------------
# argument normalisation shared by the layers (Keras' rules and messages)


def normalize_tuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    """An int or n ints, each >= 1, as an n-tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        result = (int(value),) * n
    elif (isinstance(value, (tuple, list)) and len(value) == n
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        result = tuple(int(v) for v in value)
    else:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected an int or a tuple of {n} "
            f"ints, received {name}={value!r}."
        )
    if min(result) < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected positive ints, "
            f"received {name}={value!r}."
        )
    return result


def check_ndim(layer: Layer, input_shape: Shape, ndim: int) -> None:
    """Keras' message for an input of the wrong rank."""
    if len(input_shape) != ndim:
        raise ValueError(
            f"Input 0 of layer '{layer.name}' is incompatible with the layer: expected "
            f"ndim={ndim}, found ndim={len(input_shape)}. Full shape received: "
            f"{tuple(input_shape)}"
        )


def normalize_padding(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in ("valid", "same"):
        raise ValueError(
            "Invalid value for argument `padding`: expected 'valid' or 'same', "
            f"received padding={value!r}."
        )
    return value.lower()


def normalize_data_format(value: Any) -> str:
    value = "channels_last" if value is None else value
    if not isinstance(value, str) or value.lower() not in ("channels_last", "channels_first"):
        raise ValueError(
            "Invalid value for argument `data_format`: expected 'channels_last' or "
            f"'channels_first', received data_format={value!r}."
        )
    return value.lower()

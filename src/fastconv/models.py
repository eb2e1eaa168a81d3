"""Models: ``Sequential`` and the functional ``Model(inputs, outputs)``.

A model is a chain of layers: each layer's output feeds the next. Building
connects the layers with symbolic tensors (``layer.output``), so the idiom
``Model(inputs=model.inputs, outputs=model.layers[i].output)`` gives a model
that shares the first i + 1 layers (and their weights) and returns that
layer's output. Training lives in ``fastconv._training``; files in
``fastconv.saving``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fastconv import _summary, saving
from fastconv._training import Trainer
from fastconv.layers.base import KerasTensor, Layer, unique_name
from fastconv.layers.core import InputLayer


class Model(Trainer):
    """A chain of layers from ``inputs`` (a ``fastconv.Input``) to ``outputs``.

    Parameters
    ----------
    inputs : KerasTensor or [KerasTensor]
        The model's input, made by ``fastconv.Input`` (or ``model.inputs``).
    outputs : KerasTensor or [KerasTensor]
        A tensor obtained by calling layers on ``inputs`` one after another.
    name : str, optional
    """

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None) -> None:
        self.name = name or unique_name(self._default_name())
        self.compiled = False
        self.optimizer = self.loss = None
        self.stop_training = False
        self.history = None
        self._chain: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self._outputs_tensor: KerasTensor | None = None
        if type(self) is Model or inputs is not None or outputs is not None:
            self._init_functional(inputs, outputs)

    @staticmethod
    def _default_name() -> str:
        return "functional"

    @staticmethod
    def _single(value: Any, name: str) -> KerasTensor:
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        if not isinstance(value, KerasTensor):
            raise ValueError(
                f"Invalid value for argument `{name}`: expected one KerasTensor (from "
                f"fastconv.Input or layer.output), received {value!r}. Multi-input and "
                "multi-output models are not supported."
            )
        return value

    def _init_functional(self, inputs: Any, outputs: Any) -> None:
        inputs = self._single(inputs, "inputs")
        outputs = self._single(outputs, "outputs")
        chain: list[Layer] = []
        tensor = outputs
        while tensor is not inputs:
            if tensor.layer is None or tensor.source is None:
                raise ValueError("`outputs` is not connected to `inputs`: the chain of layers "
                                 "from outputs back does not reach the given input tensor.")
            chain.append(tensor.layer)
            tensor = tensor.source
        if not isinstance(inputs.layer, InputLayer):
            raise ValueError("Invalid value for argument `inputs`: expected a tensor made by "
                             "fastconv.Input (or model.inputs).")
        self._input_layer = inputs.layer
        self._chain = chain[::-1]
        self._outputs_tensor = outputs

    # -- structure ---------------------------------------------------------

    @property
    def layers(self) -> list[Layer]:
        """The layers, input layer first (as Keras lists a functional model's)."""
        return [self._input_layer, *self._chain] if self._input_layer else list(self._chain)

    @property
    def built(self) -> bool:
        return self._input_layer is not None

    @property
    def inputs(self) -> list[KerasTensor]:
        self._require_built("inputs")
        return [self._input_layer.output]

    @property
    def outputs(self) -> list[KerasTensor]:
        self._require_built("outputs")
        return [self._outputs_tensor]

    @property
    def input_shape(self) -> tuple:
        self._require_built("input_shape")
        return self._input_layer.batch_input_shape

    @property
    def output_shape(self) -> tuple:
        return self.outputs[0].shape

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(
                f"The model '{self.name}' has not been built yet, so `{what}` is not "
                "defined. Give the first layer an `input_shape`, start with "
                "`fastconv.Input(shape)`, or call `build(input_shape)` / `fit` first."
            )

    def _dtype(self) -> str:
        return self._chain[0].dtype if self._chain else "float32"

    def _ensure_built(self, data_shape: tuple) -> None:
        """Check data against the built input shape."""
        self._require_built("the input shape")
        expected = self.input_shape[1:]
        if tuple(data_shape[1:]) != tuple(expected):
            raise ValueError(
                f"Input of model '{self.name}' is incompatible: expected shape "
                f"{self.input_shape}, received data of shape {tuple(data_shape)}."
            )

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}.")

    def __call__(self, x: Any, training: bool = False) -> Any:
        if isinstance(x, KerasTensor):
            for layer in self._chain:
                x = layer(x)
            return x
        x = np.asarray(x, dtype=self._dtype())
        self._ensure_built(x.shape)
        return self._forward_collect(x, training=training)[0]

    # -- weights -----------------------------------------------------------

    @property
    def trainable(self) -> bool:
        return all(layer.trainable for layer in self._chain)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """``model.trainable = False`` freezes every layer, as in Keras."""
        for layer in self._chain:
            layer.trainable = bool(value)

    @property
    def weights(self) -> list:
        return [w for layer in self._chain for w in layer.weights]

    @property
    def trainable_weights(self) -> list:
        return [w for layer in self._chain for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list:
        return [w for layer in self._chain for w in layer.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        return [w for layer in self._chain for w in layer.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        expected = [w.shape for w in self.weights]
        if len(weights) != len(expected):
            raise ValueError(f"Model '{self.name}' expects {len(expected)} weight arrays, "
                             f"received {len(weights)}.")
        start = 0
        for layer in self._chain:
            n = len(layer.weights)
            layer.set_weights(list(weights[start:start + n]))
            start += n

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self._chain)

    def summary(self, line_length: int | None = None, positions: Any = None,
                print_fn: Any = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Print Keras' table of layers, output shapes and parameter counts.

        ``print_fn`` receives each line; ``line_length``, ``positions``,
        ``expand_nested``, ``show_trainable`` and ``layer_range`` are accepted
        for compatibility and ignored (the table has fixed columns)."""
        self._require_built("summary")
        _summary.print_summary(self, print_fn or print)

    # -- config and files --------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The architecture: the input layer (when built) then every layer."""
        head = [self._input_layer] if self._input_layer is not None else []
        return {
            "name": self.name,
            "layers": [saving.serialize_layer(layer) for layer in [*head, *self._chain]],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps({"class_name": type(self).__name__ if type(self) is not Model
                           else "Functional", "config": self.get_config()}, **kwargs)

    def save(self, filepath: str, overwrite: bool = True) -> None:
        """Save architecture, weights, compile settings and optimizer state to one
        file (a zip of JSON and .npz; never pickle). The write is atomic."""
        saving.save_model(self, filepath, overwrite)

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """Save the weights alone to an .npz file (atomic write)."""
        saving.save_weights(self, filepath, overwrite)

    def load_weights(self, filepath: str) -> None:
        """Load weights saved by ``save_weights`` (or ``save``) into this model."""
        saving.load_weights(self, filepath)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class Sequential(Model):
    """A linear stack of layers, as Keras' ``Sequential``.

    ``Sequential([layers...])`` or ``Sequential()`` then ``add(layer)``. The
    input shape comes from ``input_shape=`` on the first layer, a leading
    ``fastconv.Input(shape)``, ``build(input_shape)``, or the first ``fit`` /
    ``predict`` call.
    """

    def __init__(self, layers: list | None = None, name: str | None = None,
                 trainable: bool = True) -> None:
        super().__init__(name=name)
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    @staticmethod
    def _default_name() -> str:
        return "sequential"

    @property
    def layers(self) -> list[Layer]:
        """The layers, without the input layer (as Keras lists a Sequential's)."""
        return list(self._chain)

    def add(self, layer: Any) -> None:
        """Append a layer (or set the input with a leading ``fastconv.Input``)."""
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._chain or self._input_layer is not None:
                raise ValueError("An Input can only be the first element of a Sequential model.")
            self._input_layer = layer
            self._outputs_tensor = layer.output
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Only instances of fastconv.layers.Layer can be added to a "
                            f"Sequential model, received {layer!r} of type {type(layer).__name__}.")
        if isinstance(layer, Model):
            raise TypeError("Nested models are not supported; add their layers instead.")
        if any(existing is layer for existing in self._chain):
            raise ValueError(f"Layer '{layer.name}' is already in this model.")
        if not self._chain and self._input_layer is None and layer.batch_input_shape is not None:
            self._input_layer = InputLayer(batch_shape=layer.batch_input_shape)
        self._chain.append(layer)
        if self._input_layer is not None:
            self._connect()

    def pop(self) -> Layer:
        if not self._chain:
            raise IndexError("There are no layers in the model to pop.")
        layer = self._chain.pop()
        if self._input_layer is not None:
            self._connect()
        return layer

    def _connect(self) -> None:
        """Build every layer symbolically from the input (sets each layer.output)."""
        tensor = self._input_layer.output
        for layer in self._chain:
            if layer.output is not None and layer.input is tensor:
                tensor = layer.output
                continue
            tensor = layer(tensor)
        self._outputs_tensor = tensor

    def build(self, input_shape: tuple) -> None:
        """Build for inputs of ``input_shape`` (batch dimension first)."""
        if self._input_layer is None:
            self._input_layer = InputLayer(batch_shape=(None, *tuple(input_shape)[1:]))
        self._connect()

    def _ensure_built(self, data_shape: tuple) -> None:
        if self._input_layer is None:
            if not self._chain:
                raise ValueError(f"The model '{self.name}' has no layers.")
            self.build(data_shape)
        super()._ensure_built(data_shape)


def load_model(filepath: str, custom_objects: dict | None = None, compile: bool = True) -> Model:
    """Load a model saved by ``model.save`` (reads JSON and .npz; never executes code).

    ``custom_objects`` is accepted for compatibility and ignored: only
    fastconv's own layers, losses, optimizers and metrics can be saved."""
    return saving.load_model(filepath, compile=compile)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    """A new model (fresh weights) from ``model.to_json()``."""
    return saving.model_from_config(saving.parse_json(json_string, "the JSON string"),
                                   "the JSON string")


def clone_model(model: Model) -> Model:
    """A model with the same architecture and fresh weights."""
    return saving.model_from_config(json.loads(model.to_json()))

"""``Sequential``: a stack of layers, each reading the previous one's output.

Once the input shape is known (``input_shape=`` on the first layer, a
leading ``fastconv.Input``, ``build`` or the first ``fit`` / ``predict``),
the stack is called on the input tensor and runs as a functional graph. A
whole model can be one of the layers.
"""

from __future__ import annotations

from typing import Any

from fastconv.graph.function import Function
from fastconv.graph.node import KerasTensor
from fastconv.layers.base import Layer
from fastconv.layers.core import InputLayer
from fastconv.models.functional import Functional
from fastconv.models.model import Model


class Sequential(Functional):
    """A linear stack of layers, as Keras' ``Sequential``.

    ``Sequential([layers...])`` or ``Sequential()`` then ``add(layer)``.
    """

    def __init__(self, layers: list | None = None, name: str | None = None,
                 trainable: bool = True) -> None:
        self._init_model(name, True)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self._function = None
        self._plan = None
        self._output_tensor: KerasTensor | None = None
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    def _default_name(self) -> str:
        return "sequential"

    @property
    def built(self) -> bool:
        return self._input_layer is not None and getattr(self, "_function", None) is not None

    @built.setter
    def built(self, value: bool) -> None:
        pass

    @property
    def layers(self) -> list[Layer]:
        """The layers, without the input layer (as Keras lists a Sequential's)."""
        return list(self._stack)

    def _sublayers(self) -> list[Layer]:
        return list(self._stack)

    def add(self, layer: Any) -> None:
        """Append a layer (or set the input with a leading ``fastconv.Input``)."""
        if isinstance(layer, KerasTensor) and getattr(layer.operation, "is_input_layer", False):
            layer = layer.operation
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("An Input can only be the first element of a Sequential model.")
            self._input_layer = layer
            self._output_tensor = layer.output
            self._connect()
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Only instances of fastconv.layers.Layer can be added to a "
                            f"Sequential model, received {layer!r} of type {type(layer).__name__}.")
        if any(existing is layer for existing in self._stack):
            raise ValueError(f"Layer '{layer.name}' is already in this model.")
        if not self._stack and self._input_layer is None:
            shape = _known_input_shape(layer)
            if shape is not None:
                self._input_layer = InputLayer(batch_shape=shape)
                self._output_tensor = self._input_layer.output
        self._stack.append(layer)
        if self._input_layer is not None:
            self._output_tensor = layer(self._output_tensor)
            self._connect(rebuild=False)

    def pop(self) -> Layer:
        if not self._stack:
            raise IndexError("There are no layers in the model to pop.")
        layer = self._stack.pop()
        if self._input_layer is not None:
            self._output_tensor = self._input_layer.output
            for existing in self._stack:
                self._output_tensor = existing(self._output_tensor)
            self._connect(rebuild=False)
        return layer

    def _connect(self, rebuild: bool = True) -> None:
        """Call every layer on the input (unless done) and keep the graph."""
        if rebuild:
            tensor = self._input_layer.output
            for layer in self._stack:
                tensor = layer(tensor)
            self._output_tensor = tensor
        self._function = Function(self._input_layer.output, self._output_tensor,
                                  owner=f"model '{self.name}'")
        self._plan = None
        self._check_names()

    def build(self, input_shape: Any = None) -> None:
        """Build for inputs of ``input_shape`` (batch dimension first)."""
        if self._input_layer is None:
            if input_shape is None:
                raise ValueError(f"Model '{self.name}'.build() needs the input shape.")
            self._input_layer = InputLayer(batch_shape=(None, *tuple(input_shape)[1:]))
            self._connect()

    def ensure_built(self, input_shape: Any) -> None:
        """Called as a layer of another model: build for that input first."""
        if self._input_layer is None:
            if isinstance(input_shape, list):
                raise ValueError(f"A Sequential model takes one input; model '{self.name}' "
                                 f"was called on {len(input_shape)}.")
            self.build(tuple(input_shape))
        super().ensure_built(input_shape)

    def _graph_plan(self) -> Any:
        self._require_built("the graph")
        return super()._graph_plan()

    def _build_from_data(self, flat: list) -> None:
        if self._input_layer is None:
            if not self._stack:
                raise ValueError(f"The model '{self.name}' has no layers.")
            if len(flat) != 1:
                raise ValueError(f"A Sequential model takes one input, received {len(flat)}.")
            self.build(flat[0].shape)

    def _flat_inputs(self, x: Any) -> tuple[list, Any]:
        if self._input_layer is None:
            arrays, _ = Model._flat_inputs(self, x)
            self._build_from_data(arrays)
        return super()._flat_inputs(x)

    def get_config(self) -> dict[str, Any]:
        from fastconv import saving
        head = [self._input_layer] if self._input_layer is not None else []
        return {"name": self.name, "trainable": self.trainable,
                "layers": [saving.serialize_layer(layer) for layer in [*head, *self._stack]]}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Model:
        from fastconv import saving
        try:
            layers = [saving.deserialize_layer(spec, custom_objects) for spec in config["layers"]]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"The Sequential config is malformed: {exc!r}") from None
        return cls(layers, name=config.get("name"), trainable=config.get("trainable", True))


def _known_input_shape(layer: Layer) -> tuple | None:
    """The batch input shape a first layer fixes: its ``input_shape=``, or a
    built one-input model's input shape (as Keras takes it)."""
    if isinstance(layer, Functional) and layer.built and len(layer.inputs) == 1:
        return layer.inputs[0].shape
    if not isinstance(layer, Model):
        return getattr(layer, "batch_input_shape", None)
    return None

"""``Functional``: a model defined by its graph, ``Model(inputs, outputs)``.

The graph is a ``fastconv.graph.Function`` from the input tensors to the
output tensors. Its config is Keras 3's: every layer with its
``inbound_nodes`` (the tensors each call read, as ``[layer name, node
index, tensor index]``), and the model's ``input_layers`` / ``output_layers``
in the same form, so the graph and its edges rebuild exactly.
"""

from __future__ import annotations

from typing import Any

from fastconv.graph import executor as executor_module
from fastconv.graph.executor import Plan
from fastconv.graph.function import Function
from fastconv.graph.node import KerasTensor, Node, flatten, unflatten
from fastconv.layers.base import Layer
from fastconv.models.model import Model, check_inputs_match


class Functional(Model):
    """A model whose graph was given by its input and output tensors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._init_graph(*args, **kwargs)

    def _init_graph(self, inputs: Any = None, outputs: Any = None, name: str | None = None,
                    trainable: bool = True, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: "
                            f"{sorted(kwargs)}.")
        self._init_model(name, trainable)
        if isinstance(inputs, dict):
            inputs = dict(inputs)
        self._set_graph(Function(inputs, outputs, owner=f"model '{self.name}'"))

    def _default_name(self) -> str:
        return "functional"

    def _set_graph(self, function: Function) -> None:
        self._function = function
        self._plan: Plan | None = None
        self.built = True
        self._check_names()

    def _check_names(self) -> None:
        seen: dict[str, Layer] = {}
        for layer in self.layers:
            other = seen.get(layer.name)
            if other is not None and other is not layer:
                raise ValueError(
                    f"The name '{layer.name}' is used by two layers of model '{self.name}'; "
                    "layer names must be unique within a model.")
            seen[layer.name] = layer

    def _defines_call(self) -> bool:
        return False

    def _graph_plan(self) -> Plan:
        if self._plan is None:
            self._plan = Plan(self._function)
        return self._plan

    def _invalidate_plan(self) -> None:
        """Rebuild the plan on next use (rewrites read the layers' settings)."""
        self._plan = None

    # -- structure -----------------------------------------------------------

    @property
    def layers(self) -> list[Layer]:
        """The layers, input layers first, each once, in call order."""
        found: list[Layer] = []
        seen: set[int] = set()
        for t in self._function.inputs:
            layer = t.operation
            if layer is not None and id(layer) not in seen:
                seen.add(id(layer))
                found.append(layer)
        for node in self._function.nodes:
            layer = node.operation
            if isinstance(layer, Layer) and id(layer) not in seen:
                seen.add(id(layer))
                found.append(layer)
        return found

    def _graph(self, what: str) -> Function:
        if self._function is None:
            self._require_built(what)
        return self._function

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._graph("inputs").inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._graph("outputs").outputs)

    @property
    def input(self) -> Any:
        return unflatten(self._function.inputs, self._function.input_structure)

    @input.setter
    def input(self, value: Any) -> None:  # Layer.__init__ assigns it
        pass

    @property
    def output(self) -> Any:
        return unflatten(self._function.outputs, self._function.output_structure)

    @output.setter
    def output(self, value: Any) -> None:
        pass

    @property
    def input_shape(self) -> Any:
        shapes = [t.shape for t in self._graph("input_shape").inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @input_shape.setter
    def input_shape(self, value: Any) -> None:
        pass

    @property
    def output_shape(self) -> Any:
        shapes = [t.shape for t in self._graph("output_shape").outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @output_shape.setter
    def output_shape(self, value: Any) -> None:
        pass

    @property
    def input_names(self) -> list[str]:
        return [t.name or t.operation.name for t in self._function.inputs]

    @property
    def output_names(self) -> list[str]:
        """Keras' output names: the producing layer's name (made unique)."""
        if self._function.output_structure[0] == "dict":
            return list(self._function.output_structure[1])
        names: list[str] = []
        for t in self._function.outputs:
            base = t.operation.name if t.operation is not None else (t.name or "output")
            name, k = base, 1
            while name in names:
                name = f"{base}_{k}"
                k += 1
            names.append(name)
        return names

    def _sublayers(self) -> list[Layer]:
        return self.layers

    def _memo(self, name: str, compute: Any) -> Any:
        """``compute()`` kept until the graph or a trainable flag changes: a
        training step asks for the weights and layers several times."""
        key = (executor_module._trainable_version[0], id(self._function))
        memo = self.__dict__.get("_memo_store")
        if memo is None or memo[0] != key:
            memo = (key, {})
            self._memo_store = memo
        if name not in memo[1]:
            memo[1][name] = compute()
        return memo[1][name]

    @property
    def weights(self) -> list:
        return list(self._memo("weights", self._all_weights))

    @property
    def trainable_weights(self) -> list:
        return list(self._memo("trainable", lambda: Layer.trainable_weights.fget(self)))

    @property
    def non_trainable_weights(self) -> list:
        return list(self._memo("frozen", lambda: Layer.non_trainable_weights.fget(self)))

    def _unique_layers(self) -> list[Layer]:
        return list(self._memo("layers", lambda: Model._unique_layers(self)))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.output_shape

    def ensure_built(self, input_shape: Any) -> None:
        shapes = input_shape if isinstance(input_shape, list) else [tuple(input_shape)]
        expected = [t.shape for t in self._function.inputs]
        if len(shapes) != len(expected) or any(
                len(s) != len(e) or any(a is not None and b is not None and a != b
                                        for a, b in zip(s[1:], e[1:]))
                for s, e in zip(shapes, expected)):
            raise ValueError(
                f"Input of model '{self.name}' is incompatible: expected shape "
                f"{expected[0] if len(expected) == 1 else expected}, received "
                f"{input_shape}.")

    def _flat_inputs(self, x: Any) -> tuple[list, Any]:
        """Data as the graph's flat input list: one array, a list in input
        order, or a dict keyed by input names."""
        fn = self._function
        if isinstance(x, dict):
            names = self.input_names
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(
                    f"Model '{self.name}' expects inputs named {names}; the dict lacks "
                    f"{missing} (received keys {sorted(x)}).")
            x = [x[n] for n in names]
        elif len(fn.inputs) == 1 and isinstance(x, (list, tuple)) and len(x) == 1:
            x = x[0]
        elif len(fn.inputs) > 1:
            if not isinstance(x, (list, tuple)) or len(x) != len(fn.inputs):
                raise ValueError(
                    f"Model '{self.name}' has {len(fn.inputs)} inputs {self.input_names}; "
                    f"pass a list of {len(fn.inputs)} arrays or a dict keyed by those "
                    f"names, received {type(x).__name__}"
                    f"{f' of length {len(x)}' if isinstance(x, (list, tuple)) else ''}.")
        arrays, _ = Model._flat_inputs(self, list(x) if len(fn.inputs) > 1 else x)
        check_inputs_match(self, arrays, fn)
        return arrays, fn.input_structure if fn.input_structure[0] != "dict" else (
            "list", len(arrays))

    def _plan_for(self, flat: list, structure: Any, training: bool) -> Plan:
        return self._graph_plan()

    def forward(self, inputs: Any, training: bool = False) -> tuple[Any, Any]:
        flat = flatten(inputs)[0]
        plan = self._graph_plan()
        outputs, tape = plan.forward(flat, training, record=True)
        structure = "single" if len(flat) == 1 else ("list", len(flat))
        return unflatten(outputs, plan.function.output_structure), (plan, tape, structure)

    # -- config ----------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        from fastconv import saving

        fn = self._function
        node_index: dict[int, tuple[str, int]] = {}
        per_layer: dict[int, int] = {}
        layer_configs = []
        layer_entries: dict[int, dict] = {}
        for layer in self.layers:
            entry = saving.serialize_layer(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = []
            layer_entries[id(layer)] = entry
            layer_configs.append(entry)
        for t in fn.inputs:
            node_index[id(t.node)] = (t.operation.name, 0)
        for node in fn.nodes:
            layer = node.operation
            if id(layer) not in layer_entries:
                raise ValueError(
                    f"Model '{self.name}' cannot be described: its graph calls "
                    f"{type(layer).__name__} '{getattr(layer, 'name', '?')}', which is not a "
                    "layer (Keras ops on symbolic tensors inside a functional model are "
                    "not yet saved; wrap them in a layer).")
            k = per_layer.get(id(layer), 0)
            per_layer[id(layer)] = k + 1
            node_index[id(node)] = (layer.name, k)
            args = [self._tensor_ref(t, node_index) for t in node.inputs]
            entry = {"args": [args[0] if node.structure == "single"
                              else unflatten(args, node.structure)], "kwargs": {}}
            if node.training is not None:
                entry["kwargs"]["training"] = node.training
            layer_entries[id(layer)]["inbound_nodes"].append(entry)

        def refs(tensors: list, structure: Any) -> Any:
            flat = [list(node_index[id(t.node)]) + [t.history[1]] for t in tensors]
            return unflatten(flat, structure) if structure != "single" else flat

        return {"name": self.name, "trainable": self.trainable, "layers": layer_configs,
                "input_layers": refs(fn.inputs, fn.input_structure),
                "output_layers": refs(fn.outputs, fn.output_structure)}

    @staticmethod
    def _tensor_ref(t: Any, node_index: dict) -> dict:
        if not isinstance(t, KerasTensor):
            raise ValueError("A functional config can only hold calls on tensors.")
        layer_name, k = node_index[id(t.node)]
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": t.dtype,
                           "keras_history": [layer_name, k, t.history[1]]}}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Model:
        return functional_from_config(config, custom_objects)


def functional_from_config(config: dict[str, Any], custom_objects: dict | None = None) -> Model:
    """Rebuild a functional model: create its layers, then replay each layer's
    calls once the tensors they read exist (Keras 3's algorithm)."""
    from fastconv import saving

    try:
        layer_specs = list(config["layers"])
        input_refs, output_refs = config["input_layers"], config["output_layers"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"The functional model config is malformed: missing {exc}.") from None
    layers: dict[str, Layer] = {}
    pending: list[tuple[Layer, list]] = []
    for spec in layer_specs:
        if not isinstance(spec, dict):
            raise ValueError(f"A layer entry of the model config is not a dict: {spec!r}.")
        layer = saving.deserialize_layer(spec, custom_objects)
        name = spec.get("name", layer.name)
        if name in layers:
            raise ValueError(f"The model config names two layers '{name}'.")
        layers[name] = layer
        pending.append((layer, list(spec.get("inbound_nodes", []))))
    made: dict[tuple[str, int], list[KerasTensor]] = {}
    for name, layer in layers.items():
        if getattr(layer, "is_input_layer", False):
            made[(name, 0)] = [layer.output]
    progress = True
    counts = {name: 0 for name in layers}
    while progress:
        progress = False
        for layer, nodes in pending:
            while counts[layer.name] < len(nodes):
                entry = nodes[counts[layer.name]]
                call = _resolve_call(entry, made)
                if call is None:
                    break
                args, kwargs = call
                out = layer(args, **kwargs)
                made[(layer.name, counts[layer.name])] = flatten(out)[0]
                counts[layer.name] += 1
                progress = True
    for layer, nodes in pending:
        if counts[layer.name] < len(nodes):
            raise ValueError(
                f"The model config cannot be rebuilt: the inputs of layer '{layer.name}' "
                "are never computed (a missing or cyclic edge).")

    def tensors(refs: Any) -> Any:
        if isinstance(refs, dict):
            return {k: tensors(v) for k, v in refs.items()}
        if (isinstance(refs, (list, tuple)) and len(refs) == 3
                and isinstance(refs[0], str) and isinstance(refs[1], int)):
            try:
                return made[(refs[0], refs[1])][refs[2]]
            except (KeyError, IndexError):
                raise ValueError(f"The model config refers to a tensor {list(refs)} that "
                                 "no layer makes.") from None
        if isinstance(refs, (list, tuple)):
            return [tensors(r) for r in refs]
        raise ValueError(f"Malformed tensor reference in the model config: {refs!r}.")

    inputs, outputs = tensors(input_refs), tensors(output_refs)
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    if isinstance(outputs, list) and len(outputs) == 1:
        outputs = outputs[0]
    return Functional(inputs, outputs, name=config.get("name"),
                      trainable=config.get("trainable", True))


def _resolve_call(entry: Any, made: dict) -> tuple[Any, dict] | None:
    """The call's input tensors (and training flag), or None while one of them
    is not made yet."""
    if not isinstance(entry, dict) or not isinstance(entry.get("args"), list) or not entry["args"]:
        raise ValueError(f"Malformed inbound node in the model config: {entry!r}.")

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            history = value.get("config", {}).get("keras_history")
            if not isinstance(history, list) or len(history) != 3:
                raise ValueError(f"Malformed tensor in the model config: {value!r}.")
            got = made.get((history[0], history[1]))
            if got is None:
                raise LookupError
            return got[history[2]]
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        raise ValueError(f"Malformed call argument in the model config: {value!r}.")

    try:
        args = resolve(entry["args"][0])
    except LookupError:
        return None
    kwargs = {}
    training = (entry.get("kwargs") or {}).get("training")
    if isinstance(training, bool):
        kwargs["training"] = training
    return args, kwargs


__all__ = ["Functional", "Node", "functional_from_config"]

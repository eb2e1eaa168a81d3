"""``Model``: a layer that can be trained, in Keras' three forms.

- **Functional**: ``Model(inputs, outputs)`` with tensors from
  ``fastconv.Input`` and layer calls; any graph (several inputs and outputs,
  branches, merges, shared layers, nested models). ``Model(...)`` returns a
  ``Functional`` instance, as in Keras.
- **Sequential** (``fastconv.models.sequential``): a stack of layers, kept as
  a functional graph once its input shape is known.
- **Subclassed**: ``class M(Model)`` making layers in ``__init__`` and wiring
  them in ``call(inputs, training=None)``; ``call`` is traced into a graph
  per input shape (``fastconv.graph.trace``).

Either way the model runs as a ``fastconv.graph.executor.Plan``: the
trainer (``fastconv.training.trainer``) and ``model.profile`` only step through
plans. A model is itself a layer: it can be called on tensors, added to a
``Sequential`` or nested in another model, and it shares its weights with
every model that calls it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fastconv.graph import tape as tape_module
from fastconv.graph.executor import Plan
from fastconv.graph.function import Function
from fastconv.graph.inference import inference_outputs, programmed_call
from fastconv.graph.node import KerasTensor, flatten, unflatten
from fastconv.layers.base import Layer, _unbatched, unique_name
from fastconv.training.trainer import Trainer


class Model(Trainer, Layer):
    """A trainable graph of layers (see the module docstring).

    Parameters
    ----------
    inputs : KerasTensor, or a list / dict of them
        The model's inputs, made by ``fastconv.Input`` (or ``model.inputs``).
    outputs : KerasTensor, or a list / dict of them
        Tensors computed from ``inputs`` by calling layers.
    name : str, optional
    trainable : bool
    """

    # Loading passes custom_objects on to the layers of a model's config.
    from_config_takes_custom_objects = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from fastconv.models.functional import Functional
            return Functional.__new__(Functional)
        return super().__new__(cls)

    def __init__(self, *args: Any, name: str | None = None, trainable: bool = True,
                 **kwargs: Any) -> None:
        if args or "inputs" in kwargs or "outputs" in kwargs:
            # A subclass calling super().__init__(inputs, outputs) is a
            # functional model: its class gains Functional as a base, as in Keras.
            from fastconv.models.functional import Functional
            _inject_functional(type(self))
            Functional._init_graph(self, *args, name=name, trainable=trainable, **kwargs)
            return
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to "
                            f"{type(self).__name__}: {sorted(kwargs)}.")
        self._init_model(name, trainable)

    def _init_model(self, name: str | None, trainable: bool) -> None:
        Layer.__init__(self, name=name or unique_name(self._default_name()),
                       trainable=trainable)
        self.compiled = False
        self.optimizer = self.loss = None
        self.stop_training = False
        self.history = None
        self._build_input_shape: Any = None

    def _default_name(self) -> str:
        from fastconv.layers.base import snake_case
        return snake_case(type(self).__name__) if type(self) is not Model else "model"

    def _defines_call(self) -> bool:
        return type(self).call is not Model.call

    # -- the plan a call runs ----------------------------------------------

    def _plan_for(self, flat: list, structure: Any, training: bool) -> Plan:
        """The plan for inputs like ``flat`` (arrays) nested as ``structure``."""
        if not self._defines_call():
            return self._graph_plan()
        shapes = [tuple(a.shape) for a in flat]
        dtypes = [a.dtype.name for a in flat]
        if structure == "single":
            shapes, dtypes = shapes[0], dtypes[0]
        if not self.built:
            self.ensure_built(shapes)
        return self._traced_plan(shapes, dtypes, structure, training)

    def _graph_plan(self) -> Plan:
        raise ValueError(
            f"The model '{self.name}' has not been built yet: it has no graph. Give the "
            "first layer an `input_shape`, start with `fastconv.Input(shape)`, or call "
            "`build(input_shape)` / `fit` first.")

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """A subclass defines it (Keras' subclassing API)."""
        raise NotImplementedError(
            f"Model {type(self).__name__} ('{self.name}') has no graph and no `call`: "
            "build it with Model(inputs, outputs), Sequential, or subclass Model and "
            "define `call`.")

    def forward(self, inputs: Any, training: bool = False) -> tuple[Any, Any]:
        flat, structure = flatten(inputs)
        plan = self._plan_for(flat, structure, training)
        outputs, tape = plan.forward(flat, training, record=True)
        return unflatten(outputs, plan.function.output_structure), (plan, tape, structure)

    def backward(self, ctx: Any, d_outputs: Any, need_dx: bool = True) -> Any:
        return self._backward_through_plan(ctx, d_outputs, need_dx)

    def penalty_of(self, ctx: Any) -> float:
        """The activity penalties of this model's layers in the call whose
        context is ``ctx`` (an outer model adds them to its loss)."""
        return ctx[1].penalty

    # -- building ------------------------------------------------------------

    @property
    def built(self) -> bool:
        return self._built

    @built.setter
    def built(self, value: bool) -> None:
        self._built = bool(value)

    def build(self, input_shape: Any = None) -> None:
        """Build a subclassed model for inputs of ``input_shape`` (batch
        first): its ``call`` is traced once, which builds every layer."""
        if not self._defines_call():
            if input_shape is not None:
                self.built = True
            return
        if input_shape is None:
            raise ValueError(f"Model '{self.name}'.build() needs the input shape.")
        shapes = ([tuple(s) for s in input_shape] if isinstance(input_shape, list)
                  else tuple(input_shape))
        self._build_input_shape = shapes
        self.built = True
        if isinstance(shapes, list):
            self._traced_plan(shapes, [self.dtype] * len(shapes), ("list", len(shapes)),
                              False)
        else:
            self._traced_plan(shapes, self.dtype, "single", False)

    def ensure_built(self, input_shape: Any) -> None:
        if self._defines_call():
            if not self.built:
                self.build(input_shape if isinstance(input_shape, list)
                           else tuple(input_shape))
                self.input_shape = _unbatched(input_shape)
            return
        Layer.ensure_built(self, input_shape)

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(
                f"The model '{self.name}' has not been built yet, so `{what}` is not "
                "defined. Give the first layer an `input_shape`, start with "
                "`fastconv.Input(shape)`, or call `build(input_shape)` / `fit` first."
            )

    # -- structure -----------------------------------------------------------

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}.")

    def _unique_layers(self) -> list[Layer]:
        """Every layer under this model, each once (nested models' layers too)."""
        seen: set[int] = set()
        found: list[Layer] = []

        def walk(layer: Layer) -> None:
            for sub in layer.layers:
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found.append(sub)
                    walk(sub)

        walk(self)
        return found

    def _dtype(self) -> str:
        return next((layer.dtype for layer in self._unique_layers() if layer.weights),
                    self.dtype)

    def __call__(self, *args: Any, training: bool | None = None, **kwargs: Any) -> Any:
        return Layer.__call__(self, *args, training=training, **kwargs)

    def _eager_call(self, inputs: Any, training: bool | None) -> Any:
        """``model(arrays)``: the outputs (recorded on an active GradientTape)."""
        record = tape_module.recording()
        if not (record or training):
            outputs = programmed_call(self, inputs)
            if outputs is not None:
                self._last_penalty = 0.0
                return outputs
        arrays, structure = self._flat_inputs(inputs)
        plan = self._plan_for(arrays, structure, bool(training))
        with tape_module.paused():
            if record or training:
                outputs, tape = plan.forward(arrays, bool(training), record=record)
            else:
                outputs, tape = inference_outputs(plan, arrays), None
        self._last_penalty = plan.last_penalty
        result = unflatten(outputs, plan.function.output_structure)
        if record:
            tape_module.record(self, (plan, tape, structure), arrays, structure, result)
        return result

    def _flat_inputs(self, x: Any) -> tuple[list, Any]:
        """Data as the flat list of arrays the plan takes, in the dtype of the
        model's layers; checked against a graph's input shapes."""
        flat, structure = flatten(x)
        dtype = self._dtype()
        graph = getattr(self, "_function", None)
        input_dtypes = [None] * len(flat) if graph is None or len(graph.inputs) != len(flat) \
            else [t.dtype for t in graph.inputs]
        arrays = []
        for v, input_dtype in zip(flat, input_dtypes):
            if isinstance(v, KerasTensor):
                raise TypeError(f"Model '{self.name}' was called on a mix of arrays and "
                                "symbolic tensors.")
            arr = np.asarray(v.value if hasattr(v, "accumulate_grad") else v)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"Invalid dtype for argument `x`: expected numbers, "
                                f"received {arr.dtype}.")
            if input_dtype is not None and np.dtype(input_dtype).kind in "iu":
                arrays.append(integer_input(arr, input_dtype))
            else:
                arrays.append(arr.astype(dtype, copy=False))
        return arrays, structure

    def _casts_integer_inputs(self) -> bool:
        return False  # a model's own Inputs say what its data becomes

    # -- weights -----------------------------------------------------------

    def regularization_loss(self) -> float:
        """The penalties of every layer's trainable weights, layer by layer."""
        if not self.trainable:
            return 0.0
        total = Layer.regularization_loss(self)
        for layer in self._unique_layers():
            if not isinstance(layer, Model):
                total += layer.regularization_loss()
        return total

    def add_regularization_gradients(self) -> None:
        if not self.trainable:
            return
        Layer.add_regularization_gradients(self)
        for layer in self._unique_layers():
            if not isinstance(layer, Model):
                layer.add_regularization_gradients()

    def apply_constraints(self) -> None:
        Layer.apply_constraints(self)
        for layer in self._unique_layers():
            if not isinstance(layer, Model):
                layer.apply_constraints()

    def summary(self, line_length: int | None = None, positions: Any = None,
                print_fn: Any = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Print Keras' table of layers, output shapes and parameter counts
        (with the "Connected to" column for graphs that are not a chain).

        ``print_fn`` receives each line; ``line_length``, ``positions``,
        ``expand_nested``, ``show_trainable`` and ``layer_range`` are accepted
        for compatibility and ignored (the table has fixed columns)."""
        from fastconv.training import summary as _summary
        self._require_built("summary")
        _summary.print_summary(self, print_fn or print)

    # -- config and files --------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """A subclassed model's own config: its name and trainable flag (a
        subclass whose ``__init__`` takes arguments adds them, as in Keras)."""
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Model:
        return cls(**config)

    def to_json(self, **kwargs: Any) -> str:
        from fastconv import saving
        return json.dumps(saving.serialize_layer(self), **kwargs)

    def save(self, filepath: str, overwrite: bool = True) -> None:
        """Save architecture, weights, compile settings and optimizer state to one
        file, in the format its extension names (the write is atomic; never pickle):

        - ``.keras``: Keras 3's archive (config.json, metadata.json,
          model.weights.h5), which ``keras.models.load_model`` reads; needs h5py
          (``pip install "fastconv[keras-files]"``).
        - ``.h5`` / ``.hdf5``: Keras' legacy HDF5 file, as Keras 3 writes it
          (with its warning that the format is legacy); needs h5py.
        - ``.fastconv`` (or ``.zip``): fastconv's own zip of JSON and .npz.

        Any other extension is a ValueError."""
        from fastconv import saving
        saving.save_model(self, filepath, overwrite)

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """Save the weights alone (atomic write): ``.weights.h5`` as Keras 3's
        ``save_weights`` (with a compiled model's optimizer state, as Keras;
        needs h5py), ``.npz`` as fastconv's arrays. Other extensions are a
        ValueError."""
        from fastconv import saving
        saving.save_weights(self, filepath, overwrite)

    def load_weights(self, filepath: str) -> None:
        """Load weights into this model from a ``.weights.h5`` (Keras 3), ``.npz``,
        or a whole-model file (``.keras``, ``.fastconv``, legacy ``.h5``). Every
        weight is checked (count, shape, dtype) before any is assigned."""
        from fastconv import saving
        saving.load_weights(self, filepath)

    def export(self, filepath: str, format: str = "tf_saved_model", verbose: bool | None = None,
               input_signature: Any = None, **kwargs: Any) -> None:
        """Export the inference pass as an artifact, as Keras' ``export``.

        fastconv writes ``format="onnx"`` only (``fastconv.export.export_onnx``;
        ``opset_version=`` picks the opset); the other formats Keras names
        need TensorFlow, OpenVINO or PyTorch and raise ``ValueError``."""
        formats = ("tf_saved_model", "onnx", "openvino", "litert", "torch")
        if format not in formats:
            raise ValueError(f"Unrecognized format={format}. Supported formats are: "
                             f"{list(formats)}.")
        if format != "onnx":
            raise ValueError(f"Invalid value for argument `format`: fastconv exports "
                             f"format='onnx' only, received format={format!r}.")
        from fastconv.export import export_onnx
        export_onnx(self, filepath, verbose, input_signature=input_signature, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _inject_functional(cls: type) -> type:
    """Put Functional where Model is among ``cls``'s bases (recursively)."""
    from fastconv.models.functional import Functional

    if cls is Model:
        return Functional
    if cls is object or issubclass(cls, Functional):
        return cls
    cls.__bases__ = tuple(_inject_functional(base) for base in cls.__bases__)
    return cls


def integer_input(arr: np.ndarray, dtype: str) -> np.ndarray:
    """Data for an integer Input (``Input(..., dtype="int32")``) in its dtype,
    as Keras converts it; floats must hold whole numbers."""
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"Invalid value for argument `x`: the model's input is {dtype} "
                             f"but the data holds non-integer values ({arr.dtype}).")
    return arr.astype(dtype, copy=False)


def check_inputs_match(model: Model, arrays: list, function: Function) -> None:
    """Data against a graph's input shapes: rank and every known dimension."""
    for a, t in zip(arrays, function.inputs):
        shape = tuple(a.shape)
        if len(shape) != len(t.shape) or any(
                d is not None and d != s for d, s in zip(t.shape[1:], shape[1:])):
            raise ValueError(
                f"Input {t.name or ''} of model '{model.name}' is incompatible: expected "
                f"shape {t.shape}, received data of shape {shape}.")


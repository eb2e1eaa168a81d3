"""The layer lifecycle shared by every layer, and the weights it owns.

A layer follows Keras' lifecycle:

- ``__init__`` normalises and checks its arguments (nothing is allocated);
- ``build(input_shape)`` creates the weights once the input shape is known;
- ``compute_output_shape(input_shape)`` gives the output shape without data;
- ``get_config()`` / ``from_config()`` describe it for saving.

and computes in one of two ways:

- fastconv's own layers implement ``forward(inputs, training) -> (outputs,
  ctx)`` and ``backward(ctx, d_outputs, need_dx) -> d_inputs``: ``ctx`` is
  whatever the backward pass needs (the layer keeps nothing of a call on
  itself), and backward *adds* each weight's gradient into
  ``Variable.grad`` (``accumulate_grad``), so a layer called twice sums its
  gradients;
- a layer written as in Keras defines ``call(inputs, training=None)`` with
  Keras ops (``fastconv.ops``), other layers and its weights; fastconv traces
  ``call`` once per input shape into a graph (``fastconv.graph.trace``) and
  runs and differentiates that graph.

Calling a layer on a ``KerasTensor`` records a node of the model graph
(``fastconv.graph.node``); calling it on arrays computes at once.

Every shape here includes the batch dimension first (None when unknown), as
Keras' ``input_shape`` / ``output_shape`` do; only the ``input_shape=``
argument of a first layer gives one sample's shape.
"""

from __future__ import annotations

import inspect
import re
from collections import defaultdict
from typing import Any

import numpy as np

from fastconv import activations as activations_module
from fastconv import constraints as constraints_module
from fastconv import initializers as initializers_module
from fastconv import regularizers as regularizers_module
from fastconv._restore import stored_weight
from fastconv.graph import executor as executor_module
from fastconv.graph import tape as tape_module
from fastconv.graph.node import (
    KerasTensor,
    Node,
    TensorOperators,
    flatten,
    is_symbolic,
    unflatten,
)
from fastconv.layers import registry

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


class Variable(TensorOperators):
    """A weight: its value, its gradient and how it is kept in bounds.

    ``value`` is updated in place by the optimizer. ``grad`` has the same
    shape; backward passes add into it (``accumulate_grad``) and a training
    step starts by ``zero_grad`` (which costs nothing until the gradient is
    read or first added to).

    Inside a layer's ``call``, a Variable takes part in Keras ops and Python
    operators (``ops.matmul(x, self.w) + self.b``) and receives their
    gradients.
    """

    def __init__(self, value: np.ndarray, name: str, trainable: bool = True,
                 regularizer: Any = None, constraint: Any = None, owner: Any = None) -> None:
        self.value = value
        self._grad = np.zeros_like(value)
        self._grad_is_zero = True
        self.name = name
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint
        self.owner = owner

    @property
    def grad(self) -> np.ndarray:
        if self._grad_is_zero:
            self._grad.fill(0)
            self._grad_is_zero = False
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray) -> None:
        self._grad = value
        self._grad_is_zero = False

    def zero_grad(self) -> None:
        self._grad_is_zero = True

    def accumulate_grad(self, g: np.ndarray) -> None:
        """Add ``g`` to the gradient (the first contribution of a step is
        copied, so a weight used once gets exactly its layer's gradient)."""
        if self._grad_is_zero:
            np.copyto(self._grad, g, casting="same_kind")
            self._grad_is_zero = False
        else:
            self._grad += g

    def is_trainable(self) -> bool:
        """Trainable itself and in a trainable layer."""
        return self.trainable and (self.owner is None or self.owner.trainable)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def path(self) -> str:
        return self.name

    def numpy(self) -> np.ndarray:
        """A copy of the value."""
        return self.value.copy()

    def assign(self, value: Any) -> None:
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(
                f"Invalid shape for variable `{self.name}`: expected {self.value.shape}, "
                f"received {value.shape}."
            )
        self.value[...] = value

    def assign_add(self, value: Any) -> None:
        self.value += np.asarray(value, dtype=self.value.dtype)

    def assign_sub(self, value: Any) -> None:
        self.value -= np.asarray(value, dtype=self.value.dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable {self.name} shape={self.shape} dtype={self.dtype}>"


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


def _shapes_compatible(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_shapes_compatible(x, y) for x, y in zip(a, b)))
    return len(a) == len(b) and all(x is None or y is None or x == y
                                    for x, y in zip(a[1:], b[1:]))


def _unbatched(shape: Any) -> Any:
    """The shape with an unknown batch dimension (each shape, for a list)."""
    if isinstance(shape, list):
        return [_unbatched(s) for s in shape]
    return (None, *tuple(shape)[1:]) if len(shape) else tuple(shape)


def _shape_structure(value: Any) -> Any:
    """Shapes of a tensor or array (a list of shapes for a list/tuple/dict)."""
    flat, structure = flatten(value)
    shapes = [tuple(np.shape(v)) if not isinstance(v, (KerasTensor, Variable))
              else tuple(v.shape) for v in flat]
    return shapes[0] if structure == "single" else shapes


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

    is_input_layer = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Rank-generic bases (BaseConv, BasePooling, ...) are not layers a
        # file may name: only their per-rank subclasses are.
        if cls.__module__.startswith("fastconv.") and not cls.__name__.startswith(("_", "Base")):
            registry.register_builtin(cls)
        # fastconv's own layers hold no sublayers: skip scanning their
        # attributes (a model asks for its weights every step).
        cls._tracks_sublayers = not cls.__module__.startswith("fastconv.layers.")

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
        self._trainable = bool(trainable)
        if isinstance(dtype, dict):  # Keras 3's DTypePolicy config
            dtype = dtype.get("config", {}).get("name", "float32")
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
        # (not divided by the batch size); the executor applies it.
        self.activity_regularizer = regularizers_module.get(activity_regularizer)
        self.built = False
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.output: Any = None
        self.input: Any = None
        self._weights: list[Variable] = []
        self._inbound_nodes: list[Node] = []
        self._traces: dict = {}

    # -- trainable ---------------------------------------------------------

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Setting it sets every sublayer's too, as in Keras 3."""
        self._trainable = bool(value)
        for layer in self._sublayers():
            layer.trainable = value
        executor_module.trainable_changed()

    # -- lifecycle ---------------------------------------------------------

    def build(self, input_shape: Shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch first)."""
        self.built = True

    def _defines_call(self) -> bool:
        return type(self).call is not Layer.call

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self._defines_call():
            spec = self._trace_spec(input_shape, False)
            out_shapes = [t.shape for t in spec.outputs]
            return out_shapes[0] if spec.output_structure == "single" else out_shapes
        return tuple(input_shape)

    def ensure_built(self, input_shape: Any) -> None:
        """Build on first use, then insist on a compatible input shape."""
        if isinstance(input_shape, tuple) or not isinstance(input_shape, list):
            input_shape = tuple(input_shape)
        if not self.built:
            if self._defines_call():
                self.build(_build_argument(input_shape))
                self.built = True
                self.input_shape = _unbatched(input_shape)
                output_shape = self.compute_output_shape(self.input_shape)
            else:
                # The shape check comes first: a rejected shape leaves the layer unbuilt.
                output_shape = self.compute_output_shape(_unbatched(input_shape))
                self.build(input_shape)
                self.built = True
                self.input_shape = _unbatched(input_shape)
            self.output_shape = output_shape
        elif self.input_shape is not None and not self._accepts_shape(input_shape):
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"shape {self.input_shape}, found shape {input_shape}."
            )

    def _accepts_shape(self, input_shape: Any) -> bool:
        """Whether a built layer takes inputs of ``input_shape``: by default
        those compatible with its first input shape (the layers over spatial
        axes check only the rank and channels, as Keras' InputSpec does).
        A layer written with ``call`` takes any shape, as in Keras (which
        checks only an ``input_spec`` it does not have): its call is traced
        once per input shape, and a shape its weights do not fit fails there."""
        if self._defines_call():
            return True
        return _shapes_compatible(input_shape, self.input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """What a Keras-style subclass defines: the computation, written with
        Keras ops (``fastconv.ops``), other layers and this layer's weights."""
        raise NotImplementedError(
            f"Layer {type(self).__name__} ('{self.name}') defines neither `call` (Keras "
            "style, with fastconv.ops) nor `forward`/`backward`.")

    # -- the traced call (Keras-style layers) ----------------------------------

    def _call_accepts_training(self) -> bool:
        try:
            params = inspect.signature(self.call).parameters
        except (TypeError, ValueError):
            return False
        return "training" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    def _traced_plan(self, shapes: Any, dtypes: Any, structure: Any, training: bool) -> Any:
        """The plan of ``call`` for inputs of these shapes (batch unknown) and
        dtypes, traced on first use."""
        from fastconv.graph import trace
        key = (repr(_unbatched(shapes)), repr(dtypes), repr(structure), bool(training))
        plan = self._traces.get(key)
        if plan is None:
            plan = trace.trace_call(self, _unbatched(shapes), dtypes, structure, bool(training))
            self._traces[key] = plan
        return plan

    def _trace_spec(self, shapes: Any, training: bool) -> Any:
        """The traced graph of ``call`` for inputs of ``shapes``."""
        if isinstance(shapes, list):
            return self._traced_plan(shapes, [self.dtype] * len(shapes),
                                     ("list", len(shapes)), training).function
        return self._traced_plan(shapes, self.dtype, "single", training).function

    def forward(self, inputs: Any, training: bool = False) -> tuple[Any, Any]:
        """Run ``call`` as its traced graph; the context is that graph's tape."""
        flat, structure = flatten(inputs)
        shapes = [tuple(a.shape) for a in flat]
        dtypes = [a.dtype.name for a in flat]
        if structure == "single":
            shapes, dtypes = shapes[0], dtypes[0]
        plan = self._traced_plan(shapes, dtypes, structure, training)
        outputs, tape = plan.forward(flat, training, record=True)
        return unflatten(outputs, plan.function.output_structure), (plan, tape, structure)

    def backward(self, ctx: Any, d_outputs: Any, need_dx: bool = True) -> Any:
        if not self._defines_call():
            raise NotImplementedError(
                f"Layer '{self.name}' ({type(self).__name__}) defines `forward` but no "
                "`backward`, so no gradient can pass through it: define `backward(ctx, "
                "dy, need_dx)`, or write the layer's `call` with fastconv.ops.")
        return self._backward_through_plan(ctx, d_outputs, need_dx)

    def _backward_through_plan(self, ctx: Any, d_outputs: Any, need_dx: bool) -> Any:
        """Backward through the plan whose tape ``forward`` returned."""
        plan, tape, structure = ctx
        if plan.function.output_structure == "single":
            douts = [d_outputs]
        else:
            douts = flatten(d_outputs)[0]
        dx = plan.backward(tape, douts, input_grads=need_dx)
        if not need_dx:
            return None
        return dx[0] if structure == "single" else unflatten(dx, structure)

    # -- calling -----------------------------------------------------------

    def __call__(self, *args: Any, training: bool | None = None, **kwargs: Any) -> Any:
        """Symbolically on KerasTensors (records a node, returns the output
        KerasTensors), or eagerly on arrays (returns the output arrays)."""
        if "inputs" in kwargs:
            args = (kwargs.pop("inputs"), *args)
        kwargs.pop("mask", None)
        if len(args) == 2 and training is None and isinstance(args[1], (bool, type(None))):
            args, training = args[:1], args[1]  # call(x, training) written positionally
        if kwargs or len(args) != 1:
            raise TypeError(
                f"Layer '{self.name}' takes its inputs as one argument (a tensor, or a "
                f"list/dict of tensors) and `training`; received {len(args)} positional "
                f"arguments and keywords {sorted(kwargs)}.")
        inputs = args[0]
        if training is not None and not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"Invalid value for argument `training`: expected True, False or "
                            f"None, received training={training!r}.")
        if is_symbolic(inputs):
            return self._symbolic_call(inputs, training)
        return self._eager_call(inputs, training)

    def _symbolic_call(self, inputs: Any, training: bool | None) -> Any:
        flat, structure = flatten(inputs)
        for t in flat:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"Layer '{self.name}' was called on a mix of symbolic tensors and "
                    f"{type(t).__name__}; every input must be a KerasTensor (use "
                    "fastconv.ops.convert_to_tensor or an Input for constants).")
        shapes = unflatten([t.shape for t in flat], structure)
        if structure != "single":
            shapes = list(flatten(shapes)[0])
        self.ensure_built(shapes)
        if self._defines_call():
            spec = self._traced_plan(shapes, self._dtypes_of(flat, structure), structure,
                                     bool(training)).function
            flat_out = [KerasTensor(t.shape, t.dtype) for t in spec.outputs]
            out_structure = spec.output_structure
        else:
            out_shape = self.compute_output_shape(shapes)
            if isinstance(out_shape, list):
                flat_out = [KerasTensor(s, self._output_dtype(flat)) for s in out_shape]
                out_structure = ("list", len(flat_out))
            else:
                flat_out = [KerasTensor(out_shape, self._output_dtype(flat))]
                out_structure = "single"
        node = Node(self, flat, structure, flat_out, out_structure, training)
        self._inbound_nodes.append(node)
        outputs = unflatten(flat_out, out_structure)
        if self.output is None:
            # As in Keras, layer.input / layer.output are those of the first
            # call; later calls (a model reused on a new Input) must not
            # disconnect the models built on the first.
            self.input, self.output = inputs, outputs
        return outputs

    @staticmethod
    def _dtypes_of(flat: list, structure: Any) -> Any:
        dtypes = [t.dtype for t in flat]
        return dtypes[0] if structure == "single" else dtypes

    def _output_dtype(self, flat_inputs: list) -> str:
        return self.dtype

    def _eager_call(self, inputs: Any, training: bool | None) -> Any:
        flat, structure = flatten(inputs)
        arrays = [self._as_array(v) for v in flat]
        args = unflatten(arrays, structure)
        shapes = [a.shape for a in arrays]
        self.ensure_built(shapes[0] if structure == "single" else shapes)
        with tape_module.paused():
            outputs, ctx = self.forward(args, bool(training))
        tape_module.record(self, ctx, arrays, structure, outputs)
        return outputs

    def _as_array(self, value: Any) -> np.ndarray:
        if isinstance(value, Variable):
            value = value.value
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf" and arr.dtype.name != self.dtype:
            arr = arr.astype(self.dtype)
        return arr

    def _casts_integer_inputs(self) -> bool:
        """Whether integer tensors reach ``forward`` cast to the layer's float
        dtype in a graph (fastconv's own float layers, which compute in
        float, as Keras promotes them); a Keras-style ``call`` sees them as
        they are."""
        return not self._defines_call()

    def restart_random_state(self) -> None:
        """Start a seeded layer's random draws over (gradient checks repeat a
        forward pass and need the same masks); nothing for other layers."""

    # -- weights -----------------------------------------------------------

    def add_weight(self, shape: tuple | None = None, initializer: Any = None,
                   dtype: Any = None, trainable: bool = True, autocast: bool = True,
                   regularizer: Any = None, constraint: Any = None, aggregation: Any = None,
                   name: str | None = None, **kwargs: Any) -> Variable:
        """A new weight of this layer, as Keras 3's ``add_weight`` (the
        initializer defaults to glorot_uniform, as Keras' does for floats)."""
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to add_weight: "
                            f"{sorted(kwargs)}.")
        shape = () if shape is None else tuple(int(d) for d in shape)
        init = initializers_module.get("glorot_uniform" if initializer is None else initializer)
        dtype = self.dtype if dtype is None else np.dtype(dtype).name
        if name is None:
            taken = {w.name for w in self._weights}
            name, k = "variable", 0
            while f"{self.name}/{name}" in taken:
                k += 1
                name = f"variable_{k}"
        value = stored_weight(shape, dtype, f"{self.name}/{name}")  # loading a model file
        if value is None:
            # reshape: ascontiguousarray makes a 0-d weight 1-d
            value = np.ascontiguousarray(init(shape, dtype=dtype), dtype=dtype).reshape(shape)
        var = Variable(value, f"{self.name}/{name}", bool(trainable),
                       regularizers_module.get(regularizer), constraints_module.get(constraint),
                       owner=self)
        self._weights.append(var)
        return var

    def _sublayers(self) -> list[Layer]:
        """Layers held in this layer's attributes (directly, or in lists,
        tuples and dicts), in the order they were assigned, as Keras tracks
        them."""
        if not self._tracks_sublayers:
            return []
        found: list[Layer] = []
        seen: set[int] = {id(self)}

        def take(value: Any) -> None:
            if isinstance(value, Layer):
                if id(value) not in seen:
                    seen.add(id(value))
                    found.append(value)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    take(v)
            elif isinstance(value, dict):
                for v in value.values():
                    take(v)

        for key, value in vars(self).items():
            if key in _UNTRACKED:
                continue
            take(value)
        return found

    @property
    def layers(self) -> list[Layer]:
        return self._sublayers()

    def _all_weights(self) -> list[Variable]:
        seen: set[int] = set()
        result = []
        for w in [*self._weights, *(w for layer in self._sublayers() for w in layer.weights)]:
            if id(w) not in seen:
                seen.add(id(w))
                result.append(w)
        return result

    @property
    def weights(self) -> list[Variable]:
        return self._all_weights()

    @property
    def variables(self) -> list[Variable]:
        return self._all_weights()

    @property
    def trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return []
        return [w for w in self._all_weights() if w.is_trainable()]

    @property
    def trainable_variables(self) -> list[Variable]:
        return self.trainable_weights

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self._all_weights() if id(w) not in trainable]

    @property
    def non_trainable_variables(self) -> list[Variable]:
        return self.non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras' order (e.g. kernel, then bias)."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace the weights; shapes must match ``get_weights()``'s."""
        variables = self.weights
        if len(weights) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expects {len(variables)} weight arrays, "
                f"received {len(weights)}."
            )
        for var, value in zip(variables, weights):
            if np.shape(value) != var.shape:
                raise ValueError(
                    f"Invalid shape for variable `{var.name}`: expected {var.shape}, "
                    f"received {np.shape(value)}.")
        for var, value in zip(variables, weights):
            var.assign(np.asarray(value, dtype=var.dtype))

    def count_params(self) -> int:
        return int(sum(w.value.size for w in self.weights))

    def regularization_loss(self) -> float:
        """Sum of this layer's own trainable weights' penalties (0 without
        regularizers); frozen weights add nothing, as in Keras 3."""
        if not self.trainable:
            return 0.0
        return float(sum(w.regularizer(w.value) for w in self._weights
                         if w.regularizer and w.is_trainable()))

    def add_regularization_gradients(self) -> None:
        """Add each own trainable weight's penalty gradient to its gradient."""
        if not self.trainable:
            return
        for w in self._weights:
            if w.regularizer is not None and w.is_trainable():
                w.accumulate_grad(w.regularizer.gradient(w.value).astype(w.dtype, copy=False))

    def apply_constraints(self) -> None:
        """Project each own constrained weight back into its set (after an update)."""
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


# Bookkeeping attributes that hold layers but are not sublayers.
_UNTRACKED = frozenset({"input", "output", "_inbound_nodes", "_traces"})


def _build_argument(input_shape: Any) -> Any:
    """What a Keras-style ``build`` receives: a shape tuple, or a list of them."""
    return list(input_shape) if isinstance(input_shape, list) else tuple(input_shape)


class KernelBiasLayer(Layer):
    """A layer with an activation, a kernel and an optional bias, each with
    Keras' initializer, regularizer and constraint arguments (Conv2D, Dense)."""

    def __init__(self, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation, keeps_shape=True)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers_module.get(kernel_initializer)
        self.bias_initializer = initializers_module.get(bias_initializer)
        self.kernel_regularizer = regularizers_module.get(kernel_regularizer)
        self.bias_regularizer = regularizers_module.get(bias_regularizer)
        self.kernel_constraint = constraints_module.get(kernel_constraint)
        self.bias_constraint = constraints_module.get(bias_constraint)
        self.kernel = self.bias = None

    def build_kernel_and_bias(self, kernel_shape: tuple, units: int) -> None:
        self.kernel = self.add_weight(kernel_shape, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        if self.use_bias:
            self.bias = self.add_weight((units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
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

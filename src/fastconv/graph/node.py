"""Symbolic tensors and the nodes that connect them: one node per call event.

Calling a layer (or a Keras op) on a ``KerasTensor`` records a ``Node``: the
operation, the tensors it was called on and the tensors it returned. Each
output tensor remembers its node and its position among the node's outputs
(``tensor.history``), so a model is found by walking back from its outputs.
A layer called twice makes two nodes and shares its weights between them.

A call's inputs may be one tensor or a list, tuple or dict of them (merge
layers take a list); ``flatten`` / ``unflatten`` move between that structure
and the flat list of tensors a node stores.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TensorOperators:
    """Python's operators as Keras ops (``x + y``, ``-x``, ``x[:, 0]``,
    ``x @ w``, ``x > 0``): recorded when an operand is symbolic, computed at
    once otherwise. Symbolic tensors and weights both have them."""

    def _op(self, name: str, *args: Any) -> Any:
        from fastconv import ops
        return getattr(ops, name)(*args)

    def __add__(self, other): return self._op("add", self, other)
    def __radd__(self, other): return self._op("add", other, self)
    def __sub__(self, other): return self._op("subtract", self, other)
    def __rsub__(self, other): return self._op("subtract", other, self)
    def __mul__(self, other): return self._op("multiply", self, other)
    def __rmul__(self, other): return self._op("multiply", other, self)
    def __truediv__(self, other): return self._op("divide", self, other)
    def __rtruediv__(self, other): return self._op("divide", other, self)
    def __pow__(self, other): return self._op("power", self, other)
    def __rpow__(self, other): return self._op("power", other, self)
    def __matmul__(self, other): return self._op("matmul", self, other)
    def __rmatmul__(self, other): return self._op("matmul", other, self)
    def __neg__(self): return self._op("negative", self)
    def __pos__(self): return self
    def __abs__(self): return self._op("abs", self)
    def __getitem__(self, key): return self._op("getitem", self, key)
    def __gt__(self, other): return self._op("greater", self, other)
    def __ge__(self, other): return self._op("greater_equal", self, other)
    def __lt__(self, other): return self._op("less", self, other)
    def __le__(self, other): return self._op("less_equal", self, other)

    @property
    def T(self) -> Any:
        return self._op("transpose", self)


class KerasTensor(TensorOperators):
    """A symbolic tensor: a shape (batch first, None where unknown), a dtype,
    and the node that produced it (None for a model input).

    Python's operators on a KerasTensor record Keras ops
    (``TensorOperators``), as they do in Keras.
    """

    # NumPy must hand mixed expressions (array * tensor) back to us.
    __array_ufunc__ = None

    def __init__(self, shape: Any, dtype: str = "float32", name: str | None = None,
                 history: tuple[Node, int] | None = None) -> None:
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype).name
        self.name = name
        self.history = history

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def node(self) -> Node | None:
        return None if self.history is None else self.history[0]

    @property
    def operation(self) -> Any:
        return None if self.history is None else self.history[0].operation

    def __repr__(self) -> str:
        producer = f", produced by {self.operation.name}" if self.history else ""
        name = f", name={self.name}" if self.name else ""
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}{name}{producer}>"

    def __bool__(self) -> bool:
        raise TypeError(
            "A symbolic tensor has no truth value: Python control flow (if/while) in "
            "`call` can depend on Python values such as `training`, not on tensor "
            "values; use fastconv.ops.where / ops.cond-free formulations instead."
        )

    def __len__(self) -> int:
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of a symbolic tensor of shape {self.shape} is unknown.")
        return self.shape[0]

    def __iter__(self):
        raise TypeError("A symbolic tensor cannot be iterated; use ops.split or slicing.")

    def __hash__(self) -> int:
        return id(self)


class Node:
    """One call of an operation on symbolic tensors.

    Attributes
    ----------
    operation : Layer or Operation
    inputs : list
        The flat inputs: KerasTensors, and (for Keras ops that read weights)
        ``Variable`` objects.
    structure : Any
        How the call's first argument nests the inputs (see ``flatten``).
    outputs : list of KerasTensor
    output_structure : Any
    training : bool or None
        An explicit ``training=`` given at the call, which overrides the
        model's mode for this node (None: follow the model).
    """

    def __init__(self, operation: Any, inputs: list, structure: Any, outputs: list,
                 output_structure: Any, training: bool | None = None) -> None:
        self.operation = operation
        self.inputs = inputs
        self.structure = structure
        self.outputs = outputs
        self.output_structure = output_structure
        self.training = training
        for i, tensor in enumerate(outputs):
            tensor.history = (self, i)

    @property
    def input_tensors(self) -> list[KerasTensor]:
        return [t for t in self.inputs if isinstance(t, KerasTensor)]

    def __repr__(self) -> str:
        return f"<Node {self.operation.name}: {len(self.inputs)} in, {len(self.outputs)} out>"


# ----------------------------------------------------------------------------
# nested structures of tensors (one level: a tensor, or a list/tuple/dict)

SINGLE = "single"


def flatten(value: Any) -> tuple[list, Any]:
    """(flat list, structure) for a value, a list/tuple of values or a dict."""
    if isinstance(value, dict):
        keys = list(value)
        return [value[k] for k in keys], ("dict", keys)
    if isinstance(value, (list, tuple)):
        return list(value), ("list" if isinstance(value, list) else "tuple", len(value))
    return [value], SINGLE


def unflatten(flat: list, structure: Any) -> Any:
    if structure == SINGLE:
        return flat[0]
    kind, info = structure
    if kind == "dict":
        return dict(zip(info, flat))
    return list(flat) if kind == "list" else tuple(flat)


def is_symbolic(value: Any) -> bool:
    """Whether a value (or any element of a list/tuple/dict) is a KerasTensor."""
    if isinstance(value, KerasTensor):
        return True
    if isinstance(value, dict):
        return any(isinstance(v, KerasTensor) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_symbolic(v) for v in value)
    return False

"""The machinery of the Keras ops, and Keras' core ops (cast, convert_to_tensor,
shape, stop_gradient).

Each op is a :class:`Primitive`: a NumPy forward ``forward(*args, **static)
-> out`` and a backward ``backward(dy, out, *args, **static) -> gradients``
(one per positional argument, None where none flows). :func:`apply` runs an
op on its arguments:

- no argument is a ``KerasTensor``: the forward runs at once on the values
  (a ``Variable`` counts as its ``.value``) and its array is returned;
- some argument is symbolic: the call is recorded as a graph ``Node`` whose
  operation is an :class:`Operation`. The node's inputs are the KerasTensor
  and Variable arguments; constants (numbers, arrays) stay on the operation.
  The output's shape and dtype come from running the forward on zeros, each
  unknown (None) dimension probed with two sizes: an output dimension that
  differs between the two runs is unknown too (or, for an op with an
  ``output_spec``, from that rule when a dimension is unknown).

The executor calls ``Operation.forward(inputs, training)`` and
``Operation.backward(ctx, dy, need_dx)``; the latter shapes each gradient to
its input (summing broadcast dimensions) in the input's dtype, and gives
integer and boolean inputs none.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Number
from typing import Any

import numpy as np

from fastconv.graph import tape as tape_module
from fastconv.graph.node import KerasTensor, Node, is_symbolic
from fastconv.runtime import batch as _batch

__all__ = ["Operation", "cast", "convert_to_tensor", "shape", "stop_gradient"]

# Sizes an unknown dimension takes while an output shape is inferred. Both are
# divisible by 2, 3 and 6 so that halving or splitting a batch still probes.
_PROBE_SIZES = (6, 12)


@dataclass(frozen=True)
class Primitive:
    """A Keras op's NumPy definition.

    Attributes
    ----------
    name : str
    forward : callable
        ``forward(*args, **static) -> out``; with ``aux``, ``(out, aux)``:
        something the backward needs besides the output (max pooling's argmax).
    backward : callable or None
        ``backward(dy, out, *args, **static)`` returning one gradient (or
        None) per positional argument; with ``aux``, ``out`` is ``(out, aux)``.
        None: the op has no gradient (boolean and integer results).
    arg_names : tuple of str
        The positional arguments' Keras names, for error messages; with
        ``variadic`` the one name of the sequence they come from.
    output_spec : callable, optional
        ``output_spec(*args, **static) -> (shape, dtype)`` from the call's
        arguments (KerasTensors among them), as Keras'
        ``compute_output_spec``: used instead of running the forward on
        probe sizes when an input dimension is unknown, for ops whose
        forward cannot run on every size (a convolution's window may be
        larger than a probe).
    """

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Sequence[Any]] | None
    arg_names: tuple[str, ...]
    variadic: bool = False
    aux: bool = False
    output_spec: Callable[..., tuple[tuple, str]] | None = None

    def arg_name(self, i: int) -> str:
        return f"{self.arg_names[0]}[{i}]" if self.variadic else self.arg_names[i]


_counters: dict[str, itertools.count] = {}


def _unique_name(base: str) -> str:
    """``base``, then ``base_1``, ``base_2``, ... as Keras names its ops."""
    k = next(_counters.setdefault(base, itertools.count()))
    return base if k == 0 else f"{base}_{k}"


def is_variable(value: Any) -> bool:
    """Whether ``value`` is a fastconv ``Variable``.

    The layers import this package (they call its kernels), so it cannot
    import them: a Variable is known by what the executor uses of it.
    """
    return hasattr(value, "accumulate_grad") and hasattr(value, "value")


def _is_node_input(value: Any) -> bool:
    return isinstance(value, KerasTensor) or is_variable(value)


def concrete(value: Any) -> Any:
    """A Variable's value; anything else as it is."""
    return value.value if is_variable(value) else value


def shape_of(value: Any) -> tuple:
    """The shape of a tensor-like value (None for unknown symbolic dimensions)."""
    if isinstance(value, KerasTensor):
        return value.shape
    return np.shape(concrete(value))


class Operation:
    """One recorded call of a Keras op: the operation of a graph node.

    Parameters
    ----------
    primitive : Primitive
    args : sequence
        The call's positional arguments; the KerasTensors and Variables
        among them are the node's inputs, the rest are kept here.
    static : dict
        The call's other arguments (axes, shapes, strides, ...).
    name : str, optional
        Defaults to the primitive's name (made unique).
    """

    # The Variables an op reads are node inputs, not weights the op owns.
    trainable_weights: list = []

    def __init__(self, primitive: Primitive, args: Sequence[Any], static: dict[str, Any],
                 name: str | None = None) -> None:
        self.primitive = primitive
        self.name = _unique_name(name or primitive.name)
        self.static = static
        self._slots = [i for i, a in enumerate(args) if _is_node_input(a)]
        self._constants = {i: a for i, a in enumerate(args) if not _is_node_input(a)}
        self._n_args = len(args)

    def _arguments(self, inputs: Sequence[Any]) -> list:
        args = [self._constants.get(i) for i in range(self._n_args)]
        for i, value in zip(self._slots, inputs):
            args[i] = value
        return args

    def forward(self, inputs: Sequence[Any], training: bool = False) -> tuple[Any, Any]:
        """The op's output for the node's input values, and the backward's context."""
        args = self._arguments(inputs)
        result = self.primitive.forward(*args, **self.static)
        out = result[0] if self.primitive.aux else result
        return out, (args, result)

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> list:
        """The gradients of the node's inputs, in order (None where none flows)."""
        args, result = ctx
        if self.primitive.backward is None or not need_dx:
            return [None] * len(self._slots)
        grads = self.primitive.backward(dy, result, *args, **self.static)
        return [fit_gradient(grads[i], args[i]) for i in self._slots]

    def get_config(self) -> dict[str, Any]:
        """The op's name, static arguments and constant positional arguments."""
        config = {"name": self.name, **self.static}
        for i, value in self._constants.items():
            config[self.primitive.arg_name(i)] = value
        return config

    def __repr__(self) -> str:
        return f"<Operation {self.name}>"


def fit_gradient(grad: Any, x: Any) -> np.ndarray | None:
    """``grad`` as the gradient of ``x``: x's shape (broadcast dimensions
    summed) and dtype, writable; None for integer and boolean ``x``."""
    x = np.asarray(x)
    if grad is None or not np.issubdtype(x.dtype, np.inexact):
        return None
    grad = np.asarray(grad)
    if grad.shape != x.shape:
        grad = np.broadcast_to(grad, np.broadcast_shapes(grad.shape, x.shape))
        lead = grad.ndim - x.ndim
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(x.shape) if n == 1 and grad.shape[lead + i] != 1)
        # A sum over the leading (batch) axis goes by its chunks, as a weight
        # gradient does (fastconv.runtime.batch).
        grad = (_batch.sum_rows(grad, axes[1:]) if axes[:1] == (0,) and grad.ndim
                else np.sum(grad, axis=axes)).reshape(x.shape)
    grad = grad.astype(x.dtype, copy=False)
    # Broadcast views are read-only; a gradient may be added into later.
    return grad if grad.flags.writeable else grad.copy()


def _check_argument(primitive: Primitive, i: int, value: Any) -> None:
    ok = (_is_node_input(value) or isinstance(value, (np.ndarray, np.generic, Number))
          or (isinstance(value, (list, tuple)) and not isinstance(value, str)))
    if not ok:
        raise TypeError(
            f"Invalid value for argument `{primitive.arg_name(i)}` of `{primitive.name}`: "
            f"expected a tensor, a Variable, an array or a number, received {value!r} "
            f"({type(value).__name__}).")
    if isinstance(value, (list, tuple)) and is_symbolic(value):
        raise TypeError(
            f"Invalid value for argument `{primitive.arg_name(i)}` of `{primitive.name}`: "
            "a list holding symbolic tensors; combine them with ops.stack first.")


def apply(primitive: Primitive, args: Sequence[Any], static: dict[str, Any] | None = None,
          name: str | None = None) -> Any:
    """Run ``primitive`` on ``args`` at once, or record it when one is symbolic
    (see the module docstring). ``name`` names the recorded node's operation."""
    static = {} if static is None else static
    for i, value in enumerate(args):
        if not isinstance(value, KerasTensor):
            _check_argument(primitive, i, value)
    if not any(isinstance(a, KerasTensor) for a in args):
        if tape_module.recording() and primitive.backward is not None:
            slots = [i for i, a in enumerate(args) if is_variable(a) or tape_module.recorded(a)]
            if slots:
                return _apply_on_tape(primitive, args, static, slots)
        result = primitive.forward(*[concrete(a) for a in args], **static)
        return np.asarray(result[0] if primitive.aux else result)
    operation = Operation(primitive, args, static, name)
    inputs = [a for a in args if _is_node_input(a)]
    shape, dtype = _infer_output(operation, inputs)
    out = KerasTensor(shape, dtype)
    Node(operation, inputs, ("list", len(inputs)), [out], "single")
    return out


def _apply_on_tape(primitive: Primitive, args: Sequence[Any], static: dict[str, Any],
                   slots: list[int]) -> np.ndarray:
    """Run ``primitive`` eagerly and record it on the active GradientTape,
    its inputs being the arguments at ``slots`` (Variables and values the
    tape already holds)."""
    operation = Operation(primitive, args, static)
    operation._slots = slots
    operation._constants = {i: a for i, a in enumerate(args) if i not in slots}
    inputs = [args[i] for i in slots]
    out, ctx = operation.forward([concrete(a) for a in inputs])
    out = np.asarray(out)
    if any(out is a for a in inputs):
        out = out.view()  # the tape tells values apart by identity
    tape_module.record(operation, ctx, inputs, ("list", len(inputs)), out)
    return out


def _infer_output(operation: Operation, inputs: list) -> tuple[tuple, str]:
    """The output shape (None where it follows an unknown input dimension) and
    dtype, from the forward run on zeros."""
    unknown = any(d is None for t in inputs if isinstance(t, KerasTensor) for d in t.shape)
    if unknown and operation.primitive.output_spec is not None:
        return operation.primitive.output_spec(*operation._arguments(inputs),
                                               **operation.static)
    shapes = []
    for size in _PROBE_SIZES[:2 if unknown else 1]:
        probes = [np.zeros(tuple(size if d is None else d for d in t.shape), t.dtype)
                  if isinstance(t, KerasTensor) else t.value for t in inputs]
        try:
            with np.errstate(all="ignore"):
                out = np.asarray(operation.forward(probes)[0])
        except (ValueError, IndexError, TypeError) as error:
            described = ", ".join(f"{operation.primitive.arg_name(i)}: shape {shape_of(a)}"
                                  for i, a in zip(operation._slots, inputs))
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(f"Invalid arguments for `{operation.primitive.name}` ({described}): "
                       f"{error}") from error
        shapes.append(out.shape)
    if len(shapes) == 2 and len(shapes[0]) != len(shapes[1]):
        raise ValueError(f"The rank of the output of `{operation.primitive.name}` depends on "
                         "an unknown (None) input dimension.")
    shape = tuple(a if a == b else None for a, b in zip(shapes[0], shapes[-1]))
    return shape, out.dtype.name


def check_axis(axis: Any, name: str = "axis", allow_none: bool = True) -> Any:
    """``axis`` if it is an int (or a tuple of ints, or None when allowed)."""
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if (axis is None and allow_none) or is_int(axis):
        return axis if axis is None else int(axis)
    if isinstance(axis, (tuple, list)) and all(is_int(a) for a in axis):
        return tuple(int(a) for a in axis)
    expected = "None, an int or a tuple of ints" if allow_none else "an int or a tuple of ints"
    raise TypeError(f"Invalid value for argument `{name}`: expected {expected}, received "
                    f"{name}={axis!r}.")


def check_dtype(dtype: Any, name: str = "dtype") -> str | None:
    """``dtype``'s NumPy name (None stays None)."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"Invalid value for argument `{name}`: expected a dtype such as "
                        f"'float32' or 'int32', received {name}={dtype!r}.") from None


# ----------------------------------------------------------------------------
# core ops


def _cast_backward(dy: np.ndarray, out: np.ndarray, x: np.ndarray, dtype: str) -> tuple:
    return (dy,)


_CAST = Primitive("cast", lambda x, dtype: np.asarray(x).astype(dtype), _cast_backward, ("x",))
_STOP_GRADIENT = Primitive("stop_gradient", lambda x: np.array(x), None, ("variable",))


def cast(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype``.

    Parameters
    ----------
    x : tensor
    dtype : str or dtype

    Returns
    -------
    tensor
        The gradient flows back to floating-point inputs, in their dtype.
    """
    dtype = check_dtype(dtype)
    if dtype is None:
        raise TypeError("Invalid value for argument `dtype` of `cast`: expected a dtype, "
                        "received dtype=None.")
    return apply(_CAST, (x,), {"dtype": dtype})


def convert_to_tensor(x: Any, dtype: Any = None, sparse: bool | None = None) -> Any:
    """``x`` as a tensor: a NumPy array, or ``x`` itself when it is symbolic.

    Parameters
    ----------
    x : array-like, Variable or KerasTensor
        Python floats become float32 and Python ints int32, as in Keras.
    dtype : str or dtype, optional
    sparse : None or False
        Sparse tensors are not supported.

    Returns
    -------
    ndarray or KerasTensor
        A Variable gives a copy of its value.
    """
    if sparse:
        raise ValueError("Invalid value for argument `sparse` of `convert_to_tensor`: "
                         "expected None or False (no sparse tensors), received "
                         f"sparse={sparse!r}.")
    dtype = check_dtype(dtype)
    if isinstance(x, KerasTensor):
        return x if dtype is None or dtype == x.dtype else cast(x, dtype)
    if is_variable(x):
        return np.array(x.value, dtype=dtype)
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x, dtype=dtype)
    try:
        value = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise TypeError(f"Invalid value for argument `x` of `convert_to_tensor`: expected "
                        f"an array-like, received {x!r} ({error}).") from None
    if dtype is None and value.dtype == np.float64:
        return value.astype(np.float32)
    if dtype is None and value.dtype == np.int64:
        return value.astype(np.int32)
    return value


def shape(x: Any) -> tuple:
    """The shape of ``x`` as a tuple (None for unknown symbolic dimensions).

    Returns
    -------
    tuple
    """
    return shape_of(x)


def stop_gradient(variable: Any) -> Any:
    """``variable``'s value, through which no gradient flows.

    Returns
    -------
    tensor
    """
    return apply(_STOP_GRADIENT, (variable,))

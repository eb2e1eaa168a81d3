"""Keras' NumPy-like ops: element-wise arithmetic, comparisons, reductions,
linear algebra, and shape and indexing ops.

Each public function has Keras 3's name, arguments and defaults, computes
with NumPy on concrete values and records a node on symbolic ones (see
``fastconv.ops.core``). Backward rules sit next to their ops; broadcasting
is undone once, by ``core.fit_gradient``, so a rule may return a gradient of
the broadcast shape. ``einsum`` differentiates each operand by another
einsum; ``tensordot`` and ``dot`` are written as einsums.
"""

from __future__ import annotations

import builtins  # this module defines Keras' abs, max, min, round and sum
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastconv.graph.node import KerasTensor, is_symbolic
from fastconv.ops.core import Primitive, apply, check_axis, check_dtype, concrete, shape_of
from fastconv.runtime import batch as _batch

__all__ = [
    "abs", "absolute", "add", "arange", "argmax", "argmin", "broadcast_to", "ceil", "clip",
    "concatenate", "divide", "dot", "einsum", "equal", "exp", "eye", "full", "expand_dims", "floor",
    "getitem", "greater", "greater_equal", "less", "less_equal", "log", "log1p", "logsumexp",
    "matmul", "max", "maximum", "mean", "min", "minimum", "multiply", "negative", "not_equal",
    "ones", "ones_like", "power", "repeat", "reshape", "round", "sign", "split", "sqrt", "square",
    "squeeze", "stack", "std", "subtract", "sum", "take", "tanh", "tensordot", "tile",
    "transpose", "true_divide", "var", "where", "zeros", "zeros_like",
]

_X1X2 = ("x1", "x2")


def _float(x: Any) -> np.ndarray:
    """``x`` as an array, integers and booleans as float32 (Keras' floatx)."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.inexact) else x.astype(np.float32)


def _zero_gradient(dy: np.ndarray, out: Any, *args: Any, **static: Any) -> tuple:
    """Step functions (floor, sign, ...): zero almost everywhere."""
    return (np.zeros_like(dy),) + (None,) * (len(args) - 1)


# ----------------------------------------------------------------------------
# element-wise arithmetic

def _divide_backward(dy: np.ndarray, out: np.ndarray, x1: Any, x2: Any) -> tuple:
    return dy / x2, -dy * out / x2


def _power_backward(dy: np.ndarray, out: np.ndarray, x1: Any, x2: Any) -> tuple:
    x1, x2 = np.asarray(x1), np.asarray(x2)
    # d/dx2 x1 ** x2 = out * log(x1), defined for x1 > 0; taken as 0 elsewhere.
    positive = x1 > 0
    log_x1 = np.log(np.where(positive, x1, 1))
    return dy * x2 * np.power(x1, x2 - 1), np.where(positive, dy * out * log_x1, 0)


def _extremum_backward(pick_first: Any) -> Any:
    def backward(dy: np.ndarray, out: np.ndarray, x1: Any, x2: Any) -> tuple:
        first = pick_first(np.asarray(x1), np.asarray(x2))  # ties go to x1
        return np.where(first, dy, 0), np.where(first, 0, dy)
    return backward


def _clip_backward(dy: np.ndarray, out: np.ndarray, x: Any, x_min: Any, x_max: Any) -> tuple:
    below, above = np.less(x, x_min), np.greater(x, x_max)
    return (np.where(below | above, 0, dy), np.where(below & ~above, dy, 0),
            np.where(above, dy, 0))


_ADD = Primitive("add", np.add, lambda dy, out, x1, x2: (dy, dy), _X1X2)
_SUBTRACT = Primitive("subtract", np.subtract, lambda dy, out, x1, x2: (dy, -dy), _X1X2)
_MULTIPLY = Primitive("multiply", np.multiply,
                      lambda dy, out, x1, x2: (dy * x2, dy * x1), _X1X2)
_DIVIDE = Primitive("divide", np.true_divide, _divide_backward, _X1X2)
_POWER = Primitive("power", np.power, _power_backward, _X1X2)
_MAXIMUM = Primitive("maximum", np.maximum, _extremum_backward(np.greater_equal), _X1X2)
_MINIMUM = Primitive("minimum", np.minimum, _extremum_backward(np.less_equal), _X1X2)
_CLIP = Primitive("clip", np.clip, _clip_backward, ("x", "x_min", "x_max"))
_NEGATIVE = Primitive("negative", np.negative, lambda dy, out, x: (-dy,), ("x",))
_ABS = Primitive("abs", np.abs, lambda dy, out, x: (dy * np.sign(x),), ("x",))
_SQUARE = Primitive("square", np.square, lambda dy, out, x: (2 * dy * x,), ("x",))
_SQRT = Primitive("sqrt", lambda x: np.sqrt(_float(x)),
                  lambda dy, out, x: (dy / (2 * out),), ("x",))
_EXP = Primitive("exp", lambda x: np.exp(_float(x)), lambda dy, out, x: (dy * out,), ("x",))
_LOG = Primitive("log", lambda x: np.log(_float(x)), lambda dy, out, x: (dy / x,), ("x",))
_LOG1P = Primitive("log1p", lambda x: np.log1p(_float(x)),
                   lambda dy, out, x: (dy / (1 + x),), ("x",))
_TANH = Primitive("tanh", lambda x: np.tanh(_float(x)),
                  lambda dy, out, x: (dy * (1 - out * out),), ("x",))
_SIGN = Primitive("sign", np.sign, _zero_gradient, ("x",))
_FLOOR = Primitive("floor", lambda x: np.floor(_float(x)), _zero_gradient, ("x",))
_CEIL = Primitive("ceil", lambda x: np.ceil(_float(x)), _zero_gradient, ("x",))
_ROUND = Primitive("round", lambda x, decimals: np.round(x, decimals), _zero_gradient, ("x",))


def _where_backward(dy: np.ndarray, out: np.ndarray, condition: Any, x1: Any, x2: Any) -> tuple:
    condition = np.asarray(condition, dtype=bool)
    return None, np.where(condition, dy, 0), np.where(condition, 0, dy)


_WHERE = Primitive("where", lambda condition, x1, x2: np.where(condition, x1, x2),
                   _where_backward, ("condition", "x1", "x2"))


def add(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 + x2``, broadcasting.

    Returns
    -------
    tensor
    """
    return apply(_ADD, (x1, x2))


def subtract(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 - x2``, broadcasting.

    Returns
    -------
    tensor
    """
    return apply(_SUBTRACT, (x1, x2))


def multiply(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 * x2``, broadcasting.

    Returns
    -------
    tensor
    """
    return apply(_MULTIPLY, (x1, x2))


def divide(x1: Any, x2: Any) -> Any:
    """Element-wise true division ``x1 / x2``, broadcasting.

    Returns
    -------
    tensor
    """
    return apply(_DIVIDE, (x1, x2))


def true_divide(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 / x2`` (the same as ``divide``).

    Returns
    -------
    tensor
    """
    return apply(_DIVIDE, (x1, x2), name="true_divide")


def power(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 ** x2``, broadcasting. The gradient with respect to
    ``x2`` is taken as 0 where ``x1 <= 0``.

    Returns
    -------
    tensor
    """
    return apply(_POWER, (x1, x2))


def maximum(x1: Any, x2: Any) -> Any:
    """Element-wise maximum; on ties the gradient goes to ``x1``.

    Returns
    -------
    tensor
    """
    return apply(_MAXIMUM, (x1, x2))


def minimum(x1: Any, x2: Any) -> Any:
    """Element-wise minimum; on ties the gradient goes to ``x1``.

    Returns
    -------
    tensor
    """
    return apply(_MINIMUM, (x1, x2))


def clip(x: Any, x_min: Any, x_max: Any) -> Any:
    """``x`` limited to ``[x_min, x_max]``.

    Returns
    -------
    tensor
    """
    return apply(_CLIP, (x, x_min, x_max))


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    """``x1`` where ``condition`` holds, else ``x2``; with neither given, the
    indices of the nonzero elements of ``condition`` (concrete values only).

    Returns
    -------
    tensor, or tuple of index arrays
    """
    if x1 is None and x2 is None:
        if is_symbolic(condition):
            raise ValueError("`where(condition)` without `x1` and `x2` gives indices whose "
                             "number depends on the values: supported on concrete values "
                             "only, not on symbolic tensors.")
        return np.nonzero(concrete(condition))
    if x1 is None or x2 is None:
        raise ValueError("Invalid arguments for `where`: give both `x1` and `x2` or neither, "
                         f"received x1={x1!r}, x2={x2!r}.")
    return apply(_WHERE, (condition, x1, x2))


def negative(x: Any) -> Any:
    """Element-wise ``-x``.

    Returns
    -------
    tensor
    """
    return apply(_NEGATIVE, (x,))


def abs(x: Any) -> Any:  # noqa: A001 - Keras' name
    """Element-wise absolute value (gradient 0 at 0).

    Returns
    -------
    tensor
    """
    return apply(_ABS, (x,))


def absolute(x: Any) -> Any:
    """Element-wise absolute value (the same as ``abs``).

    Returns
    -------
    tensor
    """
    return apply(_ABS, (x,), name="absolute")


def square(x: Any) -> Any:
    """Element-wise ``x * x``.

    Returns
    -------
    tensor
    """
    return apply(_SQUARE, (x,))


def sqrt(x: Any) -> Any:
    """Element-wise square root (integers computed in float32).

    Returns
    -------
    tensor
    """
    return apply(_SQRT, (x,))


def exp(x: Any) -> Any:
    """Element-wise exponential (integers computed in float32).

    Returns
    -------
    tensor
    """
    return apply(_EXP, (x,))


def log(x: Any) -> Any:
    """Element-wise natural logarithm (integers computed in float32).

    Returns
    -------
    tensor
    """
    return apply(_LOG, (x,))


def log1p(x: Any) -> Any:
    """Element-wise ``log(1 + x)``, accurate for small ``x``.

    Returns
    -------
    tensor
    """
    return apply(_LOG1P, (x,))


def tanh(x: Any) -> Any:
    """Element-wise hyperbolic tangent.

    Returns
    -------
    tensor
    """
    return apply(_TANH, (x,))


def sign(x: Any) -> Any:
    """Element-wise sign: -1, 0 or 1 (gradient 0).

    Returns
    -------
    tensor
    """
    return apply(_SIGN, (x,))


def floor(x: Any) -> Any:
    """Element-wise floor (gradient 0).

    Returns
    -------
    tensor
    """
    return apply(_FLOOR, (x,))


def ceil(x: Any) -> Any:
    """Element-wise ceiling (gradient 0).

    Returns
    -------
    tensor
    """
    return apply(_CEIL, (x,))


def round(x: Any, decimals: int = 0) -> Any:  # noqa: A001 - Keras' name
    """Element-wise rounding to ``decimals`` places, halves to even (gradient 0).

    Returns
    -------
    tensor
    """
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError("Invalid value for argument `decimals` of `round`: expected an int, "
                        f"received decimals={decimals!r}.")
    return apply(_ROUND, (x,), {"decimals": int(decimals)})


# ----------------------------------------------------------------------------
# comparisons: boolean results, no gradient

def _comparison(name: str, ufunc: np.ufunc) -> Primitive:
    return Primitive(name, ufunc, None, _X1X2)


_GREATER = _comparison("greater", np.greater)
_GREATER_EQUAL = _comparison("greater_equal", np.greater_equal)
_LESS = _comparison("less", np.less)
_LESS_EQUAL = _comparison("less_equal", np.less_equal)
_EQUAL = _comparison("equal", np.equal)
_NOT_EQUAL = _comparison("not_equal", np.not_equal)


def greater(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 > x2`` (boolean).

    Returns
    -------
    tensor of bool
    """
    return apply(_GREATER, (x1, x2))


def greater_equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 >= x2`` (boolean).

    Returns
    -------
    tensor of bool
    """
    return apply(_GREATER_EQUAL, (x1, x2))


def less(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 < x2`` (boolean).

    Returns
    -------
    tensor of bool
    """
    return apply(_LESS, (x1, x2))


def less_equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 <= x2`` (boolean).

    Returns
    -------
    tensor of bool
    """
    return apply(_LESS_EQUAL, (x1, x2))


def equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 == x2`` (boolean).

    Returns
    -------
    tensor of bool
    """
    return apply(_EQUAL, (x1, x2))


def not_equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 != x2`` (boolean).

    Returns
    -------
    tensor of bool
    """
    return apply(_NOT_EQUAL, (x1, x2))


# ----------------------------------------------------------------------------
# reductions

def _spread(dy: np.ndarray, shape: tuple, axis: Any, keepdims: bool) -> np.ndarray:
    """A reduction's output-shaped ``dy`` broadcast back over the reduced axes."""
    if axis is not None and not keepdims:
        axes = (axis,) if isinstance(axis, int) else axis
        dy = np.expand_dims(dy, tuple(sorted(a % len(shape) for a in axes)))
    elif axis is None and not keepdims:
        dy = np.reshape(dy, (1,) * len(shape))
    return np.broadcast_to(dy, shape)


def _count(shape: tuple, axis: Any) -> int:
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


def _sum_backward(dy: np.ndarray, out: Any, x: Any, axis: Any, keepdims: bool) -> tuple:
    return (_spread(dy, np.shape(x), axis, keepdims),)


def _mean_backward(dy: np.ndarray, out: Any, x: Any, axis: Any, keepdims: bool) -> tuple:
    return (_spread(dy, np.shape(x), axis, keepdims) / _count(np.shape(x), axis),)


def _extreme_backward(dy: np.ndarray, out: Any, x: Any, axis: Any, keepdims: bool,
                      initial: Any) -> tuple:
    """dy shared equally by the elements equal to the extremum (as TensorFlow)."""
    x = np.asarray(x)
    hit = x == _spread(out, x.shape, axis, keepdims)
    ties = np.sum(hit, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(hit, _spread(dy, x.shape, axis, keepdims) / ties, 0),)


def _logsumexp(x: Any, axis: Any, keepdims: bool) -> np.ndarray:
    x = _float(x)
    peak = np.max(x, axis=axis, keepdims=True)
    # An all -inf slice has peak -inf; shifting by 0 there keeps it -inf, not nan.
    peak = np.where(np.isfinite(peak), peak, 0)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


def _logsumexp_backward(dy: np.ndarray, out: Any, x: Any, axis: Any, keepdims: bool) -> tuple:
    shape = np.shape(x)
    return (_spread(dy, shape, axis, keepdims) * np.exp(x - _spread(out, shape, axis, keepdims)),)


def _var_backward(dy: np.ndarray, out: Any, x: Any, axis: Any, keepdims: bool) -> tuple:
    shape = np.shape(x)
    centred = x - np.mean(x, axis=axis, keepdims=True)
    return (_spread(dy, shape, axis, keepdims) * 2 * centred / _count(shape, axis),)


def _std_backward(dy: np.ndarray, out: Any, x: Any, axis: Any, keepdims: bool) -> tuple:
    (dvar,) = _var_backward(dy, out, x, axis, keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dvar / (2 * _spread(out, np.shape(x), axis, keepdims)),)


def _arg_extreme(function: Any) -> Any:
    def forward(x: Any, axis: Any, keepdims: bool) -> np.ndarray:
        return function(x, axis=axis, keepdims=keepdims).astype(np.int32)
    return forward


_SUM = Primitive("sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
                 _sum_backward, ("x",))
_MEAN = Primitive("mean", lambda x, axis, keepdims: np.mean(_float(x), axis=axis,
                                                           keepdims=keepdims),
                  _mean_backward, ("x",))
_MAX = Primitive("max", lambda x, axis, keepdims, initial: np.max(
    x, axis=axis, keepdims=keepdims, initial=initial), _extreme_backward, ("x",))
_MIN = Primitive("min", lambda x, axis, keepdims, initial: np.min(
    x, axis=axis, keepdims=keepdims, initial=initial), _extreme_backward, ("x",))
_ARGMAX = Primitive("argmax", _arg_extreme(np.argmax), None, ("x",))
_ARGMIN = Primitive("argmin", _arg_extreme(np.argmin), None, ("x",))
_LOGSUMEXP = Primitive("logsumexp", _logsumexp, _logsumexp_backward, ("x",))
_VAR = Primitive("var", lambda x, axis, keepdims: np.var(_float(x), axis=axis,
                                                         keepdims=keepdims),
                 _var_backward, ("x",))
_STD = Primitive("std", lambda x, axis, keepdims: np.std(_float(x), axis=axis,
                                                         keepdims=keepdims),
                 _std_backward, ("x",))


def _reduce(primitive: Primitive, x: Any, axis: Any, keepdims: bool, **extra: Any) -> Any:
    return apply(primitive, (x,), {"axis": check_axis(axis), "keepdims": bool(keepdims),
                                   **extra})


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple, or None for all).

    Returns
    -------
    tensor
    """
    return _reduce(_SUM, x, axis, keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis``.

    Returns
    -------
    tensor
    """
    return _reduce(_MEAN, x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Any:  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient equally.

    Returns
    -------
    tensor
    """
    return _reduce(_MAX, x, axis, keepdims, initial=initial)


def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Any:  # noqa: A001
    """Minimum over ``axis``; tied minima share the gradient equally.

    Returns
    -------
    tensor
    """
    return _reduce(_MIN, x, axis, keepdims, initial=initial)


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index (int32) of the first maximum along ``axis`` (of the flattened
    tensor when None).

    Returns
    -------
    tensor of int32
    """
    return apply(_ARGMAX, (x,), {"axis": check_axis(axis), "keepdims": bool(keepdims)})


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index (int32) of the first minimum along ``axis``.

    Returns
    -------
    tensor of int32
    """
    return apply(_ARGMIN, (x,), {"axis": check_axis(axis), "keepdims": bool(keepdims)})


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x)))`` over ``axis``, shifted by the maximum so it never overflows.

    Returns
    -------
    tensor
    """
    return _reduce(_LOGSUMEXP, x, axis, keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Population variance over ``axis``.

    Returns
    -------
    tensor
    """
    return _reduce(_VAR, x, axis, keepdims)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Population standard deviation over ``axis``.

    Returns
    -------
    tensor
    """
    return _reduce(_STD, x, axis, keepdims)


# ----------------------------------------------------------------------------
# linear algebra

def _matmul_backward(dy: np.ndarray, out: Any, x1: Any, x2: Any) -> tuple:
    a, b = np.asarray(x1), np.asarray(x2)
    # A 1-D operand is a row (x1) or a column (x2) whose extra axis the
    # product dropped; restore it in dy, then drop it from the gradient.
    g = dy
    if a.ndim == 1:
        g = np.expand_dims(g, -2)
    if b.ndim == 1:
        g = np.expand_dims(g, -1)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a.ndim == 2 and b2.ndim == 2:
        # x @ w with x's rows the batch: by batch chunks, as Dense.
        da, db = _batch.matmul(g, b2.T), _batch.matmul_rows_t(a, g)
    else:
        da = g @ np.swapaxes(b2, -1, -2)
        db = np.swapaxes(a2, -1, -2) @ g
    return (da[..., 0, :] if a.ndim == 1 else da), (db[..., 0] if b.ndim == 1 else db)


def _matmul(x1: Any, x2: Any) -> np.ndarray:
    a, b = np.asarray(x1), np.asarray(x2)
    if a.ndim == 2 and b.ndim == 2:
        return _batch.matmul(a, b)  # the rows of x1 are the batch's: by chunks
    return np.matmul(a, b)


_MATMUL = Primitive("matmul", _matmul, _matmul_backward, _X1X2)


def matmul(x1: Any, x2: Any) -> Any:
    """Matrix product with NumPy's rules: batch dimensions broadcast, a 1-D
    operand is a vector.

    Returns
    -------
    tensor
    """
    for name, value in (("x1", x1), ("x2", x2)):
        if len(shape_of(value)) == 0:
            raise ValueError(f"Invalid value for argument `{name}` of `matmul`: expected a "
                             "tensor of rank >= 1, received a scalar.")
    return apply(_MATMUL, (x1, x2))


def _parse_einsum(subscripts: str) -> tuple[list[str], str]:
    """Operand and output subscripts; the implicit output is the letters that
    appear once, sorted, as NumPy has it."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    operands = inputs.split(",")
    if not arrow:
        letters = "".join(operands)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return operands, output


def _einsum_forward(*operands: Any, subscripts: str) -> np.ndarray:
    return np.einsum(subscripts, *operands, optimize=True)


def _einsum_backward(dy: np.ndarray, out: Any, *operands: Any, subscripts: str) -> list:
    inputs, output = _parse_einsum(subscripts)
    grads = []
    for i, (spec, x) in enumerate(zip(inputs, operands)):
        if "." in spec or len(set(spec)) != len(spec):
            raise NotImplementedError(
                f"The gradient of einsum('{subscripts}') is not supported: operands with "
                "'...' or a repeated index (a diagonal) can only be computed forward.")
        others = [(s, o) for j, (s, o) in enumerate(zip(inputs, operands)) if j != i]
        # Letters found only in this operand are summed over by the forward;
        # the gradient is constant along them.
        kept = "".join(c for c in spec if c in output or any(c in s for s, _ in others))
        terms = ",".join([output] + [s for s, _ in others])
        g = np.einsum(f"{terms}->{kept}", dy, *[o for _, o in others], optimize=True)
        x_shape = np.shape(x)
        g = g.reshape([n if c in kept else 1 for c, n in zip(spec, x_shape)])
        grads.append(np.broadcast_to(g, x_shape))
    return grads


_EINSUM = Primitive("einsum", _einsum_forward, _einsum_backward, ("operands",), variadic=True)


def einsum(subscripts: str, *operands: Any) -> Any:
    """Einstein summation, as ``np.einsum``.

    Parameters
    ----------
    subscripts : str
        E.g. ``"ij,jk->ik"``; the output may be implicit. Gradients support
        subscripts without ``...`` and without an index repeated in one operand.
    *operands : tensors

    Returns
    -------
    tensor
    """
    if not isinstance(subscripts, str):
        raise TypeError("Invalid value for argument `subscripts` of `einsum`: expected a "
                        f"str such as 'ij,jk->ik', received {subscripts!r}.")
    n_specs = len(subscripts.partition("->")[0].split(","))
    if n_specs != len(operands) or not operands:
        raise ValueError(f"Invalid arguments for `einsum`: subscripts='{subscripts}' names "
                         f"{n_specs} operands, received {len(operands)}.")
    return apply(_EINSUM, operands, {"subscripts": subscripts})


def _contraction(x1: Any, x2: Any, axes1: Sequence[int], axes2: Sequence[int],
                 name: str) -> Any:
    """The einsum contracting ``x1``'s ``axes1`` with ``x2``'s ``axes2``;
    output: x1's free axes, then x2's, in order."""
    r1, r2 = len(shape_of(x1)), len(shape_of(x2))
    if r1 + r2 > len(string.ascii_letters):
        raise ValueError(f"`{name}` supports operands of total rank up to 52.")
    letters = iter(string.ascii_letters)
    s1 = [next(letters) for _ in range(r1)]
    s2 = [next(letters) for _ in range(r2)]
    for a1, a2 in zip(axes1, axes2):
        s2[a2 % r2] = s1[a1 % r1]
    contracted = set(s1[a % r1] for a in axes1)
    output = [c for c in s1 if c not in contracted] + [c for c in s2 if c not in contracted]
    subscripts = f"{''.join(s1)},{''.join(s2)}->{''.join(output)}"
    return apply(_EINSUM, (x1, x2), {"subscripts": subscripts}, name=name)


def tensordot(x1: Any, x2: Any, axes: Any = 2) -> Any:
    """Sum of products over ``axes``: an int N (x1's last N with x2's first N)
    or a pair of axis lists.

    Returns
    -------
    tensor
    """
    r1, r2 = len(shape_of(x1)), len(shape_of(x2))
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        if not 0 <= axes <= builtins.min(r1, r2):
            raise ValueError(f"Invalid value for argument `axes` of `tensordot`: expected 0 "
                             f"to {builtins.min(r1, r2)} for ranks {r1} and {r2}, received "
                             f"axes={axes}.")
        axes1, axes2 = list(range(r1 - axes, r1)), list(range(axes))
    elif isinstance(axes, (list, tuple)) and len(axes) == 2:
        axes1, axes2 = ([check_axis(a, "axes")] if isinstance(a, (int, np.integer)) else
                        list(check_axis(a, "axes")) for a in axes)
        if len(axes1) != len(axes2):
            raise ValueError("Invalid value for argument `axes` of `tensordot`: the two axis "
                             f"lists differ in length, received axes={axes!r}.")
    else:
        raise TypeError("Invalid value for argument `axes` of `tensordot`: expected an int "
                        f"or a pair of axis lists, received axes={axes!r}.")
    return _contraction(x1, x2, axes1, axes2, "tensordot")


def dot(x1: Any, x2: Any) -> Any:
    """``np.dot``: a scalar operand multiplies; otherwise x1's last axis is
    contracted with x2's second-to-last (its only one when 1-D).

    Returns
    -------
    tensor
    """
    r1, r2 = len(shape_of(x1)), len(shape_of(x2))
    if r1 == 0 or r2 == 0:
        return apply(_MULTIPLY, (x1, x2), name="dot")
    return _contraction(x1, x2, [r1 - 1], [builtins.max(r2 - 2, 0)], "dot")


# ----------------------------------------------------------------------------
# shape ops

def _reshape_backward(dy: np.ndarray, out: Any, x: Any, **static: Any) -> tuple:
    return (np.reshape(dy, np.shape(x)),)


def _transpose_backward(dy: np.ndarray, out: Any, x: Any, axes: Any) -> tuple:
    return (np.transpose(dy, None if axes is None else np.argsort(axes)),)


def _concatenate_backward(dy: np.ndarray, out: Any, *xs: Any, axis: int) -> list:
    bounds = np.cumsum([np.shape(x)[axis] for x in xs])[:-1]
    return np.split(dy, bounds, axis=axis)


def _stack_backward(dy: np.ndarray, out: Any, *xs: Any, axis: int) -> list:
    return [np.take(dy, k, axis=axis) for k in range(len(xs))]


def _split_forward(x: Any, indices_or_sections: Any, axis: int, index: int) -> np.ndarray:
    return np.split(x, indices_or_sections, axis=axis)[index]


def _split_backward(dy: np.ndarray, out: Any, x: Any, indices_or_sections: Any, axis: int,
                    index: int) -> tuple:
    dx = np.zeros(np.shape(x), dy.dtype)
    np.split(dx, indices_or_sections, axis=axis)[index][...] = dy
    return (dx,)


def _getitem_backward(dy: np.ndarray, out: Any, x: Any, key: Any) -> tuple:
    dx = np.zeros(np.shape(x), dy.dtype)
    np.add.at(dx, key, dy)  # repeated advanced indices add up
    return (dx,)


def _take_backward(dy: np.ndarray, out: Any, x: Any, indices: Any, axis: Any) -> tuple:
    x_shape = np.shape(x)
    indices = np.asarray(indices)
    if axis is None:
        dx = np.zeros(int(np.prod(x_shape)), dy.dtype)
        np.add.at(dx, indices, dy)
        return dx.reshape(x_shape), None
    axis %= len(x_shape)
    dx = np.zeros(x_shape, dy.dtype)
    k = indices.ndim
    # Bring the indexed axis (of dx) and the index axes (of dy) to the front.
    np.add.at(np.moveaxis(dx, axis, 0), indices,
              np.moveaxis(dy, list(range(axis, axis + k)), list(range(k))))
    return dx, None


def _tile_backward(dy: np.ndarray, out: Any, x: Any, repeats: tuple) -> tuple:
    x_shape = np.shape(x)
    d = builtins.max(len(x_shape), len(repeats))
    shape = (1,) * (d - len(x_shape)) + tuple(x_shape)
    reps = (1,) * (d - len(repeats)) + tuple(repeats)
    # Output axis i is reps[i] copies of shape[i]: split it and sum the copies.
    g = np.reshape(dy, [n for pair in zip(reps, shape) for n in pair])
    return (np.sum(g, axis=tuple(range(0, 2 * d, 2))).reshape(x_shape),)


def _repeat_backward(dy: np.ndarray, out: Any, x: Any, repeats: Any, axis: Any) -> tuple:
    x_shape = np.shape(x)
    flat = axis is None
    axis = 0 if flat else axis % len(x_shape)
    n = int(np.prod(x_shape)) if flat else x_shape[axis]
    source = np.repeat(np.arange(n), repeats)  # which element each output slice copies
    dx = np.zeros((n,) if flat else x_shape, dy.dtype)
    np.add.at(np.moveaxis(dx, axis, 0), source, np.moveaxis(dy, axis, 0))
    return (dx.reshape(x_shape),)


_RESHAPE = Primitive("reshape", lambda x, newshape: np.reshape(x, newshape), _reshape_backward,
                     ("x",))
_TRANSPOSE = Primitive("transpose", lambda x, axes: np.transpose(x, axes), _transpose_backward,
                       ("x",))
_EXPAND_DIMS = Primitive("expand_dims", lambda x, axis: np.expand_dims(x, axis),
                         _reshape_backward, ("x",))
_SQUEEZE = Primitive("squeeze", lambda x, axis: np.squeeze(x, axis), _reshape_backward, ("x",))
_BROADCAST_TO = Primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape).copy(),
                          lambda dy, out, x, shape: (dy,), ("x",))
_CONCATENATE = Primitive("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                         _concatenate_backward, ("xs",), variadic=True)
_STACK = Primitive("stack", lambda *xs, axis: np.stack(xs, axis=axis), _stack_backward,
                   ("x",), variadic=True)
_SPLIT = Primitive("split", _split_forward, _split_backward, ("x",))
_GETITEM = Primitive("getitem", lambda x, key: np.array(x[key]), _getitem_backward, ("x",))
_TAKE = Primitive("take", lambda x, indices, axis: np.take(x, indices, axis=axis),
                  _take_backward, ("x", "indices"))
_TILE = Primitive("tile", lambda x, repeats: np.tile(x, repeats), _tile_backward, ("x",))
_REPEAT = Primitive("repeat", lambda x, repeats, axis: np.repeat(x, repeats, axis=axis),
                    _repeat_backward, ("x",))
_ZEROS_LIKE = Primitive("zeros_like", lambda x, dtype: np.zeros_like(x, dtype=dtype), None,
                        ("x",))
_ONES_LIKE = Primitive("ones_like", lambda x, dtype: np.ones_like(x, dtype=dtype), None, ("x",))


def _check_shape(value: Any, name: str, op: str, allow_minus_one: bool = False) -> tuple:
    sizes = (value,) if isinstance(value, (int, np.integer)) else value
    if isinstance(sizes, (tuple, list)) and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool)
            and (n >= 0 or (allow_minus_one and n == -1)) for n in sizes):
        if list(sizes).count(-1) <= 1:
            return tuple(int(n) for n in sizes)
    allowed = "non-negative ints (one may be -1)" if allow_minus_one else "non-negative ints"
    raise ValueError(f"Invalid value for argument `{name}` of `{op}`: expected a tuple of "
                     f"{allowed}, received {name}={value!r}.")


def reshape(x: Any, newshape: Any) -> Any:
    """``x`` with shape ``newshape`` (one entry may be -1: inferred).

    Returns
    -------
    tensor
    """
    return apply(_RESHAPE, (x,), {"newshape": _check_shape(newshape, "newshape", "reshape",
                                                           allow_minus_one=True)})


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """``x`` with its axes permuted (reversed when ``axes`` is None).

    Returns
    -------
    tensor
    """
    if axes is not None:
        axes = check_axis(axes, "axes", allow_none=False)
        rank = len(shape_of(x))
        if not isinstance(axes, tuple) or sorted(a % rank for a in axes) != list(range(rank)):
            raise ValueError("Invalid value for argument `axes` of `transpose`: expected a "
                             f"permutation of the {rank} axes, received axes={axes!r}.")
        axes = tuple(a % rank for a in axes)
    return apply(_TRANSPOSE, (x,), {"axes": axes})


def expand_dims(x: Any, axis: Any) -> Any:
    """``x`` with a new axis of size 1 at ``axis`` (an int or a tuple).

    Returns
    -------
    tensor
    """
    return apply(_EXPAND_DIMS, (x,), {"axis": check_axis(axis, allow_none=False)})


def squeeze(x: Any, axis: Any = None) -> Any:
    """``x`` without the size-1 axes ``axis`` (all of them when None).

    Returns
    -------
    tensor
    """
    return apply(_SQUEEZE, (x,), {"axis": check_axis(axis)})


def broadcast_to(x: Any, shape: Any) -> Any:
    """``x`` broadcast to ``shape``.

    Returns
    -------
    tensor
    """
    return apply(_BROADCAST_TO, (x,), {"shape": _check_shape(shape, "shape", "broadcast_to")})


def _check_tensors(xs: Any, name: str, op: str) -> tuple:
    if not isinstance(xs, (list, tuple)) or not xs:
        raise TypeError(f"Invalid value for argument `{name}` of `{op}`: expected a "
                        f"non-empty list of tensors, received {name}={xs!r}.")
    return tuple(xs)


def concatenate(xs: Sequence[Any], axis: int = 0) -> Any:
    """The tensors ``xs`` joined along ``axis``.

    Returns
    -------
    tensor
    """
    return apply(_CONCATENATE, _check_tensors(xs, "xs", "concatenate"),
                 {"axis": check_axis(axis, allow_none=False)})


def stack(x: Sequence[Any], axis: int = 0) -> Any:
    """The tensors ``x`` (one shape) stacked along a new axis ``axis``.

    Returns
    -------
    tensor
    """
    return apply(_STACK, _check_tensors(x, "x", "stack"),
                 {"axis": check_axis(axis, allow_none=False)})


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """``x`` cut along ``axis`` into ``indices_or_sections`` equal parts (an
    int) or at the given indices (a list).

    Returns
    -------
    list of tensors
    """
    axis = check_axis(axis, allow_none=False)
    sections = indices_or_sections
    if isinstance(sections, (int, np.integer)) and not isinstance(sections, bool):
        size = shape_of(x)[axis]
        if sections <= 0 or (size is not None and size % sections):
            raise ValueError(f"Invalid value for argument `indices_or_sections` of `split`: "
                             f"{sections} equal parts of an axis of size {size} are not "
                             "possible.")
        count, sections = int(sections), int(sections)
    elif isinstance(sections, (list, tuple)) and all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in sections):
        count, sections = len(sections) + 1, [int(i) for i in sections]
    else:
        raise TypeError("Invalid value for argument `indices_or_sections` of `split`: expected "
                        f"an int or a list of ints, received {indices_or_sections!r}.")
    # One node per part: each is an ordinary single-output op.
    return [apply(_SPLIT, (x,), {"indices_or_sections": sections, "axis": axis, "index": k})
            for k in range(count)]


def _check_key(key: Any) -> Any:
    parts = key if isinstance(key, tuple) else (key,)
    for part in parts:
        if isinstance(part, KerasTensor) or is_symbolic(part):
            raise TypeError("Invalid index for `getitem`: indexing with a symbolic tensor is "
                            "not supported; use ops.take (integer indices) or ops.where.")
        ok = (part is None or part is Ellipsis or isinstance(part, (slice, np.ndarray, list))
              or (isinstance(part, (int, np.integer)) and not isinstance(part, bool)))
        if not ok:
            raise TypeError("Invalid index for `getitem`: expected ints, slices, None, "
                            f"Ellipsis or integer/boolean arrays, received {part!r}.")
    return key


def getitem(x: Any, key: Any) -> Any:
    """``x[key]`` (what ``KerasTensor.__getitem__`` records): basic and
    advanced NumPy indexing with a constant key.

    Returns
    -------
    tensor
    """
    return apply(_GETITEM, (x,), {"key": _check_key(key)})


def take(x: Any, indices: Any, axis: int | None = None) -> Any:
    """Elements of ``x`` at ``indices`` along ``axis`` (of the flattened ``x``
    when None); no gradient flows to ``indices``.

    Returns
    -------
    tensor
    """
    return apply(_TAKE, (x, indices), {"axis": check_axis(axis)})


def tile(x: Any, repeats: Any) -> Any:
    """``x`` repeated ``repeats[i]`` times along each axis i.

    Returns
    -------
    tensor
    """
    return apply(_TILE, (x,), {"repeats": _check_shape(repeats, "repeats", "tile")})


def repeat(x: Any, repeats: Any, axis: int | None = None) -> Any:
    """Each element of ``x`` repeated ``repeats`` times (an int, or one count
    per element) along ``axis`` (of the flattened ``x`` when None).

    Returns
    -------
    tensor
    """
    counts = _check_shape(repeats, "repeats", "repeat")
    return apply(_REPEAT, (x,), {"repeats": counts[0] if isinstance(repeats, (int, np.integer))
                                 else list(counts), "axis": check_axis(axis)})


def zeros_like(x: Any, dtype: Any = None) -> Any:
    """Zeros of ``x``'s shape and of ``dtype`` (x's when None).

    Returns
    -------
    tensor
    """
    return apply(_ZEROS_LIKE, (x,), {"dtype": check_dtype(dtype)})


def ones_like(x: Any, dtype: Any = None) -> Any:
    """Ones of ``x``'s shape and of ``dtype`` (x's when None).

    Returns
    -------
    tensor
    """
    return apply(_ONES_LIKE, (x,), {"dtype": check_dtype(dtype)})


# ----------------------------------------------------------------------------
# constants: new arrays of a given shape (Keras' floatx, float32, by default)


def _shape_arg(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
            for d in shape):
        raise ValueError(f"Invalid value for argument `shape`: expected non-negative ints, "
                         f"received shape={shape!r}.")
    return tuple(int(d) for d in shape)


def zeros(shape: Any, dtype: Any = None) -> np.ndarray:
    """An array of zeros of ``shape`` (float32 unless ``dtype``)."""
    return np.zeros(_shape_arg(shape), check_dtype(dtype) or "float32")


def ones(shape: Any, dtype: Any = None) -> np.ndarray:
    """An array of ones of ``shape`` (float32 unless ``dtype``)."""
    return np.ones(_shape_arg(shape), check_dtype(dtype) or "float32")


def full(shape: Any, fill_value: Any, dtype: Any = None) -> np.ndarray:
    """An array of ``shape`` filled with ``fill_value`` (float32 unless ``dtype``)."""
    return np.full(_shape_arg(shape), fill_value, check_dtype(dtype) or "float32")


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> np.ndarray:
    """The identity-like ``(N, M)`` matrix with ones on diagonal ``k``."""
    return np.eye(N, M, k, dtype=check_dtype(dtype) or "float32")


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> np.ndarray:
    """Evenly spaced values, as NumPy's ``arange`` (Keras' dtype rule: int32
    for integer arguments, float32 otherwise, unless ``dtype``)."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    default = "int32" if values.dtype.kind in "iu" else "float32"
    return values.astype(check_dtype(dtype) or default)

"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate and Dot, with Keras' functional forms (``layers.add([a, b])``).

One base class holds the checks every merge shares (a list of at least two
inputs of the same rank); each layer gives its forward and the gradient for
every input. Elementwise merges broadcast as NumPy does (Keras allows
broadcasting over size-1 axes), and a broadcast input's gradient is summed
back to its own shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.layers.base import Layer, Shape


def _unbroadcast(d: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``d`` down to ``shape`` (the inverse of NumPy broadcasting)."""
    if d.shape == tuple(shape):
        return d
    extra = d.ndim - len(shape)
    d = d.sum(axis=tuple(range(extra))) if extra else d
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and d.shape[i] != 1)
    return d.sum(axis=axes, keepdims=True) if axes else d


class _Merge(Layer):
    """A layer reading a list of tensors."""

    n_inputs: int | None = None  # exact count, when the merge needs one

    def _check_inputs(self, input_shape: Any) -> list[tuple]:
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(
                f"A merge layer ('{self.name}', {type(self).__name__}) should be called on a "
                f"list of at least 2 inputs, received {input_shape!r}.")
        if self.n_inputs is not None and len(input_shape) != self.n_inputs:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) takes exactly {self.n_inputs} "
                f"inputs, received {len(input_shape)}.")
        shapes = [tuple(s) for s in input_shape]
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) needs inputs of one rank, "
                f"received shapes {shapes}.")
        return shapes

    def build(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = self._check_inputs(input_shape)
        out = []
        for dims in zip(*shapes):
            known = {d for d in dims if d is not None and d != 1}
            if len(known) > 1:
                raise ValueError(
                    f"Layer '{self.name}' ({type(self).__name__}) cannot merge inputs of "
                    f"shapes {shapes}: they differ outside size-1 axes.")
            if known:
                out.append(known.pop())
            elif all(d == 1 for d in dims):
                out.append(1)
            else:
                out.append(None)
        return tuple(out)

    def _output_dtype(self, flat_inputs: list) -> str:
        return flat_inputs[0].dtype

    def forward(self, inputs: list, training: bool = False) -> tuple[np.ndarray, Any]:
        return self._merge(inputs), inputs

    def backward(self, inputs: list, dy: np.ndarray, need_dx: bool = True) -> list | None:
        if not need_dx:
            return None
        return [_unbroadcast(d, x.shape) for d, x in zip(self._gradients(inputs, dy), inputs)]

    def _merge(self, inputs: list) -> np.ndarray:
        raise NotImplementedError

    def _gradients(self, inputs: list, dy: np.ndarray) -> list:
        raise NotImplementedError


class Add(_Merge):
    """The sum of the inputs."""

    def _merge(self, inputs: list) -> np.ndarray:
        out = inputs[0] + inputs[1]
        for x in inputs[2:]:
            out = out + x
        return out

    def _gradients(self, inputs: list, dy: np.ndarray) -> list:
        return [dy] * len(inputs)


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    n_inputs = 2

    def _merge(self, inputs: list) -> np.ndarray:
        return inputs[0] - inputs[1]

    def _gradients(self, inputs: list, dy: np.ndarray) -> list:
        return [dy, -dy]


class Multiply(_Merge):
    """The elementwise product of the inputs."""

    def _merge(self, inputs: list) -> np.ndarray:
        out = inputs[0] * inputs[1]
        for x in inputs[2:]:
            out = out * x
        return out

    def _gradients(self, inputs: list, dy: np.ndarray) -> list:
        grads = []
        for i in range(len(inputs)):
            g = dy
            for j, x in enumerate(inputs):
                if j != i:
                    g = g * x
            grads.append(g)
        return grads


class Average(_Merge):
    """The mean of the inputs."""

    def _merge(self, inputs: list) -> np.ndarray:
        out = Add._merge(self, inputs)
        return out / out.dtype.type(len(inputs))

    def _gradients(self, inputs: list, dy: np.ndarray) -> list:
        return [dy / dy.dtype.type(len(inputs))] * len(inputs)


class _Extremum(_Merge):
    """Elementwise max/min; each output's gradient goes to the first input
    holding the extreme value (ties: the earliest input, as TensorFlow's
    pairwise rule gives)."""

    _pick: Any = None

    def _merge(self, inputs: list) -> np.ndarray:
        out = self._pick(inputs[0], inputs[1])
        for x in inputs[2:]:
            out = self._pick(out, x)
        return out

    def _gradients(self, inputs: list, dy: np.ndarray) -> list:
        shape = np.broadcast_shapes(*(x.shape for x in inputs))
        stacked = np.stack([np.broadcast_to(x, shape) for x in inputs])
        winner = (np.argmax if self._pick is np.maximum else np.argmin)(stacked, axis=0)
        return [np.where(winner == i, dy, dy.dtype.type(0)) for i in range(len(inputs))]


class Maximum(_Extremum):
    """The elementwise maximum of the inputs."""

    _pick = staticmethod(np.maximum)


class Minimum(_Extremum):
    """The elementwise minimum of the inputs."""

    _pick = staticmethod(np.minimum)


class Concatenate(_Merge):
    """Joins the inputs along ``axis`` (default -1, the channels)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise ValueError(f"Invalid value for argument `axis`: expected an int, received "
                             f"axis={axis!r}.")
        self.axis = int(axis)

    def _axis(self, rank: int) -> int:
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ValueError(f"Invalid value for argument `axis` of layer '{self.name}': "
                             f"expected a non-batch axis of rank-{rank} inputs, received "
                             f"axis={self.axis}.")
        return axis

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = self._check_inputs(input_shape)
        axis = self._axis(len(shapes[0]))
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if i == axis or i == 0:
                    continue
                if a is not None and b is not None and a != b:
                    raise ValueError(
                        f"Layer '{self.name}' (Concatenate, axis={self.axis}) needs inputs "
                        f"that match except on the concatenation axis, received shapes "
                        f"{shapes}.")
                out[i] = a if a is not None else b
        sizes = [s[axis] for s in shapes]
        out[axis] = None if any(d is None for d in sizes) else sum(sizes)
        return tuple(out)

    def _merge(self, inputs: list) -> np.ndarray:
        return np.concatenate(inputs, axis=self._axis(inputs[0].ndim))

    def _gradients(self, inputs: list, dy: np.ndarray) -> list:
        axis = self._axis(dy.ndim)
        bounds = np.cumsum([x.shape[axis] for x in inputs])[:-1]
        return np.split(dy, bounds, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


def _l2_normalize(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """x / max(||x||, 1e-6) along ``axis`` (Keras' l2_normalize: the squared
    norm floored at 1e-12), and that divisor."""
    norm = np.sqrt(np.maximum(np.sum(x * x, axis=axis, keepdims=True), x.dtype.type(1e-12)))
    return x / norm, norm


class Dot(_Merge):
    """The dot product of two samples along ``axes`` (Keras' batch dot);
    ``normalize=True`` l2-normalizes both first (the cosine similarity).

    Inputs of rank 2 give shape ``(batch, 1)``; rank 3 ``(batch, m, n)``
    with the remaining axis of each input in order."""

    n_inputs = 2

    def __init__(self, axes: int | tuple[int, int], normalize: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
            axes = (int(axes), int(axes))
        if (not isinstance(axes, (tuple, list)) or len(axes) != 2
                or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                           for a in axes)):
            raise ValueError(f"Invalid value for argument `axes`: expected an int or a pair "
                             f"of ints, received axes={axes!r}.")
        self.axes = (int(axes[0]), int(axes[1]))
        self.normalize = bool(normalize)

    def _subscripts(self, rank: int) -> tuple[str, str, str, int, int]:
        if rank not in (2, 3):
            raise ValueError(f"Layer '{self.name}' (Dot) supports inputs of rank 2 or 3, "
                             f"received rank {rank}.")
        ax = [a + rank if a < 0 else a for a in self.axes]
        if not all(1 <= a < rank for a in ax):
            raise ValueError(f"Invalid value for argument `axes` of layer '{self.name}': "
                             f"expected non-batch axes of rank-{rank} inputs, received "
                             f"axes={self.axes}.")
        xs, ys = ["b"] + list("ij"[:rank - 1]), ["b"] + list("kl"[:rank - 1])
        ys[ax[1]] = xs[ax[0]]
        out = "b" + "".join(c for i, c in enumerate(xs) if i not in (0, ax[0])) + "".join(
            c for i, c in enumerate(ys) if i not in (0, ax[1]))
        return "".join(xs), "".join(ys), out, ax[0], ax[1]

    def compute_output_shape(self, input_shape: Any) -> Shape:
        (sx, sy) = self._check_inputs(input_shape)
        xs, ys, out, ax, ay = self._subscripts(len(sx))
        if sx[ax] is not None and sy[ay] is not None and sx[ax] != sy[ay]:
            raise ValueError(f"Layer '{self.name}' (Dot, axes={self.axes}) needs equal sizes "
                             f"on the dot axes, received shapes {sx} and {sy}.")
        if len(sx) == 2:
            return (sx[0], 1)
        rest = [d for i, d in enumerate(sx) if i not in (0, ax)] + [
            d for i, d in enumerate(sy) if i not in (0, ay)]
        return (sx[0], *rest)

    def forward(self, inputs: list, training: bool = False) -> tuple[np.ndarray, Any]:
        x, y = inputs
        xs, ys, out, ax, ay = self._subscripts(x.ndim)
        xn, nx = _l2_normalize(x, ax) if self.normalize else (x, None)
        yn, ny = _l2_normalize(y, ay) if self.normalize else (y, None)
        z = np.einsum(f"{xs},{ys}->{out}", xn, yn)
        if x.ndim == 2:
            z = z.reshape(-1, 1)
        return z, (xn, yn, nx, ny)

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> list | None:
        if not need_dx:
            return None
        xn, yn, nx, ny = ctx
        xs, ys, out, ax, ay = self._subscripts(xn.ndim)
        if xn.ndim == 2:
            dy = dy.reshape(-1)
        dxn = np.einsum(f"{out},{ys}->{xs}", dy, yn)
        dyn = np.einsum(f"{out},{xs}->{ys}", dy, xn)
        if self.normalize:
            dxn = (dxn - xn * np.sum(dxn * xn, axis=ax, keepdims=True)) / nx
            dyn = (dyn - yn * np.sum(dyn * yn, axis=ay, keepdims=True)) / ny
        return [dxn, dyn]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": list(self.axes), "normalize": self.normalize}


def add(inputs: list, **kwargs: Any) -> Any:
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: list, **kwargs: Any) -> Any:
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: list, **kwargs: Any) -> Any:
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs: list, **kwargs: Any) -> Any:
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs: list, **kwargs: Any) -> Any:
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: list, **kwargs: Any) -> Any:
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: list, axis: int = -1, **kwargs: Any) -> Any:
    """``Concatenate(axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: list, axes: int | tuple[int, int] = -1, normalize: bool = False,
        **kwargs: Any) -> Any:
    """``Dot(axes, normalize, **kwargs)(inputs)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)

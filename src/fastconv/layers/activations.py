"""The activation layers: Activation, ReLU, LeakyReLU, PReLU, ELU and Softmax,
with Keras 3's arguments, defaults and configs.

Each computes with ``fastconv.activations`` (a forward and its backward);
the context a call keeps is the input ``x`` and output ``y`` the backward
reads. ``Activation`` and ``Softmax`` take ``activation_done``: the model
folds a final softmax or sigmoid into the cross-entropy's gradient and then
hands them dL/d(pre-activation). PReLU is the one with a weight, ``alpha``.

Shapes: any, ``(N, ...)``; the output has the input's shape (``glu`` halves
its axis).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from fastconv import activations
from fastconv import constraints as constraints_module
from fastconv import initializers as initializers_module
from fastconv import regularizers as regularizers_module
from fastconv.layers.backend import kernels
from fastconv.layers.base import Layer, Shape
from fastconv.runtime import batch as _batch


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _non_negative(value: Any, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if not _is_number(value) or value < 0:
        expected = "a non-negative float or None" if allow_none else "a non-negative float"
        raise ValueError(f"Invalid value for argument `{name}`: expected {expected}, "
                         f"received {name}={value!r}.")
    return float(value)


class _ActivationLayer(Layer):
    """A layer that applies ``self.activation`` (an ``activations.Activation``)."""

    activation: activations.Activation

    def _accepts_shape(self, input_shape: Any) -> bool:
        # No weights: any shape, as Keras' activation layers (no InputSpec).
        return True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return activations.output_shape(self.activation, tuple(input_shape))

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        y = self.activation.forward(x)
        return y, (x, y)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True,
                 activation_done: bool = False) -> np.ndarray | None:
        """dL/dx; with ``activation_done`` dy is already dL/dx (the model's
        fused softmax or sigmoid + cross-entropy)."""
        if not need_dx:
            return None
        return dy if activation_done else self.activation.backward(dy, *ctx)


class Activation(_ActivationLayer):
    """Applies an activation function: a name ("relu", "gelu", "mish", ...),
    one of ``fastconv.activations``' functions, an ``activations.Activation``
    or any callable (inference only, having no backward).

    Parameters
    ----------
    activation : str, callable or None
        None is the identity ("linear").
    """

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class ReLU(_ActivationLayer):
    """``min(x, max_value)`` for ``x > threshold``, else ``negative_slope * (x - threshold)``.

    At ``x == threshold`` the output is 0, as Keras computes it (its docstring
    example: ``relu([-10, -5, 0, 5, 10], threshold=5) == [0, 0, 0, 0, 10]``).

    Parameters
    ----------
    max_value : float >= 0 or None
        The largest output; None: no limit.
    negative_slope : float >= 0
        The slope below ``threshold``.
    threshold : float >= 0
        Where the linear part starts.
    """

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_value = _non_negative(max_value, "max_value", allow_none=True)
        self.negative_slope = _non_negative(negative_slope, "negative_slope")
        self.threshold = _non_negative(threshold, "threshold")
        if self._plain():
            self.activation = activations.get("relu")
        else:
            keywords = {"negative_slope": self.negative_slope, "max_value": self.max_value,
                        "threshold": self.threshold}
            self.activation = activations.Activation(
                "relu", functools.partial(activations.relu, **keywords),
                functools.partial(activations.relu_backward, **keywords))

    def _plain(self) -> bool:
        """max(x, 0): the compiled ReLU gradient applies (it reads only y)."""
        return self.max_value is None and self.negative_slope == 0 and self.threshold == 0

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        y = self.activation.forward(x)
        return y, ((None, y) if self._plain() else (x, y))

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        x, y = ctx
        if x is None:  # the plain ReLU: dy where y > 0
            return kernels().relu_backward(np.ascontiguousarray(dy, dtype=y.dtype),
                                           np.ascontiguousarray(y))
        return self.activation.backward(dy, x, y)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_ActivationLayer):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Parameters
    ----------
    negative_slope : float >= 0
        Defaults to 0.3, as in Keras (the ``leaky_relu`` function's default
        is 0.2). Keras 2's name ``alpha`` is accepted with a warning.
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.",
                          stacklevel=2)
        super().__init__(**kwargs)
        self.negative_slope = _non_negative(negative_slope, "negative_slope")
        self.activation = activations.get(
            functools.partial(activations.leaky_relu, negative_slope=self.negative_slope))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ActivationLayer):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Parameters
    ----------
    alpha : float
        Defaults to 1.0. (Keras 3's config omits ``alpha``; fastconv writes it
        so that a saved layer keeps its value.)
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _is_number(alpha):
            raise ValueError(f"Invalid value for argument `alpha`: expected a float, "
                             f"received alpha={alpha!r}.")
        self.alpha = float(alpha)
        self.activation = activations.get(
            functools.partial(activations.elu, alpha=self.alpha))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_ActivationLayer):
    """Softmax over ``axis``: ``exp(x) / sum(exp(x))``, shifted by the maximum.

    Parameters
    ----------
    axis : int or list of ints
        The axis (or axes, normalised together) of the input; -1 by default.

    A ``mask`` is not supported: calls take ``mask=None`` only.
    """

    def __init__(self, axis: int | list = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if is_int(axis):
            self.axis: int | list = int(axis)
            axes: Any = int(axis)
        elif (isinstance(axis, (list, tuple)) and axis and all(is_int(a) for a in axis)
              and len(set(axis)) == len(axis)):
            self.axis = [int(a) for a in axis]
            axes = self.axis[0] if len(axis) == 1 else tuple(self.axis)
        else:
            raise ValueError("Invalid value for argument `axis`: expected an int or a list of "
                             f"distinct ints, received axis={axis!r}.")
        self._axes = axes
        # Only the softmax over the last axis is the one the loss may fuse with.
        if axes == -1:
            self.activation = activations.get("softmax")
        else:
            self.activation = activations.Activation(
                "softmax", functools.partial(activations.softmax, axis=axes),
                functools.partial(activations.softmax_backward, axis=axes))

    def __call__(self, *args: Any, mask: Any = None, **kwargs: Any) -> Any:
        if mask is not None:
            raise ValueError(
                f"Invalid value for argument `mask`: layer '{self.name}' supports mask=None "
                f"only, received a mask of shape {tuple(np.shape(mask))}.")
        return super().__call__(*args, **kwargs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rank = len(input_shape)
        for a in (self.axis if isinstance(self.axis, list) else [self.axis]):
            if not -rank <= a < rank:
                raise ValueError(f"Layer '{self.name}': axis {a} is out of bounds for an input "
                                 f"of shape {tuple(input_shape)}.")
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class PReLU(Layer):
    """Parametric ReLU: ``x`` for ``x > 0``, ``alpha * x`` otherwise, with
    ``alpha`` a learned weight.

    Parameters
    ----------
    alpha_initializer, alpha_regularizer, alpha_constraint
        For the weight ``alpha`` (initialized with zeros by default).
    shared_axes : int, list of ints or None
        Axes (1 is the first after the batch) along which one alpha is
        shared: with inputs ``(N, H, W, C)`` and ``shared_axes=[1, 2]`` alpha
        has shape ``(1, 1, C)``.

    Weights: ``alpha``, shape ``input_shape[1:]`` with 1 on each shared axis.
    """

    def __init__(self, alpha_initializer: Any = "Zeros", alpha_regularizer: Any = None,
                 alpha_constraint: Any = None, shared_axes: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha_initializer = initializers_module.get(alpha_initializer)
        self.alpha_regularizer = regularizers_module.get(alpha_regularizer)
        self.alpha_constraint = constraints_module.get(alpha_constraint)
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        if shared_axes is not None and not all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 1
                for a in shared_axes):
            raise ValueError("Invalid value for argument `shared_axes`: expected None or "
                             "ints >= 1 (axes after the batch axis), received "
                             f"shared_axes={shared_axes!r}.")
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]
        self.alpha = None

    def _accepts_shape(self, input_shape: Any) -> bool:
        """Keras' InputSpec: the rank and the sizes of the axes not shared."""
        if isinstance(input_shape, list) or len(input_shape) != len(self.input_shape):
            return False
        shared = set(self.shared_axes or ())
        return all(a is None or b is None or a == b or i in shared
                   for i, (a, b) in enumerate(zip(input_shape, self.input_shape)) if i > 0)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        for a in self.shared_axes or ():
            if a >= len(input_shape):
                raise ValueError(
                    f"Invalid value for argument `shared_axes`: axis {a} does not exist in "
                    f"inputs of shape {tuple(input_shape)}, received "
                    f"shared_axes={self.shared_axes!r}.")
        return tuple(input_shape)

    def build(self, input_shape: Shape) -> None:
        shape = list(input_shape[1:])
        for a in self.shared_axes or ():
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"Layer '{self.name}' needs known sizes on the axes it does not "
                             f"share, received input shape {tuple(input_shape)} with "
                             f"shared_axes={self.shared_axes!r}.")
        self.alpha = self.add_weight(tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint, name="alpha")
        self.built = True

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, np.ndarray]:
        # relu(x) - alpha * relu(-x), as Keras: 0 at x = 0.
        return np.where(x > 0, x, self.alpha.value * np.minimum(x, 0)), x

    def backward(self, x: np.ndarray, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self.trainable:
            # d/d(alpha) = min(x, 0), summed over the batch and the shared axes.
            g = dy * np.minimum(x, 0)
            self.alpha.accumulate_grad(
                _batch.sum_rows(g, tuple(self.shared_axes or ()), keepdims=True))
        if not need_dx:
            return None
        return np.where(x > 0, dy, np.where(x < 0, self.alpha.value * dy, 0)).astype(
            dy.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "alpha_initializer": initializers_module.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers_module.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints_module.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes}

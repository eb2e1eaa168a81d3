"""Normalization over each sample's own features: LayerNormalization,
GroupNormalization and UnitNormalization, with Keras 3's arguments,
defaults, weight names (gamma, then beta) and configs.

Each normalises ``x`` over a set of axes ``A`` of one sample:

- LayerNormalization: ``A`` = ``axis``; ``(x - mean) / sqrt(var + epsilon)
  * gamma + beta`` with gamma and beta of the shape of those axes;
- GroupNormalization: the channel axis is split into ``groups`` groups and
  ``A`` = every non-batch axis within one group; gamma and beta per channel;
- UnitNormalization: ``x / max(||x||_2, 1e-12)`` over ``axis``, no weights.

The variance is the biased one (divided by the count), as Keras' ``moments``.
None of them behaves differently in training and at inference.

Backward, for ``xhat = (x - mean) * inv`` with ``inv = 1 / sqrt(var + eps)``
and ``g = dL/dxhat`` (``dy * gamma``), summed means over ``A``:

    dx = inv * (g - mean(g) - xhat * mean(g * xhat))

which is the derivative through mean and variance in one line. The forward
keeps ``xhat`` and ``inv`` (in the compute dtype), nothing else.

Shapes: LayerNormalization and UnitNormalization any ``(N, ...)``;
GroupNormalization ``(N, ..., C)`` (or the channel at ``axis``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fastconv import constraints as constraints_module
from fastconv import initializers as initializers_module
from fastconv import regularizers as regularizers_module
from fastconv.layers.base import Layer, Shape
from fastconv.runtime import batch as _batch


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_epsilon(epsilon: Any) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) \
            or not epsilon >= 0:
        raise ValueError("Invalid value for argument `epsilon`: expected a non-negative float, "
                         f"received epsilon={epsilon!r}.")
    return float(epsilon)


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Invalid value for argument `{name}`: expected True or False, "
                        f"received {name}={value!r}.")
    return bool(value)


def _axes_argument(axis: Any) -> int | list[int]:
    """``axis`` as Keras keeps it: an int, or a list of ints."""
    if _is_int(axis):
        return int(axis)
    if isinstance(axis, (list, tuple)) and axis and all(_is_int(a) for a in axis):
        return [int(a) for a in axis]
    raise TypeError("Invalid value for argument `axis`: expected an int or a list/tuple of "
                    f"ints, received axis={axis!r}.")


def _canonical_axes(layer: Layer, axis: int | list[int], rank: int) -> list[int]:
    """Sorted non-negative axes of an input of ``rank``, none of them the batch."""
    axes = [axis] if isinstance(axis, int) else list(axis)
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"Invalid value for argument `axis`: axis {a} is out of bounds "
                             f"for the input of layer '{layer.name}' of rank {rank}, "
                             f"received axis={axis!r}.")
    canonical = sorted(a % rank for a in axes)
    if len(set(canonical)) != len(canonical):
        raise ValueError(f"Invalid value for argument `axis`: duplicate axes are not allowed, "
                         f"received axis={axis!r}.")
    if 0 in canonical:
        raise ValueError(f"Invalid value for argument `axis`: the batch axis 0 cannot be "
                         f"normalised, received axis={axis!r}.")
    return canonical


def _same_on_axes(shape: Any, built: tuple, axes: list[int]) -> bool:
    """Whether ``shape`` has ``built``'s rank and its sizes on ``axes``."""
    if isinstance(shape, list) or len(shape) != len(built):
        return False
    return all(shape[a] is None or built[a] is None or shape[a] == built[a] for a in axes)


def _compute_dtype(x: np.ndarray) -> np.dtype:
    # At least float32, as Keras computes the moments of half-precision inputs.
    return np.result_type(x.dtype, np.float32)


def _normalize_backward(g: np.ndarray, xhat: np.ndarray, inv: np.ndarray,
                        axes: tuple[int, ...]) -> np.ndarray:
    """dL/dx of ``xhat = (x - mean) * inv`` over ``axes`` given ``g = dL/dxhat``."""
    mean_g = np.mean(g, axis=axes, keepdims=True)
    mean_gx = np.mean(g * xhat, axis=axes, keepdims=True)
    return inv * (g - mean_g - xhat * mean_gx)


class _ScaleCenterLayer(Layer):
    """The gamma/beta arguments LayerNormalization and GroupNormalization share."""

    def __init__(self, epsilon: float, center: bool, scale: bool, beta_initializer: Any,
                 gamma_initializer: Any, beta_regularizer: Any, gamma_regularizer: Any,
                 beta_constraint: Any, gamma_constraint: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = _check_epsilon(epsilon)
        self.center = _check_flag(center, "center")
        self.scale = _check_flag(scale, "scale")
        self.beta_initializer = initializers_module.get(beta_initializer)
        self.gamma_initializer = initializers_module.get(gamma_initializer)
        self.beta_regularizer = regularizers_module.get(beta_regularizer)
        self.gamma_regularizer = regularizers_module.get(gamma_regularizer)
        self.beta_constraint = constraints_module.get(beta_constraint)
        self.gamma_constraint = constraints_module.get(gamma_constraint)
        self.gamma = self.beta = None

    def _build_gamma_beta(self, shape: tuple, with_gamma: bool, with_beta: bool) -> None:
        # Keras creates gamma first, then beta: get_weights() returns them so.
        if with_gamma:
            self.gamma = self.add_weight(shape, self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint, name="gamma")
        if with_beta:
            self.beta = self.add_weight(shape, self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint, name="beta")

    def _accumulate(self, weight: Any, grad: np.ndarray, axes: tuple[int, ...],
                    shape: tuple) -> None:
        if weight is not None and self.trainable:
            # A sum over the batch axis goes by its chunks (fastconv.runtime.batch).
            total = (_batch.sum_rows(grad, tuple(a for a in axes if a != 0)) if 0 in axes
                     else np.sum(grad, axis=axes))
            weight.accumulate_grad(total.reshape(shape).astype(weight.dtype, copy=False))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers_module.serialize(self.beta_initializer),
            "gamma_initializer": initializers_module.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers_module.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers_module.serialize(self.gamma_regularizer),
            "beta_constraint": constraints_module.serialize(self.beta_constraint),
            "gamma_constraint": constraints_module.serialize(self.gamma_constraint),
        }


class LayerNormalization(_ScaleCenterLayer):
    """Layer normalization (Ba et al., 2016): each sample normalised over ``axis``.

    ``y = (x - mean) / sqrt(var + epsilon) * gamma + beta``, mean and (biased)
    variance taken over ``axis`` of each sample.

    Parameters
    ----------
    axis : int or list of ints
        The axis or axes to normalise over (-1, the features, by default);
        gamma and beta have those axes' sizes. The batch axis is not allowed.
    epsilon : float
        Added to the variance; 1e-3 by default, as Keras.
    center, scale : bool
        Whether to add beta / multiply by gamma.
    rms_scaling : bool
        Keras 3's deprecated option, kept with its meaning: ``y = x /
        sqrt(var + epsilon) * gamma`` (no centering, no beta); warns as Keras
        does. ``keras.layers.RMSNormalization`` is the real RMS norm.
    beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
    beta_constraint, gamma_constraint
        For the weights ("zeros" and "ones" initially).

    Weights: gamma, then beta, each of shape ``[input_shape[a] for a in axis]``.
    """

    def __init__(self, axis: int | list = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, rms_scaling: bool = False, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, beta_constraint,
                         gamma_constraint, **kwargs)
        self.axis = _axes_argument(axis)
        self.rms_scaling = _check_flag(rms_scaling, "rms_scaling")
        if self.rms_scaling:
            warnings.warn(
                "You passed `rms_scaling=True`, which is deprecated. This argument "
                "incorrectly scales the input by the variance, not the root mean square. To "
                "correctly use RMS Normalization, please use "
                "`keras.layers.RMSNormalization` instead.", stacklevel=2)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _canonical_axes(self, self.axis, len(input_shape))
        return tuple(input_shape)

    def _accepts_shape(self, input_shape: Any) -> bool:
        """The rank and the normalised axes' sizes (the weights' shape) must match."""
        return _same_on_axes(input_shape, self.input_shape, self.axis)

    def build(self, input_shape: Shape) -> None:
        axes = _canonical_axes(self, self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"Layer '{self.name}' needs known sizes on the axes it "
                             f"normalises ({axes}), received input shape "
                             f"{tuple(input_shape)}.")
        # As Keras, the axis is kept canonical (sorted, non-negative) once built.
        self.axis = axes
        self._build_gamma_beta(shape, self.scale or self.rms_scaling,
                               self.center and not self.rms_scaling)
        self.built = True

    def _broadcast(self, value: np.ndarray, ndim: int) -> np.ndarray:
        shape = [1] * ndim
        for a, n in zip(self.axis, value.shape):
            shape[a] = n
        return value.reshape(shape)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        axes = tuple(self.axis)
        xc = x.astype(_compute_dtype(x), copy=False)
        mean = np.mean(xc, axis=axes, keepdims=True)
        centered = xc - mean
        var = np.mean(np.square(centered), axis=axes, keepdims=True)
        inv = 1 / np.sqrt(var + self.epsilon)
        # rms_scaling divides x itself (not x - mean) by the standard deviation.
        xhat = (xc if self.rms_scaling else centered) * inv
        y = xhat
        if self.gamma is not None:
            y = y * self._broadcast(self.gamma.value, x.ndim)
        if self.beta is not None:
            y = y + self._broadcast(self.beta.value, x.ndim)
        return y.astype(x.dtype, copy=False), (xc if self.rms_scaling else None, xhat, inv)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        xc, xhat, inv = ctx
        axes = tuple(self.axis)
        others = tuple(i for i in range(dy.ndim) if i not in axes)
        shape = tuple(dy.shape[a] for a in axes)
        dy = dy.astype(xhat.dtype, copy=False)
        self._accumulate(self.gamma, dy * xhat, others, shape)
        self._accumulate(self.beta, dy, others, shape)
        if not need_dx:
            return None
        g = dy if self.gamma is None else dy * self._broadcast(self.gamma.value, dy.ndim)
        if self.rms_scaling:
            # xhat = x * inv with inv = (var(x) + eps)^(-1/2): only the variance
            # term, d inv/dx = -inv^3 (x - mean) / n.
            n = xc.size // inv.size
            centered = xc - np.mean(xc, axis=axes, keepdims=True)
            dx = g * inv - centered * inv ** 3 * np.sum(g * xc, axis=axes, keepdims=True) / n
        else:
            dx = _normalize_backward(g, xhat, inv, axes)
        return dx.astype(dy.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {**config, "axis": self.axis, "rms_scaling": self.rms_scaling}


class GroupNormalization(_ScaleCenterLayer):
    """Group normalization (Wu & He, 2018): the channels split into ``groups``
    groups, each sample normalised over every non-batch axis of one group.

    ``groups=1`` normalises each sample over all its values; ``groups=-1``
    (one group per channel) is instance normalization.

    Parameters
    ----------
    groups : int
        A divisor of the number of channels (32 by default), or -1.
    axis : int
        The channel axis (-1, channels last, by default; 1 for channels first).
    epsilon, center, scale, beta_initializer, gamma_initializer,
    beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint
        As for LayerNormalization.

    Weights: gamma, then beta, each of shape ``(channels,)``.
    """

    def __init__(self, groups: int = 32, axis: int = -1, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any) -> None:
        if not _is_int(groups) or (groups <= 0 and groups != -1):
            raise ValueError("Invalid value for argument `groups`: expected a positive int "
                             f"(or -1 for instance normalization), received groups={groups!r}.")
        if not _is_int(axis):
            raise TypeError(f"Invalid value for argument `axis`: expected an int (the channel "
                            f"axis), received axis={axis!r}.")
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, beta_constraint,
                         gamma_constraint, **kwargs)
        self.groups = int(groups)
        self.axis = int(axis)

    def _channel_axis(self, rank: int) -> int:
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"Invalid value for argument `axis`: expected a non-batch axis of "
                             f"the rank-{rank} input of layer '{self.name}', received "
                             f"axis={self.axis}.")
        return self.axis % rank

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._channel_axis(len(input_shape))
        return tuple(input_shape)

    def _accepts_shape(self, input_shape: Any) -> bool:
        """Keras' InputSpec: the rank and the number of channels."""
        return _same_on_axes(input_shape, self.input_shape, [self.axis % len(self.input_shape)])

    def build(self, input_shape: Shape) -> None:
        channels = input_shape[self._channel_axis(len(input_shape))]
        if channels is None:
            raise ValueError(f"Axis {self.axis} of the input of layer '{self.name}' needs a "
                             f"known size, received input shape {tuple(input_shape)}.")
        groups = channels if self.groups == -1 else self.groups
        if channels < groups:
            raise ValueError(f"Invalid value for argument `groups`: the number of groups "
                             f"({groups}) cannot be more than the number of channels "
                             f"({channels}), received groups={self.groups}.")
        if channels % groups:
            raise ValueError(f"Invalid value for argument `groups`: the number of channels "
                             f"({channels}) must be a multiple of the number of groups "
                             f"({groups}), received groups={self.groups}.")
        # As Keras, groups=-1 becomes the channel count once built.
        self.groups = groups
        self._build_gamma_beta((channels,), self.scale, self.center)
        self.built = True

    def _grouped_shape(self, shape: tuple) -> tuple[tuple, int]:
        """``shape`` with the channel axis c split into (groups, c // groups),
        and the position of the groups axis."""
        c = self._channel_axis(len(shape))
        return (*shape[:c], self.groups, shape[c] // self.groups, *shape[c + 1:]), c

    def _per_channel(self, value: np.ndarray, grouped: tuple, c: int) -> np.ndarray:
        shape = [1] * len(grouped)
        shape[c], shape[c + 1] = grouped[c], grouped[c + 1]
        return value.reshape(shape)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        grouped, c = self._grouped_shape(x.shape)
        axes = tuple(i for i in range(1, len(grouped)) if i != c)
        xg = x.astype(_compute_dtype(x), copy=False).reshape(grouped)
        mean = np.mean(xg, axis=axes, keepdims=True)
        centered = xg - mean
        inv = 1 / np.sqrt(np.mean(np.square(centered), axis=axes, keepdims=True)
                          + self.epsilon)
        xhat = centered * inv
        y = xhat
        if self.gamma is not None:
            y = y * self._per_channel(self.gamma.value, grouped, c)
        if self.beta is not None:
            y = y + self._per_channel(self.beta.value, grouped, c)
        return y.reshape(x.shape).astype(x.dtype, copy=False), (xhat, inv)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        xhat, inv = ctx
        grouped, c = self._grouped_shape(dy.shape)
        axes = tuple(i for i in range(1, len(grouped)) if i != c)
        others = tuple(i for i in range(len(grouped)) if i not in (c, c + 1))
        dyg = dy.astype(xhat.dtype, copy=False).reshape(grouped)
        channels = (grouped[c] * grouped[c + 1],)
        self._accumulate(self.gamma, dyg * xhat, others, channels)
        self._accumulate(self.beta, dyg, others, channels)
        if not need_dx:
            return None
        g = dyg if self.gamma is None else dyg * self._per_channel(self.gamma.value, grouped, c)
        dx = _normalize_backward(g, xhat, inv, axes)
        return dx.reshape(dy.shape).astype(dy.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {**config, "groups": self.groups, "axis": self.axis}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis``:
    ``x / sqrt(max(sum(x^2), 1e-24))``, i.e. ``x / max(||x||, 1e-12)``.

    Parameters
    ----------
    axis : int or list of ints
        The axis or axes of the norm (-1 by default).
    """

    _EPSILON = 1e-12

    def __init__(self, axis: int | list = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = _axes_argument(axis)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _canonical_axes(self, self.axis, len(input_shape))
        return tuple(input_shape)

    def _accepts_shape(self, input_shape: Any) -> bool:
        # No weights: any shape whose rank has the axes (compute_output_shape checks).
        return True

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        axes = tuple(_canonical_axes(self, self.axis, x.ndim))
        square_sum = np.sum(np.square(x), axis=axes, keepdims=True)
        clamped = square_sum < self._EPSILON ** 2
        inv = 1 / np.sqrt(np.maximum(square_sum, x.dtype.type(self._EPSILON ** 2)))
        y = x * inv
        return y, (y, inv, clamped)

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        y, inv, clamped = ctx
        axes = tuple(_canonical_axes(self, self.axis, dy.ndim))
        # y = x / ||x||: dx = (dy - y * sum(dy * y)) / ||x||; where the norm is
        # clamped to epsilon the divisor is a constant and dx = dy / epsilon.
        projected = dy - y * np.sum(dy * y, axis=axes, keepdims=True)
        return (np.where(clamped, dy, projected) * inv).astype(dy.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

"""BatchNormalization: Keras 3's layer on fastconv's batch normalization
kernels (``fastconv.ops.normalization``).

In training (``fit``, or a call with ``training=True``) a trainable layer
normalizes with the batch's mean and variance and moves its moving
statistics towards them:
``moving = moving * momentum + batch * (1 - momentum)``, with the biased
batch variance, as Keras does. Otherwise, and always once
``trainable = False`` (Keras 3's rule for this layer), it normalizes with the
moving statistics. Weights, in Keras' order: gamma (if ``scale``), beta (if
``center``), moving_mean, moving_variance; the last two are not trainable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv import constraints as constraints_module
from fastconv import initializers as initializers_module
from fastconv import regularizers as regularizers_module
from fastconv._validation import check_flag
from fastconv.layers.base import Layer, Shape
from fastconv.ops import normalization as norm_ops


def _check_float(value: Any, name: str, low: float | None = None) -> float:
    if (not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool)
            or not np.isfinite(value) or (low is not None and value < low)):
        bound = "" if low is None else f" >= {low:g}"
        raise ValueError(f"Invalid value for argument `{name}`: expected a finite float{bound}, "
                         f"received {name}={value!r}.")
    return float(value)


class BatchNormalization(Layer):
    """Normalizes each channel of its input to zero mean and unit variance
    over the batch (and every other axis but ``axis``), then scales by gamma
    and shifts by beta.

    Parameters are Keras 3's: ``axis=-1``, ``momentum=0.99``,
    ``epsilon=1e-3``, ``center=True``, ``scale=True``, the initializers of
    beta ("zeros"), gamma ("ones"), moving_mean ("zeros") and
    moving_variance ("ones"), and regularizers and constraints for beta and
    gamma. ``synchronized=True`` (TensorFlow's cross-device statistics) and
    ``renorm=True`` (batch renormalization) are not supported and say so.

    Masks are not supported: fastconv's layers do not pass masks.
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, renorm: bool = False,
                 renorm_clipping: Any = None, renorm_momentum: float = 0.99,
                 synchronized: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"Invalid value for argument `axis`: expected an int, "
                            f"received axis={axis!r}.")
        self.axis = int(axis)
        self.momentum = _check_float(momentum, "momentum")
        self.epsilon = _check_float(epsilon, "epsilon", 0.0)
        self.center = check_flag(center, "center")
        self.scale = check_flag(scale, "scale")
        if check_flag(synchronized, "synchronized"):
            raise ValueError("Argument synchronized=True is only supported with the "
                             "TensorFlow backend; fastconv computes each batch's statistics "
                             "on one process.")
        self.synchronized = False
        if check_flag(renorm, "renorm"):
            raise ValueError("Invalid value for argument `renorm`: batch renormalization is "
                             "not supported, received renorm=True.")
        self.renorm = False
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = _check_float(renorm_momentum, "renorm_momentum")
        self.beta_initializer = initializers_module.get(beta_initializer)
        self.gamma_initializer = initializers_module.get(gamma_initializer)
        self.moving_mean_initializer = initializers_module.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers_module.get(moving_variance_initializer)
        self.beta_regularizer = regularizers_module.get(beta_regularizer)
        self.gamma_regularizer = regularizers_module.get(gamma_regularizer)
        self.beta_constraint = constraints_module.get(beta_constraint)
        self.gamma_constraint = constraints_module.get(gamma_constraint)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    # -- lifecycle -----------------------------------------------------------

    def _channel_axis(self, ndim: int) -> int:
        if not -ndim <= self.axis < ndim or ndim < 2:
            raise ValueError(f"Axis {self.axis} is out of bounds for an input of {ndim} "
                             f"dimensions (layer '{self.name}'), received axis={self.axis}.")
        return self.axis % ndim

    def build(self, input_shape: Shape) -> None:
        axis = self._channel_axis(len(input_shape))
        if axis == 0:
            raise ValueError(f"Invalid value for argument `axis`: the batch axis cannot be the "
                             f"normalized axis (layer '{self.name}'), received axis={self.axis}.")
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(f"Layer '{self.name}' needs a known size along axis {self.axis}, "
                             f"received input shape {tuple(input_shape)}.")
        shape = (channels,)
        if self.scale:
            self.gamma = self.add_weight(shape, self.gamma_initializer, name="gamma",
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(shape, self.beta_initializer, name="beta",
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.moving_mean = self.add_weight(shape, self.moving_mean_initializer,
                                           name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(shape, self.moving_variance_initializer,
                                               name="moving_variance", trainable=False)
        self.built = True

    def _accepts_shape(self, input_shape: Any) -> bool:
        """Keras' InputSpec: the same rank and size along the normalized axis."""
        if len(input_shape) != len(self.input_shape):
            return False
        axis = self.axis % len(input_shape)
        return input_shape[axis] in (None, self.input_shape[axis])

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self._channel_axis(len(input_shape))
        return tuple(input_shape)

    # -- computation ---------------------------------------------------------

    def _weights_of(self, dtype: np.dtype) -> tuple[np.ndarray | None, np.ndarray | None]:
        gamma = None if self.gamma is None else self.gamma.value.astype(dtype, copy=False)
        beta = None if self.beta is None else self.beta.value.astype(dtype, copy=False)
        return gamma, beta

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, tuple]:
        axis = self.axis % x.ndim
        gamma, beta = self._weights_of(x.dtype)
        if training and self.trainable and x.size:
            y, mean, variance = norm_ops.batch_norm(x, gamma, beta, self.epsilon, axis)
            keep, take = self.momentum, 1.0 - self.momentum
            for var, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                var.value[...] = var.value * var.value.dtype.type(keep) + batch * batch.dtype.type(take)
            return y, (x, mean, variance, gamma, True)
        mean = self.moving_mean.value.astype(x.dtype, copy=False)
        variance = self.moving_variance.value.astype(x.dtype, copy=False)
        y = norm_ops.batch_norm_inference(x, mean, variance, gamma, beta, self.epsilon, axis)
        return y, (x, mean, variance, gamma, False)

    def inference_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), float64 (C,): the inference pass is y = a * x + b per channel,
        a = gamma / sqrt(moving_variance + epsilon), b = beta - moving_mean * a
        (what a preceding linear layer folds into its weights)."""
        a = 1.0 / np.sqrt(self.moving_variance.value.astype(np.float64) + self.epsilon)
        if self.gamma is not None:
            a = a * self.gamma.value
        b = -self.moving_mean.value * a
        if self.beta is not None:
            b = b + self.beta.value
        return a, b

    def backward(self, ctx: tuple, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        x, mean, variance, gamma, training = ctx
        dy = np.ascontiguousarray(dy, dtype=x.dtype)
        dx, dgamma, dbeta = norm_ops.batch_norm_backward(
            dy, x, mean, variance, gamma, self.epsilon, self.axis % x.ndim, training)
        if self.trainable:
            if self.gamma is not None:
                self.gamma.accumulate_grad(dgamma)
            if self.beta is not None:
                self.beta.accumulate_grad(dbeta)
        return dx if need_dx else None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers_module.serialize(self.beta_initializer),
            "gamma_initializer": initializers_module.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers_module.serialize(
                self.moving_mean_initializer),
            "moving_variance_initializer": initializers_module.serialize(
                self.moving_variance_initializer),
            "beta_regularizer": regularizers_module.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers_module.serialize(self.gamma_regularizer),
            "beta_constraint": constraints_module.serialize(self.beta_constraint),
            "gamma_constraint": constraints_module.serialize(self.gamma_constraint),
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }

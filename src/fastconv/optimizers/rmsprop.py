"""RMSprop with Keras 3's rule (``keras/src/optimizers/rmsprop.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv._validation import check_flag
from fastconv.optimizers.base import Optimizer, _check_real


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square.

    Keras 3 rule (every state array starts at 0)::

        v = rho * v + (1 - rho) * g**2
        centered:      a = rho * a + (1 - rho) * g
                       step = lr * g / sqrt(v - a**2 + epsilon)
        not centered:  step = lr * g / sqrt(v + epsilon)
        momentum > 0:  mom = momentum * mom + step;  w = w - mom
        otherwise:     w = w - step

    ``epsilon`` is added inside the square root, as Keras 3 does.

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
    rho : float, default 0.9
        Decay of the running averages, in [0, 1).
    momentum : float, default 0.0
        In [0, 1]; plain (not Nesterov) momentum on the step.
    epsilon : float, default 1e-07
        Added to the mean square, > 0.
    centered : bool, default False
        Whether to divide by the estimated standard deviation of the gradient
        instead of its root mean square.
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "rmsprop"
    """

    def __init__(
        self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0,
        epsilon: float = 1e-07, centered: bool = False, weight_decay: float | None = None,
        clipnorm: float | None = None, clipvalue: float | None = None,
        global_clipnorm: float | None = None, use_ema: bool = False,
        ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "rmsprop",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self.rho = _check_real(rho, "rho", 0.0, 1.0, high_open=True)
        self.momentum = _check_real(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _check_real(epsilon, "epsilon", 0.0, low_open=True)
        self.centered = check_flag(centered, "centered")

    def _slot_names(self) -> tuple[str, ...]:
        names = ("velocity",)
        if self.momentum > 0.0:
            names += ("momentum",)
        if self.centered:
            names += ("average_gradient",)
        return names

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        lr, rho, eps = dtype(self._step_learning_rate), dtype(self.rho), dtype(self.epsilon)
        one_minus_rho = dtype(1.0 - self.rho)
        v = self._slots["velocity"][index]
        v *= rho
        v += one_minus_rho * np.square(grad)
        if self.centered:
            a = self._slots["average_gradient"][index]
            a *= rho
            a += one_minus_rho * grad
            denominator = v - np.square(a) + eps
        else:
            denominator = v + eps
        step = lr * grad / np.sqrt(denominator)
        if self.momentum > 0.0:
            mom = self._slots["momentum"][index]
            mom *= dtype(self.momentum)
            mom += step
            value -= mom
        else:
            value -= step

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        a = self._slot_list("average_gradient", active) if self.centered else None
        mom = self._slot_list("momentum", active) if self.momentum > 0.0 else None
        _optim.rmsprop_update(values, grads, self._slot_list("velocity", active), a, mom,
                              self._step_learning_rate, self.rho, 1.0 - self.rho,
                              self.epsilon, self.momentum, f32, isa, threads, **decay)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "rho": self.rho, "momentum": self.momentum,
            "epsilon": self.epsilon, "centered": self.centered,
        }

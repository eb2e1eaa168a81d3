"""Adadelta with Keras 3's rule (``keras/src/optimizers/adadelta.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv.optimizers.base import Optimizer, _check_real


class Adadelta(Optimizer):
    """Adadelta: steps scaled by running averages of squared gradients and steps.

    Keras 3 rule (both accumulators start at 0)::

        acc_g = rho * acc_g + (1 - rho) * g**2
        delta = -sqrt(acc_d + epsilon) * g / sqrt(acc_g + epsilon)
        acc_d = rho * acc_d + (1 - rho) * delta**2
        w = w + lr * delta

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
        Keras' default; 1.0 is the paper's form.
    rho : float, default 0.95
        Decay of the averages, in [0, 1).
    epsilon : float, default 1e-07
        > 0.
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "adadelta"
    """

    def __init__(
        self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-07,
        weight_decay: float | None = None, clipnorm: float | None = None,
        clipvalue: float | None = None, global_clipnorm: float | None = None,
        use_ema: bool = False, ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None, loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "adadelta",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self.rho = _check_real(rho, "rho", 0.0, 1.0, high_open=True)
        self.epsilon = _check_real(epsilon, "epsilon", 0.0, low_open=True)

    def _slot_names(self) -> tuple[str, ...]:
        return ("accumulated_grad", "accumulated_delta_var")

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        rho, one_minus_rho, eps = dtype(self.rho), dtype(1 - self.rho), dtype(self.epsilon)
        acc_g = self._slots["accumulated_grad"][index]
        acc_d = self._slots["accumulated_delta_var"][index]
        acc_g *= rho
        acc_g += one_minus_rho * np.square(grad)
        delta = -(np.sqrt(acc_d + eps) * grad / np.sqrt(acc_g + eps))
        acc_d *= rho
        acc_d += one_minus_rho * np.square(delta)
        value += dtype(self._step_learning_rate) * delta

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        _optim.adadelta_update(values, grads, self._slot_list("accumulated_grad", active),
                               self._slot_list("accumulated_delta_var", active),
                               self._step_learning_rate, self.rho, 1 - self.rho, self.epsilon,
                               f32, isa, threads, **decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}

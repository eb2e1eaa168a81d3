"""Adagrad with Keras 3's rule (``keras/src/optimizers/adagrad.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv.optimizers.base import Optimizer, _check_real


class Adagrad(Optimizer):
    """Adagrad: per-parameter steps shrinking with the gradients seen so far.

    Keras 3 rule (``acc`` starts at ``initial_accumulator_value``)::

        acc = acc + g**2
        w = w - lr * g / sqrt(acc + epsilon)

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
    initial_accumulator_value : float, default 0.1
        Starting value of the accumulators, >= 0.
    epsilon : float, default 1e-07
        Added to the accumulator inside the square root, > 0.
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "adagrad"
    """

    def __init__(
        self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-07, weight_decay: float | None = None,
        clipnorm: float | None = None, clipvalue: float | None = None,
        global_clipnorm: float | None = None, use_ema: bool = False,
        ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "adagrad",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self.initial_accumulator_value = _check_real(
            initial_accumulator_value, "initial_accumulator_value", 0.0)
        self.epsilon = _check_real(epsilon, "epsilon", 0.0, low_open=True)

    def _slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def _slot_init(self, slot: str) -> float:
        return self.initial_accumulator_value if slot == "accumulator" else 0.0

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        acc = self._slots["accumulator"][index]
        acc += np.square(grad)
        value -= dtype(self._step_learning_rate) * grad / np.sqrt(acc + dtype(self.epsilon))

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        _optim.adagrad_update(values, grads, self._slot_list("accumulator", active),
                              self._step_learning_rate, self.epsilon, f32, isa, threads,
                              **decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}

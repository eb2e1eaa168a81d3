"""Adamax with Keras 3's rule (``keras/src/optimizers/adamax.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv.optimizers.adam import MomentEstimates


class Adamax(MomentEstimates):
    """Adamax: Adam with the infinity norm in place of the second moment.

    Keras 3 rule at step ``t = iterations + 1`` (``m`` and ``u`` start at 0)::

        m = m + (g - m) * (1 - beta_1)
        u = max(beta_2 * u, abs(g))
        w = w - lr * m / ((1 - beta_1**t) * (u + epsilon))

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
    beta_1 : float, default 0.9
        Decay of the first moment, in [0, 1).
    beta_2 : float, default 0.999
        Decay of the infinity norm, in [0, 1].
    epsilon : float, default 1e-07
        > 0.
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "adamax"
    """

    def __init__(
        self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
        epsilon: float = 1e-07, weight_decay: float | None = None,
        clipnorm: float | None = None, clipvalue: float | None = None,
        global_clipnorm: float | None = None, use_ema: bool = False,
        ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "adamax",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self._set_moment_arguments(beta_1, beta_2, epsilon, beta_2_may_be_one=True)

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum", "norm")

    def _scalars(self, dtype: type) -> tuple[Any, Any, Any, Any, Any]:
        """lr, 1 - beta_1, beta_2, 1 - beta_1**t, epsilon in the parameters' dtype."""
        beta_1_power = dtype(self.beta_1) ** dtype(self.iterations + 1)
        return (dtype(self._step_learning_rate), dtype(1 - self.beta_1), dtype(self.beta_2),
                1 - beta_1_power, dtype(self.epsilon))

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        lr, one_minus_beta_1, beta_2, one_minus_power, eps = self._scalars(value.dtype.type)
        m = self._slots["momentum"][index]
        u = self._slots["norm"][index]
        m += (grad - m) * one_minus_beta_1
        np.maximum(beta_2 * u, np.abs(grad), out=u)
        value -= lr * m / (one_minus_power * (u + eps))

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        scalars = [float(x) for x in self._scalars(values[0].dtype.type)]
        _optim.adamax_update(values, grads, self._slot_list("momentum", active),
                             self._slot_list("norm", active), *scalars, f32, isa, threads,
                             **decay)

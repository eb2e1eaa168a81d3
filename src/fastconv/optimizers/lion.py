"""Lion with Keras 3's rule (``keras/src/optimizers/lion.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv.optimizers.base import Optimizer, _check_real


class Lion(Optimizer):
    """Lion: steps of fixed size ``lr`` in the sign of an interpolated momentum.

    Keras 3 rule (``m`` starts at 0)::

        w = w - lr * sign(m * beta_1 + g * (1 - beta_1))
        m = m * beta_2 + g * (1 - beta_2)

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
    beta_1 : float, default 0.9
        In (0, 1]; 0 would be sign descent.
    beta_2 : float, default 0.99
        Decay of the momentum, in [0, 1].
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "lion"
    """

    def __init__(
        self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99,
        weight_decay: float | None = None, clipnorm: float | None = None,
        clipvalue: float | None = None, global_clipnorm: float | None = None,
        use_ema: bool = False, ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None, loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "lion",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self.beta_1 = _check_real(beta_1, "beta_1", 0.0, 1.0, low_open=True)
        self.beta_2 = _check_real(beta_2, "beta_2", 0.0, 1.0)

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum",)

    def _scalars(self, dtype: type) -> tuple[Any, ...]:
        """lr, beta_1, 1 - beta_1, beta_2, 1 - beta_2 in the parameters' dtype
        (Keras subtracts the cast betas)."""
        beta_1, beta_2 = dtype(self.beta_1), dtype(self.beta_2)
        return dtype(self._step_learning_rate), beta_1, 1 - beta_1, beta_2, 1 - beta_2

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2 = self._scalars(
            value.dtype.type)
        m = self._slots["momentum"][index]
        value -= lr * np.sign(m * beta_1 + grad * one_minus_beta_1)
        m *= beta_2
        m += grad * one_minus_beta_2

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        scalars = [float(x) for x in self._scalars(values[0].dtype.type)]
        _optim.lion_update(values, grads, self._slot_list("momentum", active), *scalars, f32,
                           isa, threads, **decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}

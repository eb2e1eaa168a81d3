"""Nadam with Keras 3's rule (``keras/src/optimizers/nadam.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv.optimizers.adam import MomentEstimates


class Nadam(MomentEstimates):
    """Nadam: Adam with Nesterov momentum, with Keras' momentum schedule.

    Keras 3 rule at step ``t = iterations + 1`` (``m``, ``v`` start at 0 and
    the running product ``P`` at 1)::

        mu(s) = beta_1 * (1 - 0.5 * 0.96**s)
        P = P * beta_1 * (1 - 0.5 * 0.96**t)        (once a step, before the rule)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        m_hat = mu(t + 1) * m / (1 - P * mu(t + 1)) + (1 - mu(t)) * g / (1 - P)
        v_hat = v / (1 - beta_2**t)
        w = w - m_hat * lr / (sqrt(v_hat) + epsilon)

    ``P`` is kept in the state as ``u_product``, in the first parameter's dtype.

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
    beta_1 : float, default 0.9
        In [0, 1).
    beta_2 : float, default 0.999
        In [0, 1).
    epsilon : float, default 1e-07
        > 0.
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "nadam"
    """

    def __init__(
        self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
        epsilon: float = 1e-07, weight_decay: float | None = None,
        clipnorm: float | None = None, clipvalue: float | None = None,
        global_clipnorm: float | None = None, use_ema: bool = False,
        ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "nadam",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self._set_moment_arguments(beta_1, beta_2, epsilon)
        self._u_product: Any = None

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def _scalar_names(self) -> tuple[str, ...]:
        return ("u_product",)

    def _build_scalars(self, values: list[np.ndarray]) -> None:
        self._u_product = np.array(1.0, dtype=values[0].dtype)

    def _before_step(self, values: list[np.ndarray]) -> None:
        dtype = self._u_product.dtype.type
        power = dtype(0.96) ** dtype(self.iterations + 1)
        self._u_product = np.array(self._u_product * dtype(self.beta_1)
                                   * (dtype(1.0) - dtype(0.5) * power))

    def _scalars(self, dtype: type) -> tuple[Any, ...]:
        """lr, 1 - beta_1, 1 - beta_2, mu(t + 1), 1 - P * mu(t + 1), 1 - mu(t),
        1 - P, 1 - beta_2**t, epsilon, in the parameters' dtype."""
        t, t_next = dtype(self.iterations + 1), dtype(self.iterations + 2)
        decay, beta_1, beta_2 = dtype(0.96), dtype(self.beta_1), dtype(self.beta_2)
        u_t = beta_1 * (dtype(1.0) - dtype(0.5) * decay**t)
        u_next = beta_1 * (dtype(1.0) - dtype(0.5) * decay**t_next)
        product = dtype(self._u_product)
        product_next = product * u_next
        return (dtype(self._step_learning_rate), 1 - beta_1, 1 - beta_2, u_next,
                1 - product_next, 1 - u_t, 1 - product, 1 - beta_2**t, dtype(self.epsilon))

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        (lr, one_minus_beta_1, one_minus_beta_2, u_next, c_next, c_g, c_now, c_v,
         eps) = self._scalars(value.dtype.type)
        m = self._slots["momentum"][index]
        v = self._slots["velocity"][index]
        m += (grad - m) * one_minus_beta_1
        v += (np.square(grad) - v) * one_minus_beta_2
        m_hat = u_next * m / c_next + c_g * grad / c_now
        v_hat = v / c_v
        value -= m_hat * lr / (np.sqrt(v_hat) + eps)

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        scalars = [float(x) for x in self._scalars(values[0].dtype.type)]
        _optim.nadam_update(values, grads, self._slot_list("momentum", active),
                            self._slot_list("velocity", active), *scalars, f32, isa, threads,
                            **decay)

"""Adam and AdamW with Keras 3's rules (``keras/src/optimizers/{adam,adamw}.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv._validation import check_flag
from fastconv.optimizers.base import Optimizer, _check_real


class MomentEstimates(Optimizer):
    """The first- and second-moment arguments of Adam, Adamax and Nadam
    (``beta_1``, ``beta_2``, ``epsilon``): their checks and their config keys,
    which Keras 3 gives all three."""

    def _set_moment_arguments(self, beta_1: float, beta_2: float, epsilon: float,
                              beta_2_may_be_one: bool = False) -> None:
        # Adamax's infinity norm is defined for beta_2 = 1 (a norm that never
        # decays); Adam and Nadam divide by 1 - beta_2**t, which it makes 0.
        self.beta_1 = _check_real(beta_1, "beta_1", 0.0, 1.0, high_open=True)
        self.beta_2 = _check_real(beta_2, "beta_2", 0.0, 1.0, high_open=not beta_2_may_be_one)
        self.epsilon = _check_real(epsilon, "epsilon", 0.0, low_open=True)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Adam(MomentEstimates):
    """Adam, optionally with the AMSGrad variant.

    Keras 3 rule at step ``t = iterations + 1`` (every state array starts at 0)::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        amsgrad:  v_hat = max(v_hat, v);  v = v_hat      (for the step only)
        w = w - alpha * m / (sqrt(v) + epsilon)

    ``epsilon`` is "epsilon hat" of Kingma and Ba (added after the square root
    of the uncorrected ``v``).

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
    beta_1 : float, default 0.9
        Decay of the first-moment estimate, in [0, 1).
    beta_2 : float, default 0.999
        Decay of the second-moment estimate, in [0, 1).
    epsilon : float, default 1e-07
        Added to ``sqrt(v)``, > 0.
    amsgrad : bool, default False
        Whether to use the running maximum of ``v`` (AMSGrad).
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "adam"
    """

    def __init__(
        self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
        epsilon: float = 1e-07, amsgrad: bool = False, weight_decay: float | None = None,
        clipnorm: float | None = None, clipvalue: float | None = None,
        global_clipnorm: float | None = None, use_ema: bool = False,
        ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "adam",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self._set_moment_arguments(beta_1, beta_2, epsilon)
        self.amsgrad = check_flag(amsgrad, "amsgrad")

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        alpha = self._alpha(dtype)
        m = self._slots["momentum"][index]
        v = self._slots["velocity"][index]
        m += (grad - m) * dtype(1.0 - self.beta_1)
        v += (np.square(grad) - v) * dtype(1.0 - self.beta_2)
        if self.amsgrad:
            v_hat = self._slots["velocity_hat"][index]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        value -= m * alpha / (np.sqrt(v) + dtype(self.epsilon))

    def _alpha(self, dtype: type) -> np.floating:
        """The step size at this step, computed in the parameters' dtype."""
        # Keras raises the betas to the step count in the parameter's dtype.
        t = dtype(self.iterations + 1)
        beta_1_power = dtype(self.beta_1) ** t
        beta_2_power = dtype(self.beta_2) ** t
        return dtype(self._step_learning_rate) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        v_hat = self._slot_list("velocity_hat", active) if self.amsgrad else None
        alpha = self._alpha(values[0].dtype.type)
        _optim.adam_update(values, grads, self._slot_list("momentum", active),
                           self._slot_list("velocity", active), v_hat, float(alpha),
                           1.0 - self.beta_1, 1.0 - self.beta_2, self.epsilon, f32, isa,
                           threads, **decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter).

    Adam's rule, after the base optimizer's decay ``w = w - w * weight_decay *
    lr`` (with ``lr`` the learning rate, not Adam's ``alpha``), as Keras 3's
    AdamW: the same as ``Adam(weight_decay=...)``, with a default decay.

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.001
    weight_decay : float, default 0.004
        >= 0; None is an error, as in Keras.
    beta_1, beta_2, epsilon, amsgrad
        As for :class:`Adam`.
    clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "adamw"
    """

    def __init__(
        self, learning_rate: Any = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
        beta_2: float = 0.999, epsilon: float = 1e-07, amsgrad: bool = False,
        clipnorm: float | None = None, clipvalue: float | None = None,
        global_clipnorm: float | None = None, use_ema: bool = False,
        ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "adamw",
    ) -> None:
        if weight_decay is None:
            raise ValueError("Invalid value for argument `weight_decay`: AdamW expects a "
                             "float >= 0, received weight_decay=None.")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)

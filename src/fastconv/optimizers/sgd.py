"""SGD with Keras 3's rule (``keras/src/optimizers/sgd.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv._kernels import optim as _optim
from fastconv._validation import check_flag
from fastconv.optimizers.base import Optimizer, _check_real


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum.

    Keras 3 rule for parameter ``w``, gradient ``g``, learning rate ``lr``::

        momentum == 0:   w = w - lr * g
        otherwise:       m = momentum * m - lr * g        (m starts at 0)
                         w = w + m                        (nesterov=False)
                         w = w + momentum * m - lr * g    (nesterov=True)

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable, default 0.01
    momentum : float, default 0.0
        In [0, 1]; 0 is plain gradient descent.
    nesterov : bool, default False
        Whether to use Nesterov momentum.
    weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, \
ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps
        As for :class:`Optimizer`.
    name : str, default "SGD"
    """

    def __init__(
        self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float | None = None, clipnorm: float | None = None,
        clipvalue: float | None = None, global_clipnorm: float | None = None,
        use_ema: bool = False, ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None, loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "SGD",
    ) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name)
        self.momentum = _check_real(momentum, "momentum", 0.0, 1.0)
        self.nesterov = check_flag(nesterov, "nesterov")

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum != 0.0 else ()

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        lr = dtype(self._step_learning_rate)
        if self.momentum == 0.0:
            value -= lr * grad
            return
        mu = dtype(self.momentum)
        m = self._slots["momentum"][index]
        m *= mu
        m -= lr * grad
        if self.nesterov:
            value += mu * m - lr * grad
        else:
            value += m

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        m = self._slot_list("momentum", active) if self.momentum != 0.0 else None
        _optim.sgd_update(values, grads, m, self._step_learning_rate, self.momentum,
                          self.nesterov, f32, isa, threads, **decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

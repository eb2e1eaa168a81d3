"""Callbacks that change the optimizer's learning rate between epochs:
LearningRateScheduler and ReduceLROnPlateau.

Both set ``model.optimizer.learning_rate`` and, as Keras 3, write the rate in
force at each epoch end into the logs as ``learning_rate`` (so History and
CSVLogger placed after them record it).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fastconv.callbacks.callback import Callback
from fastconv.callbacks.monitor import MonitorCallback, check_count, check_number


def _optimizer(model: Any, name: str) -> Any:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{name} needs a compiled model whose optimizer has a "
                         f'"learning_rate" attribute.')
    return optimizer


def _log_learning_rate(model: Any, logs: dict | None, name: str) -> None:
    if logs is not None:
        logs["learning_rate"] = float(_optimizer(model, name).learning_rate)


def _positional_arity(fn: Callable) -> int | None:
    """How many positional arguments ``fn`` takes (None when it cannot be told)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return 2
    return sum(k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for k in kinds)


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch from a function.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new_lr`` (``epoch`` counts from 0, ``lr`` is
        the current rate) or ``schedule(epoch) -> new_lr``. It must return a
        float (Python or NumPy).
    verbose : int, default 0
        1: print ``"Epoch k: LearningRateScheduler setting learning rate to x."``.

    Examples
    --------
    >>> def scheduler(epoch, lr):
    ...     return lr if epoch < 10 else lr * math.exp(-0.1)
    >>> model.fit(x, y, epochs=15, callbacks=[LearningRateScheduler(scheduler)])
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"Invalid value for argument `schedule`: expected a function "
                            f"schedule(epoch, lr) or schedule(epoch), received "
                            f"schedule={schedule!r}.")
        self.schedule = schedule
        self.verbose = verbose

    def _new_rate(self, epoch: int, rate: float) -> Any:
        arity = _positional_arity(self.schedule)
        if arity is None:  # a callable inspect cannot read: try both forms, as Keras
            try:
                return self.schedule(epoch, rate)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, rate) if arity >= 2 else self.schedule(epoch)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        optimizer = _optimizer(self.model, "LearningRateScheduler")
        rate = self._new_rate(epoch, float(optimizer.learning_rate))
        if not isinstance(rate, (float, np.floating)):
            raise ValueError(f"The output of the `schedule` function should be a float. "  # noqa: TRY004 (Keras' type)
                             f"Got: {rate!r}")
        optimizer.learning_rate = float(rate)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(rate)}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        _log_learning_rate(self.model, logs, "LearningRateScheduler")


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not
    improved for ``patience`` epochs.

    At each epoch end: during a cooldown the counter of epochs without
    improvement stays 0; an improvement (by more than ``min_delta``) resets
    it; otherwise it grows, and when it reaches ``patience`` the rate
    becomes ``max(lr * factor, min_lr)`` (if ``lr`` is above ``min_lr``), the
    counter restarts and ``cooldown`` epochs begin.

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float, default 0.1
        In [0, 1): ``new_lr = lr * factor``.
    patience : int, default 10
    verbose : int, default 0
        1: print ``"Epoch k: ReduceLROnPlateau reducing learning rate to x."``.
    mode : {"auto", "min", "max"}, default "auto"
    min_delta : float, default 1e-4
    cooldown : int, default 0
        Epochs after a reduction during which no epoch counts as stalled.
    min_lr : float, default 0.0
        The learning rate never goes below it.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected keyword arguments "
                            f"{sorted(kwargs)}.")
        super().__init__(monitor, mode, min_delta=min_delta)
        factor = check_number(factor, "factor")
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        if factor < 0.0:
            raise ValueError(f"Invalid value for argument `factor`: expected a float in "
                             f"[0, 1), received factor={factor}.")
        min_lr = check_number(min_lr, "min_lr")
        if min_lr < 0.0:
            raise ValueError(f"Invalid value for argument `min_lr`: expected a float >= 0, "
                             f"received min_lr={min_lr}.")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = check_count(patience, "patience")
        self.verbose = verbose
        self.cooldown = check_count(cooldown, "cooldown")
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def _reduce(self, epoch: int) -> bool:
        optimizer = _optimizer(self.model, "ReduceLROnPlateau")
        old = float(optimizer.learning_rate)
        # Keras compares with the float32 of min_lr: its rate is a float32 variable.
        if not old > np.float32(self.min_lr):
            return False
        new = max(old * self.factor, self.min_lr)
        optimizer.learning_rate = new
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
        return True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        _log_learning_rate(self.model, logs, "ReduceLROnPlateau")
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(value, self.best):
            self.best = value
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0


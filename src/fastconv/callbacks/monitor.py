"""Callbacks that watch one logged quantity: the shared rule (MonitorCallback)
and EarlyStopping.

A value improves on the best one when ``value - min_delta < best`` (a
quantity to minimise) or ``value + min_delta > best`` (to maximise), as in
Keras 3's ``MonitorCallback``. The direction of ``mode="auto"`` is decided at
the first epoch end, when the model's metrics exist: a loss is minimised; a
metric is maximised or minimised as its ``_direction`` says; otherwise a
metric name Keras' built-in metrics use decides it, and any other name is an
error asking for ``mode``.
"""

from __future__ import annotations

import numbers
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fastconv._validation import check_flag
from fastconv.callbacks.callback import Callback

_MODES = ("auto", "min", "max")

# Keras' built-in metrics and what they aim for, by name (after any
# "val_" prefix and output-name prefix).
_UP = re.compile(r"(acc|accuracy|auc|precision|recall|f1_score|fbeta_score|r2_score|iou)$")
_DOWN = re.compile(r"(loss|error|crossentropy|hinge|divergence|poisson|logcosh|mse|mae|mape|"
                   r"msle|rmse)$")


def check_mode(mode: Any, name: str) -> str:
    if mode not in _MODES:
        raise ValueError(f"Invalid value for argument `mode` of {name}: expected 'auto', "
                         f"'min' or 'max', received mode={mode!r}.")
    return mode


def check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"Invalid value for argument `{name}`: expected an int >= 0, "
                         f"received {name}={value!r}.")
    return int(value)


def check_number(value: Any, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or np.isnan(value):
        kind = "a number or None" if allow_none else "a number"
        raise ValueError(f"Invalid value for argument `{name}`: expected {kind}, "
                         f"received {name}={value!r}.")
    return float(value)


class MonitorCallback(Callback):
    """Base of the callbacks that act when ``monitor`` improves or stalls.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs.
    mode : {"auto", "min", "max"}, default "auto"
    baseline : float or None, default None
        The initial best value; None: the first value improves.
    min_delta : float, default 0
        The smallest change that counts as an improvement (its sign is ignored).
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 baseline: float | None = None, min_delta: float = 0.0) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"Invalid value for argument `monitor`: expected the name of a "
                             f"logged quantity, received monitor={monitor!r}.")
        self.monitor = monitor
        self.mode = check_mode(mode, type(self).__name__)
        self.best = check_number(baseline, "baseline", allow_none=True)
        self.min_delta = abs(check_number(min_delta, "min_delta"))
        self.monitor_op: Callable[[Any, Any], Any] | None = None

    def _set_monitor_op(self) -> None:
        mode = self.mode
        if mode == "auto":
            mode = self._inferred_mode()
        self.monitor_op = np.less if mode == "min" else np.greater
        if mode == "min":
            self.min_delta = -self.min_delta

    def _inferred_mode(self) -> str:
        name = self.monitor.removeprefix("val_")
        if name == "loss":
            return "min"
        for metric in getattr(self.model, "metrics", None) or []:
            direction = getattr(metric, "_direction", None)
            if getattr(metric, "name", None) == name and direction in ("up", "down"):
                return "max" if direction == "up" else "min"
        if _UP.search(name):
            return "max"
        if _DOWN.search(name):
            return "min"
        raise ValueError(
            f"{type(self).__name__} callback received monitor={self.monitor}, but fastconv "
            "isn't able to automatically determine whether that metric should be maximized "
            "or minimized. Pass `mode='max'` in order to monitor based on the highest metric "
            "value, or pass `mode='min'` in order to use the lowest value.")

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))


class EarlyStopping(MonitorCallback):
    """Stops training when ``monitor`` has stopped improving.

    At each epoch end (from epoch ``start_from_epoch`` on) a counter of
    epochs without improvement grows; an improvement resets it, but only if
    the value also beats ``baseline``. Training stops when the counter reaches
    ``patience`` (never at epoch 0).

    Parameters
    ----------
    monitor : str, default "val_loss"
    min_delta : float, default 0
        Changes smaller than this are no improvement.
    patience : int, default 0
        Epochs without improvement before stopping.
    verbose : int, default 0
        1: print ``"Epoch k: early stopping"``.
    mode : {"auto", "min", "max"}, default "auto"
    baseline : float or None, default None
        Training stops after ``patience`` epochs unless the value beats it.
    restore_best_weights : bool, default False
        At the end of training, restore the weights of the best epoch (the
        first monitored epoch's if none improved on ``baseline``).
    start_from_epoch : int, default 0
        Epochs of warm-up before monitoring starts.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = check_count(patience, "patience")
        self.verbose = verbose
        self.baseline = check_number(baseline, "baseline", allow_none=True)
        self.restore_best_weights = check_flag(restore_best_weights, "restore_best_weights")
        self.start_from_epoch = check_count(start_from_epoch, "start_from_epoch")
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        # The same instance may serve several fit calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        value = self.get_monitor_value(logs)
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs: dict | None) -> float | None:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}", stacklevel=2)
        return value

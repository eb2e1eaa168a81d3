"""The callback protocol (Callback, CallbackList) and the small callbacks:
History, LambdaCallback, TerminateOnNaN.

A callback's methods are called by ``fit`` / ``evaluate`` / ``predict`` with
``logs``, a dict of the running or final metric values (``loss``,
``accuracy``, ``val_loss``, ...). Every callback of a list receives the same
dict, so a callback may add entries (``ReduceLROnPlateau`` adds
``learning_rate``) that the ones after it see. Setting
``model.stop_training = True`` ends ``fit`` after the current batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastconv._validation import check_flag


class Callback:
    """Base class: every hook does nothing.

    As in Keras, ``on_train_batch_begin`` / ``on_train_batch_end`` call
    ``on_batch_begin`` / ``on_batch_end``, so a subclass may override either
    name. ``self.model`` is the model being trained and ``self.params`` holds
    ``epochs``, ``steps`` (batches per epoch) and ``verbose`` during ``fit``.
    """

    def __init__(self) -> None:
        self.model = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class CallbackList:
    """Calls one hook on every callback in order.

    Parameters
    ----------
    callbacks : list of Callback
    model : Model
        Given to every callback (``set_model``).
    params : dict
        Given to every callback (``set_params``).
    """

    def __init__(self, callbacks: list[Callback], model: Any, params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not hasattr(cb, "set_model"):
                raise TypeError(f"Invalid value for argument `callbacks`: expected "
                                f"fastconv.callbacks.Callback instances, received "
                                f"{type(cb).__name__}.")
        if model is not None and not hasattr(model, "_initial_epoch"):
            # Keras' Trainer holds `_initial_epoch = None` from construction;
            # BackupAndRestore sets it in on_train_begin to resume a run.
            model._initial_epoch = None
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    @property
    def progbar(self) -> Any:
        """The list's ProgbarLogger (which then prints fit's progress), or None."""
        from fastconv.callbacks.loggers import ProgbarLogger
        return next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` is a per-epoch
    list and ``history.epoch`` the epoch indices. ``fit`` returns it."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)
        if self.model is not None:
            self.model.history = self


class LambdaCallback(Callback):
    """A callback made of plain functions, e.g.
    ``LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs["loss"]))``.

    ``on_batch_begin`` / ``on_batch_end`` are the training-batch hooks, as in
    Keras.
    """

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
             "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
             "on_predict_batch_begin", "on_predict_batch_end")

    def __init__(self, **hooks: Callable[..., None]) -> None:
        super().__init__()
        aliases = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}
        for name, fn in hooks.items():
            name = aliases.get(name, name)
            if name not in self.HOOKS:
                raise TypeError(f"Unknown hook `{name}` for LambdaCallback; expected one of "
                                f"{', '.join(self.HOOKS)}.")
            if fn is not None:
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stops training as soon as the loss becomes NaN or infinite.

    Parameters
    ----------
    raise_error : bool, default False
        False: print ``"Batch k: Invalid loss, terminating training"`` and set
        ``model.stop_training`` (the epoch ends, ``on_train_end`` runs).
        True: raise ``RuntimeError`` at once, so no ``on_train_end`` runs
        (a ``BackupAndRestore`` backup is kept).
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = check_flag(raise_error, "raise_error")

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                               f"Loss value: {loss}. Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True

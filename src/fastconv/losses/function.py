"""A loss written by the user as a function of ``(y_true, y_pred)`` with
Keras ops, as Keras' ``LossFunctionWrapper``: the function gives the
per-sample losses, the base class weighs and reduces them, and the ops'
gradient rules give the gradient (the function is traced once per pair of
shapes into a graph)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.losses.loss import Loss, same_rank

__all__ = ["FunctionLoss"]


class FunctionLoss(Loss):
    """A loss from a function ``fn(y_true, y_pred)`` written with
    ``fastconv.ops`` (``keras.ops``) that returns per-sample (or
    per-element) losses; they are weighted and reduced as any loss's
    (``"sum_over_batch_size"`` by default: their mean). As Keras' wrapper,
    ``y_true`` and ``y_pred`` first get the same rank (a trailing axis of
    size 1 is dropped or added).

    Keras' own functions (``fastconv.losses.huber``, ...) give their class
    instead (``Huber(name="huber")``), with its closed-form gradient.

    Parameters
    ----------
    fn : callable
    name : str, optional
        Defaults to ``fn.__name__``.
    reduction : str or None, default "sum_over_batch_size"
    dtype : str or None, default None
    """

    def __new__(cls, fn: Any = None, *args: Any, **kwargs: Any) -> Loss:
        builtin = getattr(fn, "_loss_class", None)
        if cls is FunctionLoss and builtin is not None:
            options = dict(zip(("name", "reduction", "dtype"), args), **kwargs)
            options["name"] = options.get("name") or fn.__name__
            return builtin(**options)
        return super().__new__(cls)

    def __init__(self, fn: Any, name: str | None = None,
                 reduction: str | None = "sum_over_batch_size", dtype: Any = None) -> None:
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction,
                         dtype=dtype)
        self.fn = fn

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.fn(y_true, y_pred)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        t, _, _ = super()._prepare(y_true, y_pred)
        t, p = same_rank(t, y_pred)
        shape = y_pred.shape
        return t, p, lambda dp: dp.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        raise TypeError(f"The loss function {self.name!r} is Python code, which fastconv "
                        "does not save; pass it again with custom_objects when loading.")

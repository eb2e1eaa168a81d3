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
    (``"sum_over_batch_size"`` by default: their mean).

    Parameters
    ----------
    fn : callable
    name : str, optional
        Defaults to ``fn.__name__``.
    reduction : str or None, default "sum_over_batch_size"
    dtype : str or None, default None
    """

    def __new__(cls, fn: Any = None, *args: Any, **kwargs: Any) -> Loss:
        # Keras' own loss functions (fastconv.losses.huber, ...) train with
        # their class and its closed-form gradient, named by the function.
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
        self._plans: dict = {}

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> tuple:
        t = np.asarray(y_true)
        t = t.astype(y_pred.dtype) if t.dtype.kind in "biuf" else t
        t, p = same_rank(t, y_pred)
        shape = y_pred.shape
        return t, p, lambda dp: dp.reshape(shape)

    def _plan(self, t: np.ndarray, y_pred: np.ndarray) -> Any:
        from fastconv.graph.executor import Plan
        from fastconv.graph.function import Function
        from fastconv.graph.node import KerasTensor

        key = (t.shape[1:], t.dtype.name, y_pred.shape[1:], y_pred.dtype.name)
        plan = self._plans.get(key)
        if plan is None:
            yt = KerasTensor((None, *t.shape[1:]), t.dtype.name, name="y_true")
            yp = KerasTensor((None, *y_pred.shape[1:]), y_pred.dtype.name, name="y_pred")
            try:
                out = self.fn(yt, yp)
            except TypeError as exc:
                raise TypeError(
                    f"The loss function {self.name!r} could not be traced: {exc}. Write it "
                    "with fastconv.ops (keras.ops), not NumPy, so it can be "
                    "differentiated.") from None
            if not isinstance(out, KerasTensor):
                raise TypeError(f"The loss function {self.name!r} returned {type(out).__name__}"
                                "; it must return what fastconv.ops computed from its "
                                "arguments.")
            plan = Plan(Function([yt, yp], out, owner=f"loss {self.name!r}"))
            self._plans[key] = plan
        return plan

    def _values(self, t: np.ndarray, p: np.ndarray) -> np.ndarray:
        (out,), _ = self._plan(t, p).forward([t, p], training=True)
        return np.asarray(out, dtype=p.dtype)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        plan = self._plan(t, p)
        (out,), tape = plan.forward([t, p], training=True, record=True)
        grads = plan.backward(tape, [dL.reshape(np.shape(out))], input_grads=True)
        g = grads[1]
        return np.zeros_like(p) if g is None else g.astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        raise TypeError(f"The loss function {self.name!r} is Python code, which fastconv "
                        "does not save; pass it again with custom_objects when loading.")

"""``GradientTape``: gradients of a loss computed eagerly on arrays, for
training loops written by hand as in TensorFlow::

    with fastconv.GradientTape() as tape:
        logits = model(x, training=True)
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))

While a tape is active, each eager call of a layer or model and each loss
evaluation is recorded with its context (arrays are identified by object
identity, so the tape keeps them alive). So is each eager Keras op
(``ops.mean(loss)``, ``ops.square(w)``) that reads a Variable or a value
already recorded; ops run inside a recorded layer, model or loss are not
recorded again. ``gradient`` walks the records back from the target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastconv.graph.node import SINGLE, flatten

_active: list[GradientTape] = []
# > 0 while a recorded unit (a layer's, a model's forward) runs: the ops it
# calls are inside that unit's own backward.
_paused = [0]


def recording() -> bool:
    return bool(_active) and not _paused[0]


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Record nothing while the block runs."""
    _paused[0] += 1
    try:
        yield
    finally:
        _paused[0] -= 1


def recorded(value: Any) -> bool:
    """Whether ``value`` is the output of a call recorded on an active tape."""
    return any(id(value) in tape._output_ids for tape in _active)


def record(operation: Any, ctx: Any, inputs: list, structure: Any, outputs: Any) -> None:
    """Note one eager call (inputs flat, outputs as returned) on every active tape."""
    if not _active:
        return
    flat_out, out_structure = flatten(outputs)
    entry = (operation, ctx, list(inputs), structure, flat_out, out_structure)
    for tape in _active:
        tape._entries.append(entry)
        tape._output_ids.update(id(o) for o in flat_out)


class _LossRecord:
    """How a loss value depends on ``y_pred``: its gradient rule."""

    name = "loss"

    def __init__(self, loss: Any, y_true: Any) -> None:
        self.loss, self.y_true = loss, y_true

    def backward(self, ctx: Any, d_out: Any, need_dx: bool = True) -> Any:
        y_pred = ctx
        g = self.loss.gradient(self.y_true, y_pred)
        return (np.asarray(d_out, dtype=g.dtype) * g).astype(y_pred.dtype, copy=False)


def record_loss(loss: Any, y_true: Any, y_pred: Any, value: Any) -> None:
    if _active and isinstance(y_pred, np.ndarray):
        record(_LossRecord(loss, y_true), y_pred, [y_pred], SINGLE, value)


class GradientTape:
    """Records eager computations inside its ``with`` block (see the module
    docstring). ``persistent=True`` allows several ``gradient`` calls."""

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self.persistent = bool(persistent)
        self._entries: list = []
        self._output_ids: set[int] = set()
        self._used = False

    def __enter__(self) -> GradientTape:
        _active.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _active.remove(self)

    def watch(self, tensor: Any) -> None:
        """Accepted for compatibility: every recorded input is watched."""

    def gradient(self, target: Any, sources: Any) -> Any:
        """d target / d source for each source (Variables, or arrays recorded
        as inputs); None where the target does not depend on a source."""
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can compute gradients only "
                               "once; use GradientTape(persistent=True).")
        self._used = True
        flat_sources, structure = flatten(sources)
        target_id = id(target)
        if not any(id(o) == target_id for e in self._entries for o in e[4]):
            raise ValueError(
                "GradientTape.gradient: the target was not computed on this tape. Compute "
                "it inside the `with` block by calling a model, a layer or a loss on arrays "
                "(arithmetic on their results with NumPy is not recorded).")
        # Backward passes add into every weight's gradient: keep what the
        # weights held, and give it back once the sources' gradients are read.
        variables = {id(v): v for v in flat_sources if hasattr(v, "accumulate_grad")}
        for entry in self._entries:
            for v in getattr(entry[0], "weights", []):
                variables.setdefault(id(v), v)
            for v in entry[2]:  # Variables read by eager ops
                if hasattr(v, "accumulate_grad"):
                    variables.setdefault(id(v), v)
        saved = [(v, v._grad.copy(), v._grad_is_zero) for v in variables.values()]
        for v in variables.values():
            v.zero_grad()
        grads: dict[int, Any] = {target_id: np.ones_like(np.asarray(target, dtype=float))}
        for op, ctx, inputs, structure_in, outputs, _ in reversed(self._entries):
            douts = [grads.get(id(o)) for o in outputs]
            if all(d is None for d in douts):
                continue
            d = douts[0] if len(outputs) == 1 else [
                np.zeros_like(o) if g is None else g for o, g in zip(outputs, douts)]
            dx = op.backward(ctx, d, True)
            flat_dx = [dx] if structure_in == SINGLE else flatten(dx)[0]
            for x, g in zip(inputs, flat_dx):
                if g is None:
                    continue
                if hasattr(x, "accumulate_grad"):
                    x.accumulate_grad(g)
                else:
                    grads[id(x)] = g if id(x) not in grads else grads[id(x)] + g
        result = []
        for s in flat_sources:
            if hasattr(s, "accumulate_grad"):
                result.append(None if s._grad_is_zero else s._grad.copy())
            else:
                result.append(grads.get(id(s)))
        for v, grad, was_zero in saved:
            v._grad[...] = grad
            v._grad_is_zero = was_zero
        if not self.persistent:
            self._entries = []
            self._output_ids = set()
        return result[0] if structure == SINGLE else result

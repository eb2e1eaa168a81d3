"""The executor: runs a graph's nodes forward, keeps each call's context on a
tape, and runs the tape backward.

A ``Plan`` is compiled once from a ``Function``: every tensor gets a slot
number, every node becomes a ``Step`` that reads slots (or weights, for
Keras ops that use them) and writes slots, and the rewrite passes of
``fastconv.graph.passes`` replace some pairs of steps by fused ones.

- ``forward(inputs, training, record)`` calls ``operation.forward(inputs,
  training) -> (outputs, ctx)`` step by step. With ``record`` the contexts
  are kept on a ``Tape``; without it every slot is freed after its last
  reader, so inference holds only the live activations, and an operation
  with a ``forward_folded`` pass (a BatchNormalization folded into the layer
  before it) runs that instead when its ``folds(training)`` says so.
- ``backward(tape, d_outputs)`` walks the steps in reverse, calling
  ``operation.backward(ctx, d_output, need_dx)``. The gradient of a tensor
  read by several steps is the sum of what each returns; weight gradients
  are accumulated by the layers into ``Variable.grad``, which the caller
  zeroes once per step (``zero_gradients``). Steps whose inputs need no
  gradient and whose operation has no trainable weight are skipped.

Layers keep nothing of a call on themselves: whatever backward needs is in
the context their forward returned.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fastconv.graph import node as node_module
from fastconv.graph.function import Function
from fastconv.graph.node import SINGLE, KerasTensor, unflatten
from fastconv.runtime import batch as _batch

_trainable_version = [0]


def trainable_changed() -> None:
    """Note that some layer's ``trainable`` flag changed (plans recompute which
    steps need gradients)."""
    _trainable_version[0] += 1


class Step:
    """One call in a plan: an operation, where its inputs come from (slot
    numbers, or Variables read directly) and which slots its outputs fill."""

    __slots__ = ("operation", "layers", "in_refs", "structure", "out_slots",
                 "output_structure", "training", "activity", "activity_layer", "name",
                 "folded", "inner_penalty")

    def __init__(self, operation: Any, layers: tuple, in_refs: list, structure: Any,
                 out_slots: list[int], output_structure: Any, training: bool | None) -> None:
        self.operation = operation
        self.layers = layers            # the layers this step computes (two when fused)
        self.in_refs = in_refs
        self.structure = structure
        self.out_slots = out_slots
        self.output_structure = output_structure
        self.training = training
        # A penalty on the step's (single) output, added to the loss as Keras 3
        # does: the layer's activity regularizer.
        self.activity_layer = layers[-1]
        reg = getattr(layers[-1], "activity_regularizer", None)
        self.activity = reg if reg is not None and output_structure == SINGLE else None
        self.name = "+".join(getattr(layer, "name", "?") for layer in layers)
        # The pass without a tape, where the operation has one (FoldedBatchNorm).
        self.folded = getattr(operation, "forward_folded", None)
        # A nested model's own activity penalties, read from its context.
        self.inner_penalty = getattr(operation, "penalty_of", None)


class Tape:
    """The contexts of one recorded forward pass, one per step, and the
    outputs a backward pass needs again (activity penalties, multi-output
    steps)."""

    __slots__ = ("contexts", "outputs", "penalty")

    def __init__(self) -> None:
        self.contexts: list[Any] = []
        self.outputs: dict[int, Any] = {}
        self.penalty = 0.0


def _has_trainable_weights(operation: Any) -> bool:
    weights = getattr(operation, "trainable_weights", None)
    return bool(weights)


class Plan:
    """A compiled graph (see the module docstring)."""

    def __init__(self, function: Function, fuse: bool = True) -> None:
        from fastconv.graph import passes

        slots: dict[int, int] = {}
        floating: list[bool] = []

        def slot_of(tensor: KerasTensor) -> int:
            key = id(tensor)
            if key not in slots:
                slots[key] = len(slots)
                floating.append(np.dtype(tensor.dtype).kind == "f")
            return slots[key]

        self.function = function
        self.input_slots = [slot_of(t) for t in function.inputs]
        steps = []
        for node in function.nodes:
            in_refs = [slot_of(t) if isinstance(t, KerasTensor) else t for t in node.inputs]
            steps.append(Step(node.operation, (node.operation,), in_refs, node.structure,
                              [slot_of(t) for t in node.outputs], node.output_structure,
                              node.training))
        self.output_slots = [slot_of(t) for t in function.outputs]
        self.n_slots = len(slots)
        # Only floating tensors carry gradients (masks and indices do not).
        self.floating = floating
        self.steps = passes.fuse_steps(steps, self.output_slots) if fuse else steps
        # Integer tensors (an integer Input) reaching a float layer are cast
        # to the layer's dtype, as Keras computes such layers in float.
        self.casts = [_integer_cast(step, slots_floating=floating) for step in self.steps]
        self.memo: dict = {}  # what callers derive once from the plan (the loss fusion)
        self._index()

    def _index(self) -> None:
        """Who reads each slot, and after which step a slot is dead in inference."""
        self.producer = {}
        self.readers: dict[int, int] = {}
        last_use = {}
        for i, step in enumerate(self.steps):
            for ref in step.in_refs:
                if type(ref) is int:
                    self.readers[ref] = self.readers.get(ref, 0) + 1
                    last_use[ref] = i
            for s in step.out_slots:
                self.producer[s] = i
        keep = set(self.output_slots)
        self.release_after: list[list[int]] = [[] for _ in self.steps]
        for s, i in last_use.items():
            if s not in keep:
                self.release_after[i].append(s)
        self._grad_version = None

    # -- forward -----------------------------------------------------------

    def forward(self, inputs: list, training: bool, record: bool = False,
                timings: list | None = None) -> tuple[list, Tape | None]:
        """The flat outputs and, with ``record``, the tape for ``backward``.
        ``timings`` (a list) receives each step's seconds."""
        values: list[Any] = [None] * self.n_slots
        for s, v in zip(self.input_slots, inputs):
            values[s] = v
        tape = Tape() if record else None
        penalty = 0.0
        for i, step in enumerate(self.steps):
            if timings is not None:
                start = time.perf_counter()
            out, ctx = self.run_step(i, values, training, record)
            if step.activity is not None:
                penalty += step.activity(out) / _batch_rows(out)
            if step.inner_penalty is not None:
                penalty += step.inner_penalty(ctx)
            if timings is not None:
                timings.append(time.perf_counter() - start)
            if record:
                tape.contexts.append(ctx)
                if step.activity is not None or step.output_structure != SINGLE:
                    tape.outputs[i] = out
            else:
                for s in self.release_after[i]:
                    values[s] = None
        if record:
            tape.penalty = penalty
        self.last_penalty = penalty
        return [values[s] for s in self.output_slots], tape

    def run_step(self, i: int, values: list, training: bool, record: bool = False
                 ) -> tuple[Any, Any]:
        """Step ``i`` on the slot values: its outputs go into ``values``;
        returns them and the step's context (None for a folded pass, which
        runs only without ``record``)."""
        step = self.steps[i]
        flat = [values[r] if type(r) is int else r.value for r in step.in_refs]
        if self.casts[i] is not None:
            flat = [v.astype(self.casts[i]) if v.dtype.kind in "biu" else v for v in flat]
        args = flat[0] if step.structure == SINGLE else unflatten(flat, step.structure)
        mode = training if step.training is None else step.training
        if not record and step.folded is not None and step.operation.folds(mode):
            out, ctx = step.folded(args), None
        else:
            out, ctx = step.operation.forward(args, mode)
        if step.output_structure == SINGLE:
            values[step.out_slots[0]] = out
        else:
            for s, o in zip(step.out_slots, out):
                values[s] = o
        return out, ctx

    # -- backward ----------------------------------------------------------

    def _needs(self, input_grads: bool) -> tuple[list[bool], list[bool]]:
        """Per step: whether any input needs a gradient (need_dx), and whether
        the step runs backward at all (need_dx or trainable weights)."""
        key = (_trainable_version[0], input_grads)
        if self._grad_version == key:
            return self._need_dx, self._runs
        requires = [False] * self.n_slots
        if input_grads:
            for s in self.input_slots:
                requires[s] = self.floating[s]
        need_dx, runs = [], []
        for step in self.steps:
            needs = any(requires[r] if type(r) is int else _trainable_variable(r)
                        for r in step.in_refs)
            weights = any(_has_trainable_weights(layer) for layer in step.layers)
            need_dx.append(needs)
            runs.append(needs or weights)
            if needs or weights:
                for s in step.out_slots:
                    requires[s] = self.floating[s]
        self._need_dx, self._runs, self._grad_version = need_dx, runs, key
        return need_dx, runs

    def backward(self, tape: Tape, d_outputs: list, input_grads: bool = False,
                 preactivation: frozenset | set = frozenset(),
                 timings: list | None = None) -> list | None:
        """Backpropagate ``d_outputs`` (one array or None per output) through
        the recorded tape; weight gradients accumulate into ``Variable.grad``.

        ``preactivation`` holds steps whose output gradient is already taken
        before their activation (the loss fused with softmax/sigmoid). Returns
        the inputs' gradients when ``input_grads`` (None where none flows)."""
        grads: list[Any] = [None] * self.n_slots
        for s, d in zip(self.output_slots, d_outputs):
            if d is not None:
                grads[s] = d if grads[s] is None else grads[s] + d
        need_dx, runs = self._needs(input_grads)
        contexts = tape.contexts
        for i in range(len(self.steps) - 1, -1, -1):
            step = self.steps[i]
            if timings is not None:
                start = time.perf_counter()
            douts = [grads[s] for s in step.out_slots]
            for s in step.out_slots:
                grads[s] = None
            if not runs[i] or all(d is None for d in douts):
                if timings is not None:
                    timings.append(time.perf_counter() - start)
                continue
            if step.output_structure == SINGLE:
                dy = douts[0]
                if step.activity is not None:
                    out = tape.outputs[i]
                    penalty_grad = step.activity.gradient(out) / _batch_rows(out)
                    dy = dy + penalty_grad.astype(dy.dtype, copy=False)
            else:
                outs = tape.outputs[i]
                dy = unflatten([np.zeros_like(o) if d is None else d
                                for d, o in zip(douts, list(outs))], step.output_structure)
            if i in preactivation:
                dx = step.operation.backward(contexts[i], dy, need_dx[i], activation_done=True)
            else:
                dx = step.operation.backward(contexts[i], dy, need_dx[i])
            contexts[i] = None  # each context serves one backward pass
            if need_dx[i] and dx is not None:
                flat = [dx] if step.structure == SINGLE else node_module.flatten(dx)[0]
                for ref, d in zip(step.in_refs, flat):
                    if d is None:
                        continue
                    if type(ref) is int:
                        grads[ref] = d if grads[ref] is None else grads[ref] + d
                    elif _trainable_variable(ref):
                        ref.accumulate_grad(d)
            if timings is not None:
                timings.append(time.perf_counter() - start)
        if input_grads:
            return [grads[s] for s in self.input_slots]
        return None

    # -- what the trainer asks -----------------------------------------------

    def output_step(self, k: int) -> int | None:
        """The step producing output ``k`` when nothing else reads that tensor
        (so its gradient may be taken before the step's activation), else None."""
        s = self.output_slots[k]
        if self.readers.get(s) or self.output_slots.count(s) > 1 or s not in self.producer:
            return None
        i = self.producer[s]
        step = self.steps[i]
        if len(step.layers) != 1 or step.output_structure != SINGLE or step.activity:
            return None
        return i

    def variables(self) -> list:
        """Variables read directly by Keras-op steps (custom layers' weights)."""
        seen, found = set(), []
        for step in self.steps:
            for ref in step.in_refs:
                if type(ref) is not int and id(ref) not in seen:
                    seen.add(id(ref))
                    found.append(ref)
        return found


def _integer_cast(step: Step, slots_floating: list[bool]) -> str | None:
    """The float dtype a step's integer inputs are cast to, or None."""
    layer = step.layers[0]
    casts = getattr(layer, "_casts_integer_inputs", None)
    if casts is None or not casts():
        return None
    if all(slots_floating[r] for r in step.in_refs if type(r) is int):
        return None
    return layer.dtype


def _batch_rows(output: Any) -> int:
    """What an activity penalty is divided by, as Keras 3 does: the batch
    size (its first axis; the whole batch's when these rows are one chunk
    of it), or 1 for a scalar or an empty batch."""
    shape = np.shape(output)
    return _batch.global_rows(shape[0]) if shape and shape[0] else 1


def _trainable_variable(var: Any) -> bool:
    return getattr(var, "is_trainable", lambda: False)()


def zero_gradients(variables: list) -> None:
    """Start a step: every weight's gradient counts from zero."""
    for v in variables:
        v.zero_grad()

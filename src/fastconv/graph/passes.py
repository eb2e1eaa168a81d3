"""Rewrite passes over a plan's steps. A rewrite is valid only when the
fused result equals the unfused steps bit for bit (tests compare them).

- ``Conv2D(activation="relu")`` followed by ``MaxPooling2D``, or
  ``Conv1D(activation="relu")`` followed by ``MaxPooling1D`` (both
  channels_last, the convolution without groups or an activity
  regularizer) becomes one step when the pool is the only reader of the
  convolution's output and that output is not a model output:
  ``conv2d_max_pool2d`` and its gradient (on a height-1 view for a
  sequence) never write the convolution's output (or its gradient) to
  memory. Both layers compute on the 2-D kernels apart too
  (``fastconv.ops.spatial``), so the fused step gives their very bits.

(The loss + softmax/sigmoid fusion is the trainer's: it needs the loss.)
"""

from __future__ import annotations

from typing import Any

from fastconv.graph.node import SINGLE


def runs_as(layer: Any, cls: type) -> bool:
    """Whether ``layer`` computes exactly as ``cls`` does: an instance whose
    forward and backward passes are cls's own (a subclass or an instance
    overriding them must not be replaced by a fused kernel call)."""
    return (isinstance(layer, cls) and type(layer).forward is cls.forward
            and type(layer).backward is cls.backward
            and "forward" not in vars(layer) and "backward" not in vars(layer))


def conv_pool_fusable(conv: Any, pool: Any) -> bool:
    """Whether the kernels can run ``conv`` then ``pool`` as one call."""
    from fastconv.layers import Conv1D, Conv2D, MaxPooling1D, MaxPooling2D

    return (any(runs_as(conv, c) and runs_as(pool, p)
                for c, p in ((Conv2D, MaxPooling2D), (Conv1D, MaxPooling1D)))
            and conv.groups == 1 and conv._fused_relu() and conv.activity_regularizer is None
            and conv.data_format == pool.data_format == "channels_last")


class ConvMaxPool:
    """A Conv1D/Conv2D and the max pooling reading its output, as one operation."""

    def __init__(self, conv: Any, pool: Any) -> None:
        self.conv, self.pool = conv, pool
        self.name = f"{conv.name}+{pool.name}"

    @property
    def trainable_weights(self) -> list:
        return self.conv.trainable_weights

    def forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        return self.conv.forward_max_pooled(x, self.pool, training)

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> Any:
        return self.conv.backward_max_pooled(ctx, dy, self.pool, need_dx)


def fuse_steps(steps: list, output_slots: list[int]) -> list:
    """The steps with each fusable conv + pool pair replaced by one step, at
    the pool's place (after the producers of the conv's input, before the
    readers of the pool's output)."""
    from fastconv.graph.executor import Step

    readers: dict[int, int] = {}
    for step in steps:
        for ref in step.in_refs:
            if type(ref) is int:
                readers[ref] = readers.get(ref, 0) + 1
    outputs = set(output_slots)
    producer = {s: i for i, step in enumerate(steps) for s in step.out_slots}
    fused_at: dict[int, Any] = {}
    absorbed: set[int] = set()
    for j, pool_step in enumerate(steps):
        if not (len(pool_step.layers) == 1 and pool_step.structure == SINGLE
                and type(pool_step.in_refs[0]) is int):
            continue
        s = pool_step.in_refs[0]
        i = producer.get(s)
        if i is None or readers.get(s) != 1 or s in outputs:
            continue
        conv_step = steps[i]
        if (len(conv_step.layers) == 1 and conv_step.output_structure == SINGLE
                and conv_step.training == pool_step.training
                and conv_pool_fusable(conv_step.layers[0], pool_step.layers[0])):
            conv, pool = conv_step.layers[0], pool_step.layers[0]
            fused_at[j] = Step(ConvMaxPool(conv, pool), (conv, pool), conv_step.in_refs,
                               conv_step.structure, pool_step.out_slots, SINGLE,
                               pool_step.training)
            absorbed.add(i)
    return [fused_at.get(j, step) for j, step in enumerate(steps) if j not in absorbed]

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

- A linear Conv (any rank, groups), DepthwiseConv, SeparableConv or Dense
  followed by the BatchNormalization of its channels, when the normalization
  is the only reader of that output and it is not a model output, becomes
  one ``FoldedBatchNorm`` step. In training, and whenever the pass is
  recorded for a gradient, it runs the two layers one after the other, so
  its bits are theirs. At inference (``predict``, a call without a tape) the
  normalization's affine map y = a * z + b is folded into the layer's
  weights (kernel * a, bias * a + b) and one convolution computes both: the
  one rewrite that is exact only up to rounding (the scaled weights are
  rounded once), as every framework's inference folding is.

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


def batch_norm_foldable(layer: Any, bn: Any) -> bool:
    """Whether ``bn`` normalizes the output channels of ``layer``, a linear
    layer that can compute its output scaled and shifted per channel."""
    from fastconv.layers import BatchNormalization, Dense
    from fastconv.layers.convolutional import (
        BaseConv,
        BaseDepthwiseConv,
        BaseSeparableConv,
    )

    if not runs_as(bn, BatchNormalization) or getattr(layer, "activity_regularizer", 1):
        return False
    if runs_as(layer, Dense):
        channel = -1
    elif any(runs_as(layer, cls) for cls in (BaseConv, BaseDepthwiseConv, BaseSeparableConv)):
        channel = layer.channel_axis
    else:
        return False
    if layer.activation.name != "linear" or not bn.built or layer.input_shape is None:
        return False
    ndim = len(layer.input_shape)
    return bn.axis % ndim == channel % ndim


class FoldedBatchNorm:
    """A linear layer and the BatchNormalization of its output, as one step."""

    def __init__(self, layer: Any, bn: Any) -> None:
        self.layer, self.bn = layer, bn
        self.name = f"{layer.name}+{bn.name}"

    @property
    def trainable_weights(self) -> list:
        return self.layer.trainable_weights + self.bn.trainable_weights

    def forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        z, layer_ctx = self.layer.forward(x, training)
        y, bn_ctx = self.bn.forward(z, training)
        return y, (layer_ctx, bn_ctx)

    def forward_folded(self, x: Any) -> Any:
        """The inference pass, the normalization folded into the layer's weights."""
        return self.layer.forward_scaled(x, *self.bn.inference_affine())

    def folds(self, training: bool) -> bool:
        """Whether a pass in this mode normalizes with the moving statistics."""
        return not (training and self.bn.trainable)

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> Any:
        layer_ctx, bn_ctx = ctx
        dz = self.bn.backward(bn_ctx, dy, need_dx=True)
        return self.layer.backward(layer_ctx, dz, need_dx)


def fold_batch_norm(steps: list, output_slots: list[int]) -> list:
    """The steps with each foldable layer + BatchNormalization pair replaced
    by one FoldedBatchNorm step, at the normalization's place."""
    from fastconv.graph.executor import Step

    return _pair_steps(steps, output_slots, batch_norm_foldable,
                       lambda first, second: FoldedBatchNorm(first, second), Step)


def _pair_steps(steps: list, output_slots: list[int], pairable: Any, make: Any,
                step_class: type) -> list:
    """The steps with every pair (first, second) of single-layer steps that
    ``pairable`` accepts, second the only reader of first's output (not a
    model output), replaced by one step running ``make(first, second)``."""
    readers: dict[int, int] = {}
    for step in steps:
        for ref in step.in_refs:
            if type(ref) is int:
                readers[ref] = readers.get(ref, 0) + 1
    outputs = set(output_slots)
    producer = {s: i for i, step in enumerate(steps) for s in step.out_slots}
    fused_at: dict[int, Any] = {}
    absorbed: set[int] = set()
    for j, second_step in enumerate(steps):
        if not (len(second_step.layers) == 1 and second_step.structure == SINGLE
                and type(second_step.in_refs[0]) is int):
            continue
        s = second_step.in_refs[0]
        i = producer.get(s)
        if i is None or i in absorbed or i in fused_at or readers.get(s) != 1 or s in outputs:
            continue
        first_step = steps[i]
        if (len(first_step.layers) == 1 and first_step.output_structure == SINGLE
                and first_step.training == second_step.training
                and pairable(first_step.layers[0], second_step.layers[0])):
            first, second = first_step.layers[0], second_step.layers[0]
            fused_at[j] = step_class(make(first, second), (first, second), first_step.in_refs,
                                     first_step.structure, second_step.out_slots, SINGLE,
                                     second_step.training)
            absorbed.add(i)
    return [fused_at.get(j, step) for j, step in enumerate(steps) if j not in absorbed]


def fuse_steps(steps: list, output_slots: list[int]) -> list:
    """The steps with each fusable conv + pool pair replaced by one step, at
    the pool's place (after the producers of the conv's input, before the
    readers of the pool's output), then each foldable layer +
    BatchNormalization pair."""
    from fastconv.graph.executor import Step

    steps = _pair_steps(steps, output_slots, conv_pool_fusable, ConvMaxPool, Step)
    return fold_batch_norm(steps, output_slots)

"""``model.profile(x, y)``: where a training step's time goes, layer by layer.

Each layer's forward and backward pass is timed inside real training steps
(best of ``repeat``), as the model runs them: a Conv2D and the MaxPooling2D
it feeds share one fused call each way, timed in the convolution's row. Each
row also counts its FLOPs (2 per multiply-add: convolutions and dense layers;
the backward pass counts the input gradient only where the model computes
it), so the table shows GFLOP/s next to the time.
"""

from __future__ import annotations

import math
from typing import Any




def layer_flops(layer: Any, batch: int, need_dx: bool) -> tuple[float, float]:
    """(forward, backward) FLOPs of one layer for ``batch`` samples: the
    layer's own count (``forward_flops``; 0 for layers that do no
    multiply-adds), the backward twice that with the input gradient and once
    without."""
    count = getattr(layer, "forward_flops", None)
    forward = float(count(batch)) if callable(count) else 0.0
    return forward, forward * (2 if need_dx else 1)


def profile_model(model: Any, x: Any, y: Any, repeat: int = 5) -> list[dict]:
    """Per-layer forward/backward times (ms, best of ``repeat`` steps) and FLOPs
    of training steps on (x, y). The model is left as it was: the weights are
    not updated, and what the training passes change on their way (moving
    statistics, the global random generator) is put back."""
    from fastconv.graph.executor import zero_gradients
    from fastconv.runtime import random as _random

    state = [(w, w.value.copy()) for w in model.non_trainable_weights]
    rng_state = _random.generator().bit_generator.state
    try:
        return _profile_steps(model, x, y, repeat, zero_gradients)
    finally:
        for w, value in state:
            w.value[...] = value
        _random.generator().bit_generator.state = rng_state


def _profile_steps(model: Any, x: Any, y: Any, repeat: int, zero_gradients: Any) -> list[dict]:
    arrays, structure = model._flat_inputs(x)
    plan = model._plan_for(arrays, structure, True)
    targets = model._targets(y, len(plan.output_slots))
    n_steps = len(plan.steps)
    best_f = [math.inf] * n_steps
    best_b = [math.inf] * n_steps
    variables = model.weights
    for _ in range(repeat + 1):  # the first step warms caches and allocators up
        forward: list[float] = []
        outputs, tape = plan.forward(arrays, True, record=True, timings=forward)
        d_outputs, preactivation = model._output_gradients(plan, targets, outputs)
        zero_gradients(variables)
        backward: list[float] = []
        plan.backward(tape, d_outputs, preactivation=preactivation, timings=backward)
        backward.reverse()
        best_f = [min(a, b) for a, b in zip(best_f, forward)]
        best_b = [min(a, b) for a, b in zip(best_b, backward)]
    zero_gradients(variables)
    need_dx, _ = plan._needs(False)
    batch = len(arrays[0])
    rows = []
    for i, step in enumerate(plan.steps):
        # A fused pair's times are the first layer's; the second one's row
        # names it and shows no time of its own.
        for j, layer in enumerate(step.layers):
            flops_f, flops_b = layer_flops(layer, batch, need_dx=need_dx[i])
            fused_into = step.layers[0].name if j > 0 else None
            rows.append({"layer": layer.name, "type": type(layer).__name__,
                         "output_shape": getattr(layer, "output_shape", None),
                         "forward_ms": 0.0 if fused_into else best_f[i] * 1e3,
                         "backward_ms": 0.0 if fused_into else best_b[i] * 1e3,
                         "forward_gflop": flops_f / 1e9, "backward_gflop": flops_b / 1e9,
                         "fused_into": fused_into})
    return rows


def format_profile(rows: list[dict]) -> str:
    head = (f"{'layer (type)':<32}{'forward ms':>11}{'GFLOP/s':>9}{'backward ms':>13}"
            f"{'GFLOP/s':>9}")
    lines = [head, "-" * len(head)]

    def rate(gflop: float, ms: float) -> str:
        return f"{gflop / (ms / 1e3):9.1f}" if gflop else f"{'-':>9}"

    for r in rows:
        name = f"{r['layer']} ({r['type']})"
        if r["fused_into"]:  # timed in that layer's row
            lines.append(f"{name:<32}{'in ' + r['fused_into']:>11}{'-':>9}"
                         f"{'in ' + r['fused_into']:>13}{'-':>9}")
            continue
        lines.append(f"{name:<32}{r['forward_ms']:11.3f}{rate(r['forward_gflop'], r['forward_ms'])}"
                     f"{r['backward_ms']:13.3f}{rate(r['backward_gflop'], r['backward_ms'])}")
    total_f = sum(r["forward_ms"] for r in rows)
    total_b = sum(r["backward_ms"] for r in rows)
    gflop = sum(r["forward_gflop"] + r["backward_gflop"] for r in rows)
    lines.append("-" * len(head))
    lines.append(f"{'total':<32}{total_f:11.3f}{'':>9}{total_b:13.3f}{'':>9}"
                 f"   ({gflop / ((total_f + total_b) / 1e3):.1f} GFLOP/s over both passes)")
    return "\n".join(lines)

"""``python -m fastconv demo``: the kernels against the NumPy reference.

It runs the first layers of the seed CNN (conv 3x3 -> max pool ->
conv 3x3 -> max pool, batch 64, 28x28x1 input) forward and backward on random
data with ``fastconv.ops`` and with the NumPy reference, checks that both
agree and prints the time, GFLOP/s and speed-up of each step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

import fastconv
from fastconv import ops, reference


def _best_time(fn: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` timed calls after one warm-up call, in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _demo_steps(batch: int, rng: np.random.Generator) -> list[tuple[str, float, Callable]]:
    """(name, GFLOP, call(backend)) for each step of the demo network."""
    x1 = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    w1 = (rng.standard_normal((3, 3, 1, 32)) * 0.3).astype(np.float32)
    b1 = np.zeros(32, np.float32)
    y1 = ops.conv2d(x1, w1, b1)
    p1, a1 = ops.max_pool2d(y1, 2)
    w2 = (rng.standard_normal((3, 3, 32, 64)) * 0.06).astype(np.float32)
    b2 = np.zeros(64, np.float32)
    y2 = ops.conv2d(p1, w2, b2)
    p2, a2 = ops.max_pool2d(y2, 2)
    dp2 = rng.standard_normal(p2.shape).astype(np.float32)
    dy2 = ops.max_pool2d_backward(dp2, a2, y2.shape)
    dp1 = ops.conv2d_backward(dy2, p1, w2)[0]

    def conv_flops(x: np.ndarray, w: np.ndarray, y: np.ndarray) -> float:
        return 2.0 * y.size * w.shape[0] * w.shape[1] * x.shape[3] / 1e9

    f1, f2 = conv_flops(x1, w1, y1), conv_flops(p1, w2, y2)
    return [
        ("conv 28x28x1->32 forward", f1, lambda m: m.conv2d(x1, w1, b1)),
        ("max pool 2x2 forward", 0.0, lambda m: m.max_pool2d(y1, 2)),
        ("conv 13x13x32->64 forward", f2, lambda m: m.conv2d(p1, w2, b2)),
        ("conv 13x13x32->64 backward", 2 * f2, lambda m: m.conv2d_backward(dy2, p1, w2)),
        ("max pool 2x2 backward", 0.0, lambda m: m.max_pool2d_backward(dp1, a1, y1.shape)),
        ("conv 28x28x1->32 backward (dw, db)", f1,
         lambda m: m.conv2d_backward(ops.max_pool2d_backward(dp1, a1, y1.shape), x1, w1,
                                     need_dx=False)),
    ]


def _max_difference(a: object, b: object) -> float:
    if isinstance(a, tuple):
        return max(_max_difference(p, q) for p, q in zip(a, b) if p is not None)
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def demo(batch: int, repeat: int) -> int:
    rng = np.random.default_rng(0)
    print(
        f"fastconv {fastconv.__version__}: {fastconv.get_num_threads()} threads, "
        f"OpenMP {'on' if fastconv.openmp_enabled() else 'off'}, SIMD {fastconv.get_isa()}; "
        f"batch {batch}, float32, best of {repeat}"
    )
    header = f"{'step':<36}{'fastconv ms':>12}{'GFLOP/s':>9}{'reference ms':>14}{'speed-up':>10}{'max diff':>10}"
    print(header)
    print("-" * len(header))
    total_fast = total_ref = 0.0
    for name, gflop, call in _demo_steps(batch, rng):
        diff = _max_difference(call(ops), call(reference))
        t_fast = _best_time(lambda: call(ops), repeat)
        t_ref = _best_time(lambda: call(reference), max(1, repeat // 3))
        total_fast += t_fast
        total_ref += t_ref
        rate = f"{gflop / t_fast:9.1f}" if gflop else f"{'-':>9}"
        print(f"{name:<36}{t_fast * 1e3:12.2f}{rate}{t_ref * 1e3:14.2f}"
              f"{t_ref / t_fast:9.1f}x{diff:10.1e}")
        if diff > 1e-3:
            print(f"error: fastconv and the reference disagree by {diff:.2e}", file=sys.stderr)
            return 1
    print("-" * len(header))
    print(f"{'total':<36}{total_fast * 1e3:12.2f}{'':>9}{total_ref * 1e3:14.2f}"
          f"{total_ref / total_fast:9.1f}x")
    return 0

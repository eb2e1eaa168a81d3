"""Memory speed of the resampling ops, on named shapes.

Run from the repository root (see benchmarks/README.md):

    PYTHONPATH=src python benchmarks/resample_ratios.py [--threads 1 2] [--repeat 30]

For each shape (float32, channels last) and op, the best of ``--repeat``
timed calls (inputs built outside the timed call) gives:

- GB/s: the bytes the op must move (its inputs read once, its outputs
  written once) per second;
- x copyto: its time over that of ``np.copyto`` into a preallocated array
  of the size of its output, or of its input where that is larger (the
  floor of an op that reads its input and writes its output once); the
  memory-only ops (zero padding, cropping, nearest upsampling) aim at
  <= 1.2;
- x torch: its time over PyTorch's for the same op (channels last memory
  format), when PyTorch is installed, at the same thread count.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import fastconv
from fastconv import ops
from fastconv.runtime import allocator

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

# name: (N, *spatial, C)
SHAPES = {
    "cnn_56x56x64_n32": (32, 56, 56, 64),
    "cnn_14x14x256_n64": (64, 14, 14, 256),
    "mnist_28x28x1_n256": (256, 28, 28, 1),
    "seq_1000x32_n64": (64, 1000, 32),
    "vol_16x32x32x16_n8": (8, 16, 32, 32, 16),
}


def best_times(calls: list[Callable[[], object]], repeat: int) -> list[float]:
    """The best time of each call, the calls taking turns (so that a change
    of the host's load over the run touches them alike)."""
    for call in calls:
        call()
    best = [float("inf")] * len(calls)
    for _ in range(repeat):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def copyto(shape: tuple[int, ...]) -> Callable[[], None]:
    src = np.ones(shape, np.float32)
    dst = np.empty(shape, np.float32)
    return lambda: np.copyto(dst, src)


def torch_layout(x: np.ndarray):
    """x as a torch tensor of the channels-first shape, channels-last in memory."""
    return torch.from_numpy(x).movedim(-1, 1)


def cases(shape: tuple[int, ...]) -> list[tuple[str, Callable, Callable | None, int, tuple]]:
    """(op, fastconv call, torch call or None, bytes moved, shape of the larger
    of the op's input and output)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    rank = x.ndim - 2
    size = 4 * x.size
    n, c = shape[0], shape[-1]
    pooled = rng.standard_normal((n, c), dtype=np.float32)
    argmax = ops.global_max_pool(x)[1]
    up_shape = (n, *(2 * d for d in shape[1:-1]), c)
    dy_up = rng.standard_normal(up_shape, dtype=np.float32)
    pad_shape = (n, *(d + 2 for d in shape[1:-1]), c)
    crop_shape = (n, *(d - 2 for d in shape[1:-1]), c)
    padded = ops.zero_pad(x, 1)
    t = torch_layout(x) if torch is not None else None
    out = [
        ("global_avg_pool", lambda: ops.global_avg_pool(x),
         (lambda: t.mean(dim=tuple(range(2, 2 + rank)))) if t is not None else None,
         size + 4 * n * c, shape),
        ("global_avg_pool_backward", lambda: ops.global_avg_pool_backward(pooled, shape), None,
         size + 4 * n * c, shape),
        ("global_max_pool", lambda: ops.global_max_pool(x),
         (lambda: t.amax(dim=tuple(range(2, 2 + rank)))) if t is not None else None,
         size + 8 * n * c, shape),
        ("global_max_pool_backward", lambda: ops.global_max_pool_backward(pooled, argmax, shape),
         None, size + 8 * n * c, shape),
        ("zero_pad", lambda: ops.zero_pad(x, 1),
         (lambda: F.pad(t, (1, 1) * rank)) if t is not None else None,
         size + 4 * int(np.prod(pad_shape)), pad_shape),
        ("zero_pad_backward", lambda: ops.zero_pad_backward(padded, 1), None, 2 * size, shape),
        ("crop", lambda: ops.crop(x, 1), None, 2 * 4 * int(np.prod(crop_shape)), shape),
        ("upsample_nearest", lambda: ops.upsample(x, 2),
         (lambda: F.interpolate(t, scale_factor=2, mode="nearest")) if t is not None else None,
         size * (1 + 2**rank), up_shape),
        ("upsample_nearest_backward", lambda: ops.upsample_backward(dy_up, shape, 2), None,
         size * (1 + 2**rank), up_shape),
    ]
    if rank == 2:
        out += [
            ("upsample_bilinear", lambda: ops.upsample(x, 2, "bilinear"),
             (lambda: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False))
             if t is not None else None, size * 5, up_shape),
            ("upsample_bilinear_backward",
             lambda: ops.upsample_backward(dy_up, shape, 2, "bilinear"), None, size * 5,
             up_shape),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    args = parser.parse_args()
    print(f"fastconv {fastconv.get_isa()}, float32; best of {args.repeat}")
    print(f"{'shape':22s} {'op':27s} {'thr':>3s} {'ms':>8s} {'GB/s':>6s} "
          f"{'x copyto':>8s} {'x torch':>7s}")
    with allocator.retained_heap():
        for threads in args.threads:
            run(threads, args)


def run(threads: int, args: argparse.Namespace) -> None:
    """One line per (shape, op) at ``threads`` threads."""
    fastconv.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    for name in args.shapes:
        for op, call, torch_call, nbytes, floor_shape in cases(SHAPES[name]):
            calls = [call, copyto(floor_shape)] + ([torch_call] if torch_call else [])
            seconds, floor, *theirs = best_times(calls, args.repeat)
            vs_torch = f"{seconds / theirs[0]:7.2f}" if theirs else f"{'':7s}"
            print(f"{name:22s} {op:27s} {threads:3d} {seconds * 1e3:8.3f} "
                  f"{nbytes / seconds / 1e9:6.1f} {seconds / floor:8.2f} {vs_torch}")

if __name__ == "__main__":
    main()

"""``python -m fastconv bench``: the seed CNN, layer by layer and as a whole
training step, on fastconv's kernels, on the NumPy reference (the same layers
run through ``fastconv.layers.use_backend(fastconv.reference)``) and on
PyTorch when it is installed, measured side by side in one run.

Times are the best of several runs; GFLOP/s count 2 FLOPs per multiply-add
(the backward pass counts dx only where the model needs it); "% peak" is
against this machine's float32 FMA peak, measured here by a register-only
multiply-add loop on the same number of threads.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable

import numpy as np

import fastconv
from fastconv import reference
from fastconv._kernels import _runtime
from fastconv.runtime.allocator import retained_heap
from fastconv.cli.train import seed_cnn
from fastconv.layers import use_backend
from fastconv.training.profile import profile_model
from fastconv.training.trainer import with_training_environment


def _best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _data(batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((batch, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, batch)


def _fastconv_model():
    fastconv.utils.set_random_seed(0)
    model = seed_cnn()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    return model


class _Torch:
    """The same network in PyTorch (NCHW), for per-layer and whole-step timings."""

    def __init__(self, threads: int) -> None:
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        nn = torch.nn
        self.layers = [
            nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU()), nn.MaxPool2d(2),
            nn.Sequential(nn.Conv2d(32, 64, 3), nn.ReLU()), nn.MaxPool2d(2),
            nn.Sequential(nn.Conv2d(64, 64, 3), nn.ReLU()), nn.Flatten(),
            nn.Sequential(nn.Linear(576, 64), nn.ReLU()), nn.Linear(64, 10),
        ]
        self.model = nn.Sequential(*self.layers)
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=1e-3, alpha=0.9,
                                             eps=1e-7)
        self.loss = nn.CrossEntropyLoss()

    def step_time(self, x: np.ndarray, y: np.ndarray, repeat: int) -> float:
        torch = self.torch
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        yt = torch.from_numpy(y.astype(np.int64))

        def step() -> None:
            self.optimizer.zero_grad()
            self.loss(self.model(xt), yt).backward()
            self.optimizer.step()

        return _best(step, repeat)

    def layer_times(self, x: np.ndarray, repeat: int) -> list[tuple[float, float]]:
        """(forward, backward) seconds of each layer on its real input."""
        torch = self.torch
        h = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        for _ in range(3):  # oneDNN builds its kernels on first use
            self.model(h).sum().backward()
        times = []
        for i, layer in enumerate(self.layers):
            inp = h.detach().requires_grad_(i > 0)
            out = layer(inp)
            dy = torch.ones_like(out)
            forward = _best(lambda: layer(inp), repeat)
            backward = math.inf
            for _ in range(repeat + 1):
                out = layer(inp)
                start = time.perf_counter()
                out.backward(dy)
                backward = min(backward, time.perf_counter() - start)
            times.append((forward, backward))
            h = out.detach()
        return times


def _residual_fastconv():
    """A residual CNN: a 3x3 conv, a block of two 3x3 convs with an Add skip,
    max pooling and a softmax classifier (a functional graph)."""
    from fastconv import layers

    fastconv.utils.set_random_seed(0)
    inputs = fastconv.Input((28, 28, 1))
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    r = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    r = layers.Conv2D(32, 3, padding="same")(r)
    h = layers.ReLU()(layers.Add()([h, r]))
    h = layers.Flatten()(layers.MaxPooling2D(2)(h))
    model = fastconv.Model(inputs, layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    return model


def _residual_torch_step(threads: int, x: np.ndarray, y: np.ndarray, repeat: int) -> float:
    import torch

    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 32, 3, padding=1)
            self.a = nn.Conv2d(32, 32, 3, padding=1)
            self.b = nn.Conv2d(32, 32, 3, padding=1)
            self.head = nn.Linear(32 * 14 * 14, 10)

        def forward(self, t):
            h = torch.relu(self.stem(t))
            h = torch.relu(h + self.b(torch.relu(self.a(h))))
            return self.head(torch.flatten(nn.functional.max_pool2d(h, 2), 1))

    torch.set_num_threads(threads)
    model = Residual()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss = nn.CrossEntropyLoss()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y.astype(np.int64))

    def step() -> None:
        optimizer.zero_grad()
        loss(model(xt), yt).backward()
        optimizer.step()

    return _best(step, repeat)


@with_training_environment
def _residual_fastconv_step(x: np.ndarray, y: np.ndarray, repeat: int) -> float:
    model = _residual_fastconv()
    return _best(lambda: model.train_on_batch(x, y), repeat)


@with_training_environment
def _fastconv_times(model, x: np.ndarray, y: np.ndarray, repeat: int, threads: int) -> tuple:
    """Per-layer rows on fastconv and on the reference, then the step times on
    fastconv, on the reference and on fastconv with one thread."""
    rows = profile_model(model, x, y, repeat)
    with use_backend(reference):
        ref_rows = profile_model(model, x, y, max(1, repeat // 5))
        ref_step = _best(lambda: model.train_on_batch(x, y), max(1, repeat // 5))
    step = _best(lambda: model.train_on_batch(x, y), repeat)
    fastconv.set_num_threads(1)
    try:
        step_1 = _best(lambda: model.train_on_batch(x, y), repeat)
    finally:
        fastconv.set_num_threads(threads)
    return rows, ref_rows, step, ref_step, step_1


def bench(batch: int, repeat: int) -> int:
    threads = fastconv.get_num_threads()
    isa = fastconv.get_isa()
    peak = _runtime.fma_peak_gflops(isa, threads)
    peak_1 = _runtime.fma_peak_gflops(isa, 1) if threads > 1 else peak
    try:
        torch_net = _Torch(threads)
        torch_version = torch_net.torch.__version__
    except ImportError:
        torch_net, torch_version = None, "not installed"
    print(f"fastconv {fastconv.__version__} on {_cpu_name()}: {threads} threads, SIMD {isa}, "
          f"OpenMP {'on' if fastconv.openmp_enabled() else 'off'}; float32 FMA peak "
          f"{peak:.0f} GFLOP/s ({peak_1:.0f} on one thread); PyTorch {torch_version}")
    print(f"seed CNN (Conv 32 -> pool -> Conv 64 -> pool -> Conv 64 -> Dense 64 -> Dense 10), "
          f"batch {batch}, best of {repeat}\n")

    x, y = _data(batch)
    model = _fastconv_model()
    # PyTorch first, before fastconv's training settings ever touch the
    # process's allocator (see fastconv.runtime.allocator).
    torch_times = torch_net.layer_times(x, repeat) if torch_net else None
    torch_step = torch_net.step_time(x, y, repeat) if torch_net else None
    torch_residual = _residual_torch_step(threads, x, y, repeat) if torch_net else None
    rows, ref_rows, step, ref_step, step_1 = _fastconv_times(model, x, y, repeat, threads)
    residual = _residual_fastconv_step(x, y, repeat)

    head = (f"{'layer':<32}{'pass':<9}{'ms':>8}{'GFLOP/s':>9}{'% peak':>8}"
            f"{'ref ms':>9}{'x ref':>7}{'torch ms':>10}{'x torch':>8}")
    print(head)
    print("-" * len(head))
    for i, (r, rr) in enumerate(zip(rows, ref_rows)):
        if r["type"] == "Flatten":
            continue
        label = f"{r['layer']} {tuple(r['output_shape'][1:])}"
        if r["fused_into"]:
            print(f"{label:<32}{'(in ' + r['fused_into'] + ' rows)':>39}")
            continue
        # A convolution whose max pooling runs in the same kernel calls: its
        # rows time both layers, so the reference's and PyTorch's add both.
        pooled = i + 1 < len(rows) and rows[i + 1]["fused_into"] == r["layer"]
        for p, name in ((0, "forward"), (1, "backward")):
            ms, gflop = r[f"{name}_ms"], r[f"{name}_gflop"]
            ref_ms = rr[f"{name}_ms"] + (ref_rows[i + 1][f"{name}_ms"] if pooled else 0.0)
            rate = f"{gflop / ms * 1e3:9.1f}{100 * gflop / ms * 1e3 / peak:7.0f}%" if gflop else (
                f"{'-':>9}{'-':>8}")
            torch_part = ""
            if torch_times:
                t_ms = (torch_times[i][p] + (torch_times[i + 1][p] if pooled else 0.0)) * 1e3
                torch_part = f"{t_ms:10.3f}{t_ms / ms:7.1f}x"
            pass_name = ("fwd+pool" if p == 0 else "bwd+pool") if pooled else name
            print(f"{label if p == 0 else '':<32}{pass_name:<9}{ms:8.3f}{rate}{ref_ms:9.2f}"
                  f"{ref_ms / ms:6.1f}x{torch_part}")

    step_gflop = sum(r["forward_gflop"] + r["backward_gflop"] for r in rows)
    print("-" * len(head))
    torch_part = ""
    if torch_net:
        torch_part = f"{torch_step * 1e3:10.3f}{torch_step / step:7.1f}x"
    print(f"{'training step (fwd + bwd + rmsprop)':<41}{step * 1e3:8.3f}"
          f"{step_gflop / step:9.1f}{100 * step_gflop / step / peak:7.0f}%"
          f"{ref_step * 1e3:9.2f}{ref_step / step:6.1f}x{torch_part}")
    print(f"\ntraining step on 1 thread: {step_1 * 1e3:.3f} ms; {threads} threads are "
          f"{step_1 / step:.2f}x faster" if threads > 1 else "")
    if torch_net:
        # PyTorch also gains from keeping freed memory in the heap: time it
        # again under the allocator settings fastconv's training uses.
        with retained_heap():
            torch_tuned = torch_net.step_time(x, y, repeat)
        print(f"fastconv's step takes {step / torch_step:.2f}x PyTorch's time "
              f"(x torch: PyTorch's time / fastconv's); with the allocator settings of "
              f"fastconv's fit PyTorch takes {torch_tuned * 1e3:.3f} ms "
              f"({step / torch_tuned:.2f}x)")
    line = (f"residual CNN (Conv 32, then two 3x3 Conv 32 with an Add skip, pool, Dense 10), "
            f"training step: fastconv {residual * 1e3:.3f} ms")
    if torch_net:
        line += (f", PyTorch {torch_residual * 1e3:.3f} ms: fastconv takes "
                 f"{residual / torch_residual:.2f}x PyTorch's time (seed CNN: "
                 f"{step / torch_step:.2f}x)")
    print(line)
    return 0

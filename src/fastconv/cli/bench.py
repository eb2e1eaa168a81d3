"""``python -m fastconv bench``: the seed CNN, layer by layer and as a whole
training step, on fastconv's kernels, on the NumPy reference (the same layers
run through ``fastconv.layers.use_backend(fastconv.reference)``) and on
PyTorch when it is installed, measured side by side in one run; then
inference (``fastconv.cli.bench_inference``: predict and one-image latency
against PyTorch and ONNX Runtime). With ``--family``, then the convolution family's named shapes
(``fastconv.cli.bench_family``) op by op against PyTorch (and with
``--reference`` the reference).

Times are the best of several runs; GFLOP/s count 2 FLOPs per multiply-add
(the backward pass counts dx only where the model needs it) of each layer's
full work, though a convolution fused with its max pooling computes only
the outputs the pooling reads (the table says how much, and the rate of the
arithmetic done); "% peak" is
against this machine's float32 FMA peak, measured here by a register-only
multiply-add loop on the same number of threads; "% triad" against its
memory bandwidth, measured by the STREAM triad on the same number of threads
(``_runtime.triad_gbps``: 3 arrays x 4 bytes per element).
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
from fastconv.cli import bench_family, bench_inference, bench_load, bench_models
from fastconv.cli.train import seed_cnn
from fastconv.layers import use_backend
from fastconv.runtime.allocator import retained_heap
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

    def step_function(self, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
        """One training step on ``(x, y)``, as a function of nothing."""
        torch = self.torch
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        yt = torch.from_numpy(y.astype(np.int64))

        def step() -> None:
            self.optimizer.zero_grad()
            self.loss(self.model(xt), yt).backward()
            self.optimizer.step()

        return step

    def step_time(self, x: np.ndarray, y: np.ndarray, repeat: int) -> float:
        return _best(self.step_function(x, y), repeat)

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
            forward = _best(lambda layer=layer, inp=inp: layer(inp), repeat)
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


def _read_share(conv_shape: tuple, pool) -> float:
    """The part of a convolution's output (N, *spatial, C) that the windows
    of its max pooling read: all the fused kernels compute (11 rows pooled
    by 2 read 10). "same" pooling reads to the far edge."""
    share = 1.0
    if pool.padding == "valid":
        for size, k, s in zip(conv_shape[1:-1], pool.pool_size, pool.strides):
            share *= min(size, (size - k) // s * s + k) / size
    return share


def _rate(work: tuple[float, float] | None, index: int, seconds: float, limit: float) -> str:
    """The rate of one pass and its % of the machine's limit, or dashes."""
    if not work:
        return f"{'-':>8}{'-':>8}"
    rate = work[index] / seconds
    return f"{rate:8.1f}{100 * rate / limit:7.0f}%"


def _family_rows(name: str, case: bench_family.Case, torch_on: bool, with_reference: bool,
                 repeat: int, budget: float, peak: float, triad: float) -> list[str]:
    """Forward and forward + backward rows of one case (then of its parts)."""
    rows = []
    for label, c in ((name, case), *((f"  {p} part", part) for p, part in case.parts.items())):
        fc_calls = c.calls("fastconv")
        torch_calls = c.calls("torch") if torch_on else None
        ref_calls = c.calls("reference") if with_reference else None
        for index, pass_name in enumerate(("fwd", "fwd+bwd")):
            calls = [fc_calls[index]] + ([torch_calls[index]] if torch_on else [])
            times = bench_family.best_times(calls, repeat, budget)
            ms = times[0] * 1e3
            line = f"{label if index == 0 else '':<43}{pass_name:<8}{ms:9.3f}"
            line += f"{times[1] * 1e3:10.3f}{ms / (times[1] * 1e3):9.2f}" if torch_on else (
                f"{'-':>10}{'-':>9}")
            line += _rate(c.gflop, index, times[0], peak) + _rate(c.gbytes, index, times[0], triad)
            if with_reference:
                (ref,) = bench_family.best_times([ref_calls[index]], max(1, repeat // 5), budget)
                line += f"{ref * 1e3:10.1f}{ref / times[0]:7.1f}x"
            rows.append(line)
    return rows


def family_table(threads: int, peak: float, triad: float, repeat: int, budget: float = 2.0,
                 with_reference: bool = False, batch: int | None = None) -> None:
    """Print the convolution family table (see fastconv.cli.bench_family):
    fastconv and PyTorch timed in turn, best of up to ``repeat`` rounds or
    ``budget`` seconds per row; ``batch`` replaces every shape's own."""
    try:
        import torch

        torch.set_num_threads(threads)
        torch_on = True
    except ImportError:
        torch_on = False
    note = f", every shape at batch {batch} instead of its own" if batch else ""
    print(f"\nconvolution family at {threads} threads{note}: best of up to {repeat} runs "
          f"(or {budget:g} s) per row, fastconv and PyTorch in turn; fc/torch = fastconv's "
          f"time / PyTorch's; fwd+bwd = the forward call, then dx, dw and db; GB/s count "
          f"each array read or written once")
    head = (f"{'shape':<43}{'pass':<8}{'ms':>9}{'torch ms':>10}{'fc/torch':>9}"
            f"{'GFLOP/s':>8}{'% peak':>8}{'GB/s':>8}{'% triad':>8}")
    if with_reference:
        head += f"{'ref ms':>10}{'x ref':>8}"
    print(head)
    print("-" * len(head))
    for name in bench_family.CASES:
        case = bench_family.make_case(name, batch)
        for row in _family_rows(name, case, torch_on, with_reference, repeat, budget, peak,
                                triad):
            print(row)


def _models_section(batch: int, repeat: int, threads: int, torch_steps: dict | None) -> None:
    """The family's two end-to-end models: fastconv's training step against
    PyTorch's (``torch_steps``, timed at the start of the run)."""
    print(f"\nend-to-end models, training step (fwd + bwd + rmsprop), batch {batch}, "
          f"best of {repeat}:")
    for name, (title, _) in bench_models.MODELS.items():
        step = bench_models.fastconv_step_time(name, batch, repeat, _best)
        line = f"  {title}: fastconv {step * 1e3:.3f} ms"
        if torch_steps:
            with retained_heap():
                tuned = bench_models.torch_step_time(name, threads, batch, repeat, _best)
            line += (f", PyTorch {torch_steps[name] * 1e3:.3f} ms ({tuned * 1e3:.3f} ms with "
                     f"fastconv's allocator settings): fastconv takes "
                     f"{step / torch_steps[name]:.2f}x ({step / tuned:.2f}x) PyTorch's time")
        print(line)


def bench(batch: int, repeat: int, family: bool = False, with_reference: bool = False,
          family_batch: int | None = None, load: int = 0) -> int:
    threads = fastconv.get_num_threads()
    isa = fastconv.get_isa()
    peak = _runtime.fma_peak_gflops(isa, threads)
    peak_1 = _runtime.fma_peak_gflops(isa, 1) if threads > 1 else peak
    triad = _runtime.triad_gbps(threads)
    triad_1 = _runtime.triad_gbps(1) if threads > 1 else triad
    try:
        torch_net = _Torch(threads)
        torch_version = torch_net.torch.__version__
    except ImportError:
        torch_net, torch_version = None, "not installed"
    print(f"fastconv {fastconv.__version__} on {_cpu_name()}: {threads} threads, SIMD {isa}, "
          f"OpenMP {'on' if fastconv.openmp_enabled() else 'off'}; float32 FMA peak "
          f"{peak:.0f} GFLOP/s ({peak_1:.0f} on one thread); memory bandwidth (STREAM "
          f"triad) {triad:.1f} GB/s ({triad_1:.1f} on one thread); PyTorch {torch_version}")
    print(f"seed CNN (Conv 32 -> pool -> Conv 64 -> pool -> Conv 64 -> Dense 64 -> Dense 10), "
          f"batch {batch}, best of {repeat}\n")

    x, y = _data(batch)
    model = _fastconv_model()
    # PyTorch first, before fastconv's training settings ever touch the
    # process's allocator (see fastconv.runtime.allocator).
    torch_times = torch_net.layer_times(x, repeat) if torch_net else None
    torch_step = torch_net.step_time(x, y, repeat) if torch_net else None
    torch_residual = _residual_torch_step(threads, x, y, repeat) if torch_net else None
    torch_models = None
    if family and torch_net:
        torch_models = {name: bench_models.torch_step_time(name, threads, batch, repeat, _best)
                        for name in bench_models.MODELS}
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
    pooled_rows = [(r, _read_share(tuple(r["output_shape"]), model.get_layer(p["layer"])))
                   for r, p in zip(rows, rows[1:]) if p["fused_into"] == r["layer"]]
    cropped = [(r, share) for r, share in pooled_rows if share < 1]
    if cropped:
        # Rates count the layers' full FLOPs, the work PyTorch does; say
        # what the fused kernels leave out, and the rate of what they do.
        done = step_gflop - sum((1 - share) * (r["forward_gflop"] + r["backward_gflop"])
                                for r, share in cropped)
        names = ", ".join(f"{r['layer']} {share:.0%}" for r, share in cropped)
        print(f"GFLOP/s count each layer's full work; the fused kernels compute only the "
              f"part of a convolution's output that its pooling reads ({names}): the step's "
              f"arithmetic runs at {done / step:.1f} GFLOP/s, {100 * done / step / peak:.0f}% "
              f"of the peak")
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
    bench_inference.inference_table(threads, repeat)
    if family:
        family_table(threads, peak, triad, repeat, with_reference=with_reference,
                     batch=family_batch)
        _models_section(batch, repeat, threads, torch_models)
    if load:
        bench_load.load_table(load, batch, repeat, threads, x, y, model, torch_net)
    return 0

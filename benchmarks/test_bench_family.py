"""Timing of the convolution family (rank 1-3, causal, transposed, depthwise,
separable convolutions, global average and max pooling) on fastconv, on
fastconv.reference and on PyTorch when it is installed, at 1 and 2 threads.

Run from the repository root (see benchmarks/README.md):

    pytest benchmarks/test_bench_family.py --benchmark-only

The named shapes and the calls of each backend live in
``fastconv.cli.bench_family`` (``python -m fastconv bench --family`` prints
the same cases as a table); the backend and n_threads fixtures are in
``conftest.py``. Inputs are built outside the timed call. Each
shape is timed forward and forward + backward (the forward call, then dx,
dw and db). Each result stores in ``extra_info`` the thread count, the
backend, fastconv's SIMD level, and GFLOP/s (2 FLOPs per multiply-add; the
backward pass counts dx and dw, so forward + backward is 3 times the
forward's multiply-adds) or, for the memory-bound cases (depthwise
convolution, pooling), GB/s (10^9 bytes of inputs read plus outputs written,
each array counted once at its size, as the STREAM triad counts). The
separable convolution also stores its depthwise part's time and GB/s, timed
best of 5 in the same test.
"""

from __future__ import annotations

import pytest

import fastconv
from fastconv.cli.bench_family import CASES, SLOW_REFERENCE, best_times, make_case


def _calls(shape: str, backend: str):
    case = make_case(shape)
    return case, case.calls(backend)


def _time(benchmark, backend: str, shape: str, call) -> None:
    if backend == "reference" and shape in SLOW_REFERENCE:
        benchmark.pedantic(call, rounds=3)
    else:
        benchmark(call)


def _record(benchmark, backend: str, n: int, case, index: int) -> None:
    """index 0: the forward pass; 1: forward + backward."""
    benchmark.extra_info["backend"] = backend
    benchmark.extra_info["threads"] = n
    if backend == "fastconv":
        benchmark.extra_info["isa"] = fastconv.get_isa()
    if benchmark.stats is None:
        return
    seconds = benchmark.stats.stats.min
    if case.gflop:
        benchmark.extra_info["gflops"] = round(case.gflop[index] / seconds, 2)
    if case.gbytes:
        benchmark.extra_info["gbps"] = round(case.gbytes[index] / seconds, 2)
    for name, part in case.parts.items():
        (t,) = best_times([part.calls(backend)[index]], 5, 0.0)
        benchmark.extra_info[f"{name}_ms"] = round(t * 1e3, 3)
        benchmark.extra_info[f"{name}_gbps"] = round(part.gbytes[index] / t, 2)


@pytest.mark.parametrize("shape", CASES, ids=str)
def test_forward(benchmark, backend, n_threads, shape):
    case, (forward, _) = _calls(shape, backend)
    _time(benchmark, backend, shape, forward)
    _record(benchmark, backend, n_threads, case, 0)


@pytest.mark.parametrize("shape", CASES, ids=str)
def test_forward_backward(benchmark, backend, n_threads, shape):
    case, (_, step) = _calls(shape, backend)
    _time(benchmark, backend, shape, step)
    _record(benchmark, backend, n_threads, case, 1)

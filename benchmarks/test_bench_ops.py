"""Timing of fastconv.ops against fastconv.reference at the seed CNN's shapes.

Run from the repository root (see benchmarks/README.md):

    pytest benchmarks/ --benchmark-only

Inputs are built outside the timed call; each result stores its GFLOP/s in
``extra_info`` (convolutions count 2 FLOPs per multiply-add; the backward
pass computes dx and dw, twice the forward's work).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import ops, reference

BATCH = 64

# name: (H, W, C_in, C_out, kernel) of the seed CNN's convolutions.
CONV_SHAPES = {
    "conv1_28x28x1-32": (28, 28, 1, 32, 3),
    "conv2_13x13x32-64": (13, 13, 32, 64, 3),
    "conv3_5x5x64-64": (5, 5, 64, 64, 3),
}

# name: (H, W, C) of the seed CNN's max-pooling inputs.
POOL_SHAPES = {
    "pool1_26x26x32": (26, 26, 32),
    "pool2_11x11x64": (11, 11, 64),
}

BACKENDS = {"fastconv": ops, "reference": reference}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return BACKENDS[request.param]


def _conv_inputs(shape: tuple[int, ...]):
    h, w, c_in, c_out, k = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, h, w, c_in)).astype(np.float32)
    kernel = rng.standard_normal((k, k, c_in, c_out)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    y = ops.conv2d(x, kernel, bias)
    gflop = 2.0 * y.size * k * k * c_in / 1e9
    return x, kernel, bias, rng.standard_normal(y.shape).astype(np.float32), gflop


def _record(benchmark, gflop: float) -> None:
    benchmark.extra_info["threads"] = fastconv.get_num_threads()
    benchmark.extra_info["isa"] = fastconv.get_isa()
    if gflop and benchmark.stats is not None:
        benchmark.extra_info["gflops"] = round(gflop / benchmark.stats.stats.min, 2)


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
def test_conv2d_forward(benchmark, backend, shape):
    x, kernel, bias, _, gflop = _conv_inputs(CONV_SHAPES[shape])
    benchmark(backend.conv2d, x, kernel, bias)
    _record(benchmark, gflop)


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
def test_conv2d_backward(benchmark, backend, shape):
    x, kernel, _, dy, gflop = _conv_inputs(CONV_SHAPES[shape])
    benchmark(backend.conv2d_backward, dy, x, kernel)
    _record(benchmark, 2 * gflop)


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
def test_max_pool2d_forward(benchmark, backend, shape):
    x = np.random.default_rng(0).standard_normal((BATCH, *POOL_SHAPES[shape])).astype(np.float32)
    benchmark(backend.max_pool2d, x, 2)
    _record(benchmark, 0.0)


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
def test_max_pool2d_backward(benchmark, backend, shape):
    x = np.random.default_rng(0).standard_normal((BATCH, *POOL_SHAPES[shape])).astype(np.float32)
    y, argmax = ops.max_pool2d(x, 2)
    benchmark(backend.max_pool2d_backward, y, argmax, x.shape)
    _record(benchmark, 0.0)

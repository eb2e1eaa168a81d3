"""Timing of fastconv.ops against fastconv.reference (and PyTorch when it is
installed) on named layer shapes, at 1 and 2 threads.

Run from the repository root (see benchmarks/README.md):

    pytest benchmarks/ --benchmark-only

Inputs are built outside the timed call. Each result stores in
``extra_info``: GFLOP/s (2 FLOPs per multiply-add; the backward pass
computes dx, dw and db, twice the forward's multiply-adds), the thread count
and, for fastconv, the SIMD level.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import fastconv
from fastconv import ops, reference

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

BATCH = 64

# name: (H, W, C_in, C_out, kernel, padding), batch 64.
CONV_SHAPES = {
    "seed000-conv1_28x28x1-32": (28, 28, 1, 32, 3, "valid"),
    "seed000-conv2_13x13x32-64": (13, 13, 32, 64, 3, "valid"),
    "seed000-conv3_5x5x64-64": (5, 5, 64, 64, 3, "valid"),
    "seed003-conv1_28x28x1-64_k2same": (28, 28, 1, 64, 2, "same"),
    "seed003-conv2_14x14x64-32_k2same": (14, 14, 64, 32, 2, "same"),
    "large_56x56x64-64": (56, 56, 64, 64, 3, "same"),
    "large_28x28x128-128": (28, 28, 128, 128, 3, "same"),
}

# name: (H, W, C) of 2x2 max pooling inputs.
POOL_SHAPES = {
    "seed000-pool1_26x26x32": (26, 26, 32),
    "seed000-pool2_11x11x64": (11, 11, 64),
    "large_56x56x64": (56, 56, 64),
}

def _record(benchmark, backend: str, n: int, gflop: float) -> None:
    benchmark.extra_info["backend"] = backend
    benchmark.extra_info["threads"] = n
    if backend == "fastconv":
        benchmark.extra_info["isa"] = fastconv.get_isa()
    if gflop and benchmark.stats is not None:
        benchmark.extra_info["gflops"] = round(gflop / benchmark.stats.stats.min, 2)


def _conv_case(name: str):
    h, w, c_in, c_out, k, padding = CONV_SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, h, w, c_in)).astype(np.float32)
    kernel = (rng.standard_normal((k, k, c_in, c_out)) * 0.1).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    y = ops.conv2d(x, kernel, bias, padding=padding)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    gflop = 2.0 * y.size * k * k * c_in / 1e9
    return x, kernel, bias, dy, padding, gflop


def _torch_padding(k: int, padding: str) -> tuple[tuple[int, int], bool]:
    """PyTorch's symmetric padding, and whether a row/column must be cropped to
    match TensorFlow's "same" for even kernels (the extra goes bottom/right)."""
    if padding == "valid":
        return (0, 0), False
    return (k // 2, k // 2), k % 2 == 0


def _conv_forward_call(backend: str, x, kernel, bias, padding) -> Callable[[], object]:
    if backend != "torch":
        module = ops if backend == "fastconv" else reference
        return lambda: module.conv2d(x, kernel, bias, padding=padding)
    k = kernel.shape[0]
    pad, crop = _torch_padding(k, padding)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    wt = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    bt = torch.from_numpy(bias)
    if crop:
        return lambda: F.conv2d(F.pad(xt, (0, 1, 0, 1)), wt, bt)
    return lambda: F.conv2d(xt, wt, bt, padding=pad)


def _conv_backward_call(backend: str, x, kernel, dy, padding) -> Callable[[], object]:
    if backend != "torch":
        module = ops if backend == "fastconv" else reference
        return lambda: module.conv2d_backward(dy, x, kernel, padding=padding)
    k = kernel.shape[0]
    pad, crop = _torch_padding(k, padding)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    if crop:
        xt, pad = F.pad(xt, (0, 1, 0, 1)), (0, 0)
    wt = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())
    return lambda: torch.ops.aten.convolution_backward(
        dyt, xt, wt, [wt.shape[0]], [1, 1], list(pad), [1, 1], False, [0, 0], 1,
        [True, True, True])


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
def test_conv2d_forward(benchmark, backend, n_threads, shape):
    x, kernel, bias, _, padding, gflop = _conv_case(shape)
    benchmark(_conv_forward_call(backend, x, kernel, bias, padding))
    _record(benchmark, backend, n_threads, gflop)


@pytest.mark.parametrize("shape", CONV_SHAPES, ids=str)
def test_conv2d_backward(benchmark, backend, n_threads, shape):
    x, kernel, _, dy, padding, gflop = _conv_case(shape)
    benchmark(_conv_backward_call(backend, x, kernel, dy, padding))
    _record(benchmark, backend, n_threads, 2 * gflop)


def _pool_input(shape: str) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((BATCH, *POOL_SHAPES[shape])).astype(np.float32)


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
def test_max_pool2d_forward(benchmark, backend, n_threads, shape):
    x = _pool_input(shape)
    if backend == "torch":
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        benchmark(lambda: F.max_pool2d(xt, 2, return_indices=True))
    else:
        module = ops if backend == "fastconv" else reference
        benchmark(module.max_pool2d, x, 2)
    _record(benchmark, backend, n_threads, 0.0)


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
def test_max_pool2d_backward(benchmark, backend, n_threads, shape):
    x = _pool_input(shape)
    y, argmax = ops.max_pool2d(x, 2)
    if backend == "torch":
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        yt, idx = F.max_pool2d(xt, 2, return_indices=True)
        benchmark(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            yt, xt, [2, 2], [2, 2], [0, 0], [1, 1], False, idx))
    else:
        module = ops if backend == "fastconv" else reference
        benchmark(module.max_pool2d_backward, y, argmax, x.shape, 2)
    _record(benchmark, backend, n_threads, 0.0)


# Convolutions followed by ReLU and 2x2 max pooling (conv2d_max_pool2d and
# its gradient; PyTorch runs its three ops, the reference its composition).
FUSED_SHAPES = ["seed000-conv1_28x28x1-32", "seed000-conv2_13x13x32-64", "large_56x56x64-64"]


def _fused_case(shape: str):
    x, kernel, bias, _, padding, gflop = _conv_case(shape)
    y, argmax = ops.conv2d_max_pool2d(x, kernel, bias, padding=padding, activation="relu")
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    return x, kernel, bias, padding, y, argmax, dy, gflop


def _torch_fused(x, kernel, bias, padding):
    pad, _ = _torch_padding(kernel.shape[0], padding)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    wt = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
    bt = torch.from_numpy(bias)
    return xt, wt, bt, pad


@pytest.mark.parametrize("shape", FUSED_SHAPES, ids=str)
def test_conv2d_relu_max_pool2d_forward(benchmark, backend, n_threads, shape):
    x, kernel, bias, padding, _, _, _, gflop = _fused_case(shape)
    if backend == "torch":
        xt, wt, bt, pad = _torch_fused(x, kernel, bias, padding)
        benchmark(lambda: F.max_pool2d(F.relu(F.conv2d(xt, wt, bt, padding=pad)), 2,
                                       return_indices=True))
    else:
        module = ops if backend == "fastconv" else reference
        benchmark(lambda: module.conv2d_max_pool2d(x, kernel, bias, padding=padding,
                                                   activation="relu"))
    _record(benchmark, backend, n_threads, gflop)


@pytest.mark.parametrize("shape", FUSED_SHAPES, ids=str)
def test_conv2d_relu_max_pool2d_backward(benchmark, backend, n_threads, shape):
    x, kernel, bias, padding, y, argmax, dy, gflop = _fused_case(shape)
    need_dx = not shape.endswith("28x28x1-32")  # a first layer needs no dx
    if backend == "torch":
        xt, wt, bt, pad = _torch_fused(x, kernel, bias, padding)
        zt = F.relu(F.conv2d(xt, wt, bt, padding=pad))
        _, idx = F.max_pool2d(zt, 2, return_indices=True)
        dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())

        def step():
            dz = torch.ops.aten.max_pool2d_with_indices_backward(
                dyt, zt, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
            dz = torch.ops.aten.threshold_backward(dz, zt, 0)
            return torch.ops.aten.convolution_backward(
                dz, xt, wt, [wt.shape[0]], [1, 1], list(pad), [1, 1], False, [0, 0], 1,
                [need_dx, True, True])

        benchmark(step)
    else:
        module = ops if backend == "fastconv" else reference
        benchmark(lambda: module.conv2d_max_pool2d_backward(
            dy, argmax, x, kernel, padding=padding, activation="relu", y=y, need_dx=need_dx))
    _record(benchmark, backend, n_threads, gflop * (2 if need_dx else 1))

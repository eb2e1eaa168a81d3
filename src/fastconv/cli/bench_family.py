"""The convolution family's named shapes: one table of cases shared by
``python -m fastconv bench --family`` and ``benchmarks/test_bench_family.py``.

Each case builds its inputs once, outside every timed call, and gives per
backend ("fastconv", "reference" or "torch") two callables: the forward
pass, and the forward pass followed by the backward pass ("forward +
backward", a training step's work for the layers). The backward pass
computes dx, dw and db of every layer: each case stands for layers inside a
network, whose input gradient the layers before them need. PyTorch runs the
same arithmetic on channels-first tensors built here: TensorFlow's "same"
padding through ``F.pad`` where it is asymmetric, causal padding as a left
``F.pad``, its backward pass through autograd (the gradients of the leaves
reset before each call, so nothing accumulates).

Work counted, per case and pass:

- GFLOP: 2 FLOPs per multiply-add. A backward pass computes dx and dw, each
  with the forward pass's multiply-adds (db is not counted), so forward +
  backward is 3 times the forward pass. A transposed convolution counts
  every kernel tap of every input pixel.
- GB (10^9 bytes), for the memory-bound cases: each array a pass reads or
  writes counted once at its size, as if it crossed memory once (the
  convention of the STREAM triad that ``_runtime.triad_gbps`` measures).
  Forward: its inputs (x, w, b) and outputs (y, and max pooling's int32
  argmax); backward: dy and what it reads again (x and w; argmax), and
  dx, dw, db. PyTorch is charged the same bytes. Batch normalization: x and
  y forward; dy, x and dx backward (the sweeps over the statistics read x
  again, uncounted).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np

import fastconv
from fastconv import reference

BACKENDS = ("fastconv", "reference", "torch")
Call = Callable[[], object]


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One stride-1 convolution of a stack (Keras kernel layout)."""

    kernel: tuple[int, ...]
    c_in: int
    c_out: int
    padding: str = "same"
    dilation: int = 1
    groups: int = 1
    bias: bool = True


def _module(backend: str):
    return fastconv.ops if backend == "fastconv" else reference


def _channels_first(a: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))


def _torch_step(forward: Callable[[], object], leaves: list, dy) -> Call:
    """forward() then its backward pass, through autograd."""

    def step() -> None:
        for t in leaves:
            t.grad = None
        forward().backward(dy)

    return step


def _grad_leaves(*tensors) -> list:
    return [t.detach().clone().requires_grad_(True) for t in tensors]


class Case:
    """A named shape: ``gflop`` and ``gbytes`` are (forward, forward +
    backward) or None; ``bound`` says which one measures the case
    ("compute": GFLOP/s; "memory": GB/s); ``parts`` are sub-cases timed
    on their own (a separable convolution's depthwise part)."""

    bound = "compute"
    gflop: tuple[float, float] | None = None
    gbytes: tuple[float, float] | None = None
    parts: ClassVar[dict[str, Case]] = {}  # instances that have parts set their own

    def calls(self, backend: str) -> tuple[Call, Call]:
        """(forward, forward + backward) on ``backend``."""
        if backend == "torch":
            return self._torch_calls()
        return self._numpy_calls(_module(backend))

    def _numpy_calls(self, module) -> tuple[Call, Call]:
        raise NotImplementedError  # each kind of case defines it

    def _torch_calls(self) -> tuple[Call, Call]:
        raise NotImplementedError


def _torch_padding(layer: ConvLayer, rank: int) -> tuple[tuple[int, ...] | None, tuple[int, ...]]:
    """(F.pad's argument or None, the convolution's symmetric padding) that
    reproduce ``layer.padding`` at stride 1."""
    totals = [(k - 1) * layer.dilation for k in layer.kernel]
    if layer.padding == "valid":
        return None, (0,) * rank
    if layer.padding == "causal":
        return (totals[0], 0), (0,)
    before = [t // 2 for t in totals]  # TensorFlow: the odd one after
    if all(t % 2 == 0 for t in totals):
        return None, tuple(before)
    pairs = [(b, t - b) for b, t in zip(before, totals)]
    return tuple(p for pair in reversed(pairs) for p in pair), (0,) * rank


class ConvStack(Case):
    """Stride-1 convolutions applied one after the other, without
    activations; ``parts``: name -> how many leading layers form it."""

    def __init__(self, x_shape: tuple[int, ...], layers: list[ConvLayer], bound: str = "compute",
                 parts: dict[str, int] | None = None, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.bound, self.layers, self.rank = bound, layers, len(x_shape) - 2
        self.x = rng.standard_normal(x_shape, dtype=np.float32)
        self.w, self.b = [], []
        for layer in layers:
            fan_in = math.prod(layer.kernel) * layer.c_in // layer.groups
            shape = (*layer.kernel, layer.c_in // layer.groups, layer.c_out)
            self.w.append(rng.standard_normal(shape, dtype=np.float32) / np.float32(fan_in) ** 0.5)
            self.b.append(rng.standard_normal(layer.c_out, dtype=np.float32)
                          if layer.bias else None)
        hs = self._activations(fastconv.ops)
        self.dy = rng.standard_normal(hs[-1].shape, dtype=np.float32)
        macs = sum(y.size * math.prod(layer.kernel) * (layer.c_in // layer.groups)
                   for layer, y in zip(layers, hs[1:]))
        self.gflop = (2 * macs / 1e9, 6 * macs / 1e9)
        if bound == "memory":
            fwd = bwd = 0
            for x, y, w, b in zip(hs, hs[1:], self.w, self.b):
                wb = w.size + (0 if b is None else b.size)
                fwd += x.size + wb + y.size
                bwd += y.size + x.size + w.size + x.size + wb
            self.gbytes = (4 * fwd / 1e9, 4 * (fwd + bwd) / 1e9)
        self.parts = {name: ConvStack(x_shape, layers[:n], "memory", seed=seed + 1)
                      for name, n in (parts or {}).items()}

    def _conv(self, module, i: int, h: np.ndarray) -> np.ndarray:
        layer = self.layers[i]
        return module.conv_nd(h, self.w[i], self.b[i], 1, layer.padding, layer.dilation,
                              layer.groups)

    def _activations(self, module) -> list[np.ndarray]:
        hs = [self.x]
        for i in range(len(self.layers)):
            hs.append(self._conv(module, i, hs[-1]))
        return hs

    def _numpy_calls(self, module) -> tuple[Call, Call]:
        def forward() -> np.ndarray:
            h = self.x
            for i in range(len(self.layers)):
                h = self._conv(module, i, h)
            return h

        def step() -> np.ndarray:
            hs, d = self._activations(module), self.dy
            for i in reversed(range(len(self.layers))):
                layer = self.layers[i]
                d, _, _ = module.conv_nd_backward(d, hs[i], self.w[i], 1, layer.padding,
                                                  layer.dilation, layer.groups,
                                                  need_db=layer.bias)
            return d

        return forward, step

    def _torch_calls(self) -> tuple[Call, Call]:
        import torch
        import torch.nn.functional as F

        conv = (F.conv1d, F.conv2d, F.conv3d)[self.rank - 1]
        pads = [_torch_padding(layer, self.rank) for layer in self.layers]
        xt = _channels_first(self.x)
        # (*k, C_in // groups, C_out) -> (C_out, C_in // groups, *k)
        wt = [torch.from_numpy(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))))
              for w in self.w]
        bt = [None if b is None else torch.from_numpy(b) for b in self.b]

        def run(h, ws, bs):
            for layer, (pad, sym), w, b in zip(self.layers, pads, ws, bs):
                if pad is not None:
                    h = F.pad(h, pad)
                h = conv(h, w, b, 1, sym, layer.dilation, layer.groups)
            return h

        xg = _grad_leaves(xt)[0]
        wg = _grad_leaves(*wt)
        bg = [None if b is None else _grad_leaves(b)[0] for b in bt]
        leaves = [xg, *wg, *(b for b in bg if b is not None)]
        return (lambda: run(xt, wt, bt),
                _torch_step(lambda: run(xg, wg, bg), leaves, _channels_first(self.dy)))


class TransposedConv(Case):
    """A 2-D transposed convolution, "same" padding (Keras' Conv2DTranspose)."""

    def __init__(self, x_shape: tuple[int, ...], kernel: int, filters: int, stride: int) -> None:
        rng = np.random.default_rng(0)
        c_in = x_shape[-1]
        self.stride = stride
        self.x = rng.standard_normal(x_shape, dtype=np.float32)
        self.w = rng.standard_normal((kernel, kernel, filters, c_in), dtype=np.float32) / (
            np.float32(kernel * kernel * c_in) ** 0.5)
        self.b = rng.standard_normal(filters, dtype=np.float32)
        y = fastconv.ops.conv_transpose_nd(self.x, self.w, self.b, stride, "same")
        self.dy = rng.standard_normal(y.shape, dtype=np.float32)
        macs = self.x.size * kernel * kernel * filters
        self.gflop = (2 * macs / 1e9, 6 * macs / 1e9)

    def _numpy_calls(self, module) -> tuple[Call, Call]:
        s = self.stride

        def step() -> object:
            module.conv_transpose_nd(self.x, self.w, self.b, s, "same")
            return module.conv_transpose_nd_backward(self.dy, self.x, self.w, s, "same")

        return lambda: module.conv_transpose_nd(self.x, self.w, self.b, s, "same"), step

    def _torch_calls(self) -> tuple[Call, Call]:
        import torch
        import torch.nn.functional as F

        # TensorFlow's "same" scatters input pixel i to outputs s*i + tap; so
        # does padding=0, whose output is then cropped to s * size (a view).
        # padding=1 with output_padding=1 gives the same size one pixel shifted.
        xt = _channels_first(self.x)
        wt = torch.from_numpy(np.ascontiguousarray(self.w.transpose(3, 2, 0, 1)))
        bt = torch.from_numpy(self.b)
        oh, ow = self.dy.shape[1:3]

        def run(x, w, b):
            return F.conv_transpose2d(x, w, b, self.stride)[:, :, :oh, :ow]

        leaves = _grad_leaves(xt, wt, bt)
        return (lambda: run(xt, wt, bt),
                _torch_step(lambda: run(*leaves), leaves, _channels_first(self.dy)))


class GlobalAvgPool(Case):
    """Global average pooling over the spatial axes: (N, *spatial, C) -> (N, C)."""

    bound = "memory"

    def __init__(self, x_shape: tuple[int, ...]) -> None:
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal(x_shape, dtype=np.float32)
        self.dy = rng.standard_normal((x_shape[0], x_shape[-1]), dtype=np.float32)
        fwd, bwd = self.x.size + self.dy.size, self.dy.size + self.x.size
        self.gbytes = (4 * fwd / 1e9, 4 * (fwd + bwd) / 1e9)

    def _numpy_calls(self, module) -> tuple[Call, Call]:
        def step() -> np.ndarray:
            module.global_avg_pool(self.x)
            return module.global_avg_pool_backward(self.dy, self.x.shape)

        return lambda: module.global_avg_pool(self.x), step

    def _torch_calls(self) -> tuple[Call, Call]:
        xt = _channels_first(self.x)
        axes = tuple(range(2, self.x.ndim))
        (xg,) = _grad_leaves(xt)
        return (lambda: xt.mean(axes),
                _torch_step(lambda: xg.mean(axes), [xg], _channels_first(self.dy)))


class MaxPool(Case):
    """Max pooling, window = strides = ``pool``, "valid"."""

    bound = "memory"

    def __init__(self, x_shape: tuple[int, ...], pool: int) -> None:
        rng = np.random.default_rng(0)
        self.pool = pool
        self.x = rng.standard_normal(x_shape, dtype=np.float32)
        y, argmax = fastconv.ops.max_pool_nd(self.x, pool)
        self.dy = rng.standard_normal(y.shape, dtype=np.float32)
        fwd = 4 * (self.x.size + y.size) + argmax.nbytes
        bwd = 4 * (y.size + self.x.size) + argmax.nbytes
        self.gbytes = (fwd / 1e9, (fwd + bwd) / 1e9)

    def _numpy_calls(self, module) -> tuple[Call, Call]:
        def step() -> np.ndarray:
            _, argmax = module.max_pool_nd(self.x, self.pool)
            return module.max_pool_nd_backward(self.dy, argmax, self.x.shape, self.pool)

        return lambda: module.max_pool_nd(self.x, self.pool), step

    def _torch_calls(self) -> tuple[Call, Call]:
        import torch.nn.functional as F

        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[self.x.ndim - 3]
        xt = _channels_first(self.x)
        (xg,) = _grad_leaves(xt)
        return (lambda: pool(xt, self.pool, return_indices=True),
                _torch_step(lambda: pool(xg, self.pool), [xg], _channels_first(self.dy)))


class BatchNorm(Case):
    """Batch normalization in training mode over (N, H, W, C), channels last."""

    bound = "memory"

    def __init__(self, x_shape: tuple[int, ...]) -> None:
        rng = np.random.default_rng(0)
        c = x_shape[-1]
        self.x = rng.standard_normal(x_shape, dtype=np.float32)
        self.gamma = rng.standard_normal(c, dtype=np.float32)
        self.beta = rng.standard_normal(c, dtype=np.float32)
        self.dy = rng.standard_normal(x_shape, dtype=np.float32)
        fwd, bwd = 2 * self.x.size, 3 * self.x.size
        self.gbytes = (4 * fwd / 1e9, 4 * (fwd + bwd) / 1e9)

    def _numpy_calls(self, module) -> tuple[Call, Call]:
        def step() -> object:
            _, mean, var = module.batch_norm(self.x, self.gamma, self.beta)
            return module.batch_norm_backward(self.dy, self.x, mean, var, self.gamma)

        return lambda: module.batch_norm(self.x, self.gamma, self.beta), step

    def _torch_calls(self) -> tuple[Call, Call]:
        import torch
        import torch.nn.functional as F

        xt = _channels_first(self.x)
        gt, bt = torch.from_numpy(self.gamma), torch.from_numpy(self.beta)

        def run(x, g, b):
            return F.batch_norm(x, None, None, g, b, training=True, eps=1e-3)

        leaves = _grad_leaves(xt, gt, bt)
        return (lambda: run(xt, gt, bt),
                _torch_step(lambda: run(*leaves), leaves, _channels_first(self.dy)))


def _separable(b: int) -> Case:
    depthwise = ConvLayer((3, 3), 64, 64, groups=64, bias=False)
    return ConvStack((b, 28, 28, 64), [depthwise, ConvLayer((1, 1), 64, 128)],
                     parts={"depthwise": 1})


# name -> a builder of the case at a batch size (None: the name's own).
CASES: dict[str, Callable[[int | None], Case]] = {
    "conv1d_64-64_k3_L500_b64":
        lambda b: ConvStack((b or 64, 500, 64), [ConvLayer((3,), 64, 64)]),
    "conv1d_causal_32-32_k2_d1-2-4-8_L1024_b16":
        lambda b: ConvStack((b or 16, 1024, 32),
                            [ConvLayer((2,), 32, 32, "causal", d) for d in (1, 2, 4, 8)]),
    "conv3d_16-32_k3_32^3_b8":
        lambda b: ConvStack((b or 8, 32, 32, 32, 16), [ConvLayer((3, 3, 3), 16, 32)]),
    "conv2d_transpose_32-32_k3_s2_14x14_b64":
        lambda b: TransposedConv((b or 64, 14, 14, 32), 3, 32, 2),
    "depthwise2d_k3_56x56x64_b32":
        lambda b: ConvStack((b or 32, 56, 56, 64), [ConvLayer((3, 3), 64, 64, groups=64)],
                            bound="memory"),
    "separable2d_64-128_28x28_b32": lambda b: _separable(b or 32),
    "global_avg_pool2d_7x7x512_b64": lambda b: GlobalAvgPool((b or 64, 7, 7, 512)),
    "max_pool3d_2_32^3x32_b8": lambda b: MaxPool((b or 8, 32, 32, 32, 32), 2),
    "max_pool1d_2_L1000x64_b64": lambda b: MaxPool((b or 64, 1000, 64), 2),
    "batch_norm_28x28x64_b64": lambda b: BatchNorm((b or 64, 28, 28, 64)),
    "batch_norm_56x56x64_b64": lambda b: BatchNorm((b or 64, 56, 56, 64)),
}

# Cases where one reference call (forward + backward) takes more than a second.
SLOW_REFERENCE = ("conv3d_16-32_k3_32^3_b8", "depthwise2d_k3_56x56x64_b32")


@functools.cache
def make_case(name: str, batch: int | None = None) -> Case:
    """The case ``name`` (see CASES), built once per batch size."""
    return CASES[name](batch)


def best_times(calls: list[Call], repeat: int, budget: float) -> list[float]:
    """Best seconds of each call over up to ``repeat`` rounds that run the
    calls in turn (a slow spell of the host hits all of them), stopping
    after the first round that ends ``budget`` seconds after the start; a
    first untimed round warms every call up."""
    for call in calls:
        call()
    best = [math.inf] * len(calls)
    start = time.perf_counter()
    for _ in range(repeat):
        for i, call in enumerate(calls):
            t0 = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return best

"""Timing of one training step of the seed CNN written in PyTorch
(Conv2d(1,32,3) -> ReLU -> MaxPool2d(2) -> Conv2d(32,64,3) -> ReLU ->
MaxPool2d(2) -> Conv2d(64,64,3) -> ReLU -> Flatten -> Linear(576,64) ->
ReLU -> Linear(64,10), batch 64, 28x28x1 inputs, cross-entropy, SGD) on
torch.nn's own modules and on the same model after
``fastconv.torch.convert`` (its convolutions and poolings on fastconv's
kernels), at 2 threads for both fastconv and PyTorch.

Run from the repository root (see benchmarks/README.md):

    PYTHONPATH=src python -m pytest benchmarks/test_bench_torch_bridge.py --benchmark-only -p no:cacheprovider

Inputs, model and optimizer are built outside the timed call; each result
stores the thread count, the modules (``torch.nn`` or ``fastconv.torch``)
and the memory format of the input in ``extra_info``. The ratio of the two
"min" columns is the bridge's speed against PyTorch's kernels.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from conftest import threads

import fastconv.torch as ft

BATCH = 64


def _seed_cnn() -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))


@pytest.fixture
def two_threads():
    with threads(2):
        yield 2


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
@pytest.mark.parametrize("modules", ["torch.nn", "fastconv.torch"])
def test_seed_cnn_training_step(benchmark, two_threads, modules, memory_format):
    torch.manual_seed(0)
    model = _seed_cnn()
    if modules == "fastconv.torch":
        ft.convert(model)
    x = torch.randn(BATCH, 1, 28, 28)
    if memory_format == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (BATCH,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()

    step()  # warm-up: thread pools, allocations
    benchmark(step)
    benchmark.extra_info.update(threads=two_threads, modules=modules,
                                memory_format=memory_format)

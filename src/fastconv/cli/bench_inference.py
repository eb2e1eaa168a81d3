"""The inference section of ``python -m fastconv bench``: the seed CNN and
seed 003's Fashion-MNIST CNN predicting, on fastconv, on PyTorch and on ONNX
Runtime (each when installed), in one run.

- throughput: 2,560 images in batches of 256 (``model.predict(x,
  batch_size=256)``; PyTorch's module on each batch under
  ``torch.inference_mode()``; ``InferenceSession.run`` on each batch of the
  model fastconv exports, ``fastconv.export.onnx``), in images per second;
- latency of one image: ``predict_on_batch`` and a call of the model on a
  NumPy array, PyTorch's module call, ``session.run``, in microseconds.

Every engine runs on the same number of threads (PyTorch's
``set_num_threads``, ONNX Runtime's ``intra_op_num_threads``). Times are
medians of ``repeat`` runs after a warm-up (a latency's run: 20 calls).
ONNX Runtime's outputs are checked against fastconv's before timing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import fastconv
from fastconv.cli.train import fashion_cnn, seed_cnn

IMAGES, BATCH, CALLS = 2560, 256, 20

MODELS = {
    "seed CNN": seed_cnn,
    "seed 003's CNN": fashion_cnn,
}


def _median(fn: Callable[[], object], repeat: int, calls: int = 1) -> float:
    """Median seconds of one call of ``fn`` over ``repeat`` runs of ``calls``."""
    for _ in range(calls):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def _torch_module(name: str, threads: int) -> Any:
    """The same network in PyTorch (NCHW; its softmax included), or None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    nn = torch.nn
    if name == "seed CNN":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
    else:
        # TensorFlow's "same" for a 2x2 kernel pads one row and column at the
        # bottom and right, as PyTorch's padding="same" does.
        net = nn.Sequential(
            nn.Conv2d(1, 64, 2, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 32, 2, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.3), nn.Flatten(), nn.Linear(1568, 256), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(256, 10), nn.Softmax(dim=1))
    return net.eval()


def _onnx_session(model: Any, threads: int, folder: str) -> Any:
    """An ONNX Runtime session of fastconv's export of ``model``, or None."""
    try:
        import onnx  # noqa: F401 - the exporter needs it
        import onnxruntime as ort
    except ImportError:
        return None
    from fastconv.export.onnx import export_onnx

    path = str(Path(folder) / f"{model.name}.onnx")
    export_onnx(model, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _row(name: str, threads: int, repeat: int, folder: str) -> dict:
    fastconv.utils.set_random_seed(0)
    model = MODELS[name]()
    x = np.random.default_rng(0).random((IMAGES, 28, 28, 1), dtype=np.float32)
    one = x[:1]
    row: dict[str, Any] = {
        "fastconv": IMAGES / _median(lambda: model.predict(x, batch_size=BATCH, verbose=0),
                                     repeat),
        "predict_on_batch": _median(lambda: model.predict_on_batch(one), repeat, CALLS),
        "call": _median(lambda: model(one), repeat, CALLS),
    }
    net = _torch_module(name, threads)
    if net is not None:
        import torch

        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        batches = [xt[i:i + BATCH] for i in range(0, IMAGES, BATCH)]

        def torch_predict() -> None:
            with torch.inference_mode():
                for b in batches:
                    net(b)

        def torch_one() -> None:
            with torch.inference_mode():
                net(xt[:1])

        row["torch"] = IMAGES / _median(torch_predict, repeat)
        row["torch_one"] = _median(torch_one, repeat, CALLS)
    session = _onnx_session(model, threads, folder)
    if session is not None:
        feed = session.get_inputs()[0].name
        got = session.run(None, {feed: x[:BATCH]})[0]
        row["ort_diff"] = float(np.abs(got - model.predict_on_batch(x[:BATCH])).max())

        def ort_predict() -> None:
            for i in range(0, IMAGES, BATCH):
                session.run(None, {feed: x[i:i + BATCH]})

        row["ort"] = IMAGES / _median(ort_predict, repeat)
        row["ort_one"] = _median(lambda: session.run(None, {feed: one}), repeat, CALLS)
    return row


def inference_table(threads: int, repeat: int) -> None:
    """Print the throughput and latency rows (the module docstring)."""
    print(f"\ninference, {threads} threads, medians of {repeat} runs: predict {IMAGES} "
          f"images in batches of {BATCH} (images/s), and one image (us a call)")
    head = (f"{'model':<16}{'what':<30}{'fastconv':>10}{'PyTorch':>10}{'x':>7}"
            f"{'ONNX RT':>10}{'x':>7}")
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            row = _row(name, threads, repeat, folder)

            def cells(ours: float, key: str, higher_better: bool) -> str:
                if key not in row:
                    return f"{'-':>10}{'-':>7}"
                theirs = row[key]
                ratio = ours / theirs if higher_better else theirs / ours
                shown = theirs if higher_better else theirs * 1e6
                return f"{shown:10.0f}{ratio:6.2f}x"

            print(f"{name:<16}{'predict, batch 256 (img/s)':<30}{row['fastconv']:10.0f}"
                  f"{cells(row['fastconv'], 'torch', True)}{cells(row['fastconv'], 'ort', True)}")
            for label, key in (("predict_on_batch, 1 image (us)", "predict_on_batch"),
                               ("model(x), 1 image (us)", "call")):
                print(f"{'':<16}{label:<30}{row[key] * 1e6:10.0f}"
                      f"{cells(row[key], 'torch_one', False)}{cells(row[key], 'ort_one', False)}")
            if "ort_diff" in row:
                print(f"{'':<16}(ONNX Runtime's outputs differ from fastconv's by at most "
                      f"{row['ort_diff']:.1e})")
    print("x: fastconv's speed / theirs (above 1: fastconv is faster); PyTorch runs the "
          "same networks with its own random weights")

"""``python -m fastconv bench --load K``: the training step on a busy machine.

K other processes spin on the CPU (each a Python loop, ``_spin``) while the
seed CNN's training step is timed, on fastconv's threads and on one thread,
and on PyTorch when it is installed; the same steps are timed first on the
quiet machine. Times are medians (on a busy machine the best run says how
fast a step can be when the scheduler happens to leave the cores alone, not
how fast steps are). The yardstick is the step on one thread of the quiet
machine: a busy machine should cost about the cores it takes away, not a
collapse of the threads' cooperation.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import fastconv
from fastconv.runtime import openmp_wait


def _median(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: buffers, BLAS threads
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@contextlib.contextmanager
def busy_processes(k: int) -> Iterator[None]:
    """``k`` processes spinning on the CPU for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
             for _ in range(k)]
    try:
        time.sleep(0.5)  # they are running before the first timed step
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def load_table(k: int, batch: int, repeat: int, threads: int, x: np.ndarray,
               y: np.ndarray, model: Any, torch_net: Any) -> None:
    """Print the quiet and busy step times of fastconv (``threads`` and 1
    thread) and of PyTorch."""
    def fastconv_step(n: int) -> float:
        fastconv.set_num_threads(n)
        try:
            return _median(lambda: model.train_on_batch(x, y), repeat)
        finally:
            fastconv.set_num_threads(threads)

    def torch_step() -> float:
        return _median(torch_net.step_function(x, y), repeat)

    runs: list[tuple[str, Callable[[], float]]] = [
        (f"fastconv, {threads} threads", lambda: fastconv_step(threads))]
    if threads > 1:
        runs.append(("fastconv, 1 thread", lambda: fastconv_step(1)))
    if torch_net:
        runs.append((f"PyTorch, {threads} threads", torch_step))
    quiet = {name: run() for name, run in runs}
    with busy_processes(k):
        busy = {name: run() for name, run in runs}
    one = quiet["fastconv, 1 thread" if threads > 1 else f"fastconv, {threads} threads"]
    print(f"\nbusy machine: {k} other CPU-bound process{'es' if k != 1 else ''} beside the "
          f"training step (batch {batch}, median of {repeat}); idle OpenMP threads: "
          f"{openmp_wait.state()}")
    head = f"{'':<24}{'quiet ms':>10}{'busy ms':>10}{'busy/quiet':>12}{'busy / 1 thread quiet':>23}"
    print(head)
    print("-" * len(head))
    for name, _ in runs:
        print(f"{name:<24}{quiet[name] * 1e3:10.2f}{busy[name] * 1e3:10.2f}"
              f"{busy[name] / quiet[name]:11.2f}x{busy[name] / one:22.2f}x")

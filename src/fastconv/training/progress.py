"""Keras-style progress lines for fit, evaluate and predict.

    Epoch 1/5
    938/938 ━━━━━━━━━━━━━━━━━━━━ 12s 13ms/step - accuracy: 0.8506 - loss: 0.4150

On a terminal the line is redrawn in place as steps complete (at most every
0.05 s) and shows the time left; elsewhere (logs, pipes) a line is printed
every 10 s and at the end, so logs stay readable. ``verbose=2`` prints one
summary line per epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

BAR_WIDTH = 20


def format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def format_step_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def format_logs(logs: Mapping[str, float]) -> str:
    return "".join(f" - {name}: {value:.4f}" for name, value in logs.items())


class Progbar:
    """Progress of one pass over ``total`` steps at Keras' verbosity levels."""

    def __init__(self, total: int, verbose: int = 1, stream=None) -> None:
        self.total = total
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = 0.05 if self.dynamic else 10.0
        self.start = time.perf_counter()
        # The first line waits an interval too: a short pass logged to a
        # file (no terminal) then writes its final line only.
        self._last_print = self.start if not self.dynamic else 0.0
        self._width = 0

    def _line(self, step: int, logs: Mapping[str, float], done: bool) -> str:
        elapsed = time.perf_counter() - self.start
        per_step = elapsed / max(step, 1)
        filled = BAR_WIDTH * step // max(self.total, 1)
        bar = "━" * filled + (" " * (BAR_WIDTH - filled))
        shown = elapsed if done else per_step * (self.total - step)
        width = len(str(self.total))
        return (f"{step:>{width}}/{self.total} {bar} {format_duration(shown)} "
                f"{format_step_time(per_step)}{format_logs(logs)}")

    def update(self, step: int, logs: Mapping[str, float], done: bool = False) -> None:
        """Report that ``step`` of ``total`` steps are complete."""
        if self.verbose != 1:
            return
        now = time.perf_counter()
        if not done and now - self._last_print < self.interval:
            return
        self._last_print = now
        line = self._line(step, logs, done)
        if self.dynamic:
            pad = max(self._width - len(line), 0)
            self.stream.write("\r" + line + " " * pad + ("\n" if done else ""))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def summary(self, steps: int, logs: Mapping[str, float]) -> None:
        """The one line per epoch of ``verbose=2``."""
        if self.verbose != 2:
            return
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"{steps}/{self.total} - {format_duration(elapsed)} - "
                          f"{format_step_time(elapsed / max(steps, 1))}{format_logs(logs)}\n")
        self.stream.flush()

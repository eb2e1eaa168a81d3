"""How the kernels' idle OpenMP threads wait: a short spin, then asleep.

Between two parallel regions libgomp keeps its worker threads spinning on
the CPU, by default for 300,000 rounds (a few hundred microseconds to a
millisecond), so that the next region starts without waking them. On a
quiet machine that saves a few microseconds a region. On a machine where
another process wants the cores it is a collapse: the spinning workers take
the time slices that the thread with work needed, and every statically
split kernel waits for its slowest thread. Measured on a 2-core machine
with one other CPU-bound process, a training step of the seed CNN on 2
threads took 120 ms with libgomp's default and 47 ms with its workers
asleep while idle (one thread alone: 51 ms).

libgomp reads its setting once, when it is loaded. ``apply()`` runs before
fastconv's first kernel module loads it: unless the user chose a policy
(``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set), it sets ``GOMP_SPINCOUNT``
for the load and restores the environment right after, so child processes
see the user's environment. A libgomp loaded earlier by another module
keeps its own setting (``state()`` tells).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

SPIN_ROUNDS = 1000
"""Rounds an idle worker spins before it sleeps (libgomp's default: 300,000)."""

_USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_state = "not applied"


def _libgomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return "libgomp" in f.read()
    except OSError:  # not Linux: no way to tell, assume not
        return False


@contextlib.contextmanager
def apply() -> Iterator[None]:
    """The block loads libgomp with fastconv's spin limit."""
    global _state
    if any(v in os.environ for v in _USER_VARIABLES):
        _state = "the user's (" + ", ".join(
            f"{v}={os.environ[v]}" for v in _USER_VARIABLES if v in os.environ) + ")"
        yield
        return
    if _libgomp_loaded():
        _state = "libgomp's default (libgomp was loaded before fastconv)"
        yield
        return
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_ROUNDS)
    try:
        yield
    finally:
        del os.environ["GOMP_SPINCOUNT"]
    _state = f"GOMP_SPINCOUNT={SPIN_ROUNDS} (fastconv's)"


def state() -> str:
    """The wait policy the kernels' threads run with, and who chose it."""
    return _state

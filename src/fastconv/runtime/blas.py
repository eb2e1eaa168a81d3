"""Keep NumPy's BLAS from competing with fastconv's OpenMP threads.

During ``fit`` / ``evaluate`` / ``predict`` the dense layers' matrix products
are small, while OpenBLAS's worker threads keep spinning after each product
and steal the cores the convolution kernels' threads need (on a 2-core
machine this doubled a training step). ``single_threaded_blas()`` sets
OpenBLAS to one thread for the duration and restores it afterwards.

OpenBLAS is found among the shared libraries this process has loaded
(/proc/self/maps, Linux) and called through ctypes; on other systems, or
with another BLAS, the context manager does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator
from functools import lru_cache

# (set, get) symbol pairs of the OpenBLAS builds NumPy ships or links.
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


@lru_cache(maxsize=1)
def _openblas_controls() -> tuple:
    """[(set_num_threads, get_num_threads)] of every loaded OpenBLAS."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps
                     if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return ()
    controls = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                controls.append((setter, getter))
                break
    return tuple(controls)


def blas_threads() -> list[int]:
    """Threads of each loaded OpenBLAS (empty when none is found)."""
    return [getter() for _, getter in _openblas_controls()]


# Nested and concurrent uses (a callback calling predict inside fit, two
# Python threads training) share one setting: the first to enter saves the
# thread counts and sets 1, the last to leave restores them.
_lock = threading.Lock()
_depth = 0
_saved: list[int] = []


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the body with OpenBLAS on one thread, then restore its setting."""
    global _depth, _saved
    controls = _openblas_controls()
    with _lock:
        if _depth == 0:
            _saved = [getter() for _, getter in controls]
            for setter, _ in controls:
                setter(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (setter, _), n in zip(controls, _saved):
                    setter(n)

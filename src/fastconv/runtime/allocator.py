"""Keep freed activation memory in the heap while a model trains or predicts.

Every training step allocates the same activations and gradients again
(tens of MB for a small CNN). glibc returns large freed blocks to the
kernel, so each step faults the same memory back in page by page, which is
slow on virtual machines (a training step of the seed CNN: 7.8-9.0 ms,
4.0-4.6 ms with the blocks kept, 2-core VM). Inside ``retained_heap()``
(fit / evaluate / predict) glibc's mmap and trim thresholds are raised so
freed blocks stay in the heap and are reused, as a caching allocator would;
on leaving, the thresholds go to the values glibc's own adaptive rule
reaches in such programs, so the process keeps at most 64 MB of free heap
afterwards, and the heap is trimmed at once, unless the caller is a per-batch
call (``trim=False``: train_on_batch and the like, usually called in a loop,
where trimming would fault every step's memory back in; glibc then trims the
top of the heap down to its threshold at the next large free). With
concurrent users, the last one to leave decides whether to trim.

glibc only; elsewhere, or with ``FASTCONV_MALLOC=default`` in the
environment, nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Iterator
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# While training: blocks up to this size come from the heap and are reused...
MMAP_THRESHOLD = 64 << 20
# ...and up to this much free memory stays in the heap.
TRIM_THRESHOLD = 512 << 20
# Afterwards: where glibc's own adaptive thresholds settle in a program that
# frees large arrays (its mmap threshold rises to at most 32 MB, the trim
# threshold to twice that). Once mallopt has been called glibc stops adapting,
# and its initial 128 KB would make every later large allocation in the
# process fault fresh pages in.
AFTER_MMAP_THRESHOLD = 32 << 20
AFTER_TRIM_THRESHOLD = 64 << 20


@functools.lru_cache(maxsize=1)
def _glibc() -> Any:
    """glibc's mallopt and malloc_trim, or None."""
    if os.environ.get("FASTCONV_MALLOC", "").lower() == "default":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return mallopt, trim


def enabled() -> bool:
    """Whether ``retained_heap`` tunes the allocator here."""
    return _glibc() is not None


_lock = threading.Lock()
_depth = 0


@contextlib.contextmanager
def retained_heap(trim: bool = True) -> Iterator[None]:
    """Keep freed blocks in the heap for the body (nested and concurrent uses
    share one setting); then set glibc's thresholds back and, with ``trim``,
    return the heap's free memory to the system."""
    global _depth
    glibc = _glibc()
    if glibc is None:
        yield
        return
    mallopt, malloc_trim = glibc
    with _lock:
        if _depth == 0:
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                mallopt(M_MMAP_THRESHOLD, AFTER_MMAP_THRESHOLD)
                mallopt(M_TRIM_THRESHOLD, AFTER_TRIM_THRESHOLD)
                if trim:
                    malloc_trim(0)

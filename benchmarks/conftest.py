"""The grid axes every benchmark file shares: the backend and the thread
count (applied to fastconv, NumPy's BLAS for the reference, and PyTorch)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

import fastconv
from fastconv.runtime import blas as _blas

try:
    import torch
except ImportError:
    torch = None

BACKENDS = ["fastconv", "reference", "torch"]
THREADS = [1, 2]


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """n threads for fastconv, NumPy's BLAS (the reference) and PyTorch."""
    saved_fc = fastconv.get_num_threads()
    saved_blas = _blas.blas_threads()
    saved_torch = torch.get_num_threads() if torch else None
    fastconv.set_num_threads(n)
    for setter, _ in _blas._openblas_controls():
        setter(n)
    if torch:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        fastconv.set_num_threads(saved_fc)
        for (setter, _), m in zip(_blas._openblas_controls(), saved_blas):
            setter(m)
        if torch:
            torch.set_num_threads(saved_torch)


@pytest.fixture(params=THREADS, ids=lambda n: f"{n}thr")
def n_threads(request):
    with threads(request.param):
        yield request.param


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "torch" and torch is None:
        pytest.skip("PyTorch is not installed")
    return request.param

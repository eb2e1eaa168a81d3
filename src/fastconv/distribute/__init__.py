"""Data-parallel training over several processes (``fastconv.distribute``).

``MPIDataParallel`` needs mpi4py (``pip install "fastconv[mpi]"``); it is
imported on first use, so ``import fastconv`` never needs MPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MPIDataParallel"]


def __getattr__(name: str) -> Any:
    if name == "MPIDataParallel":
        from fastconv.distribute.mpi import MPIDataParallel
        return MPIDataParallel
    raise AttributeError(f"module 'fastconv.distribute' has no attribute {name!r}")

"""HDF5 access shared by the Keras formats: h5py is optional, and every
flaw of a file becomes a ValueError naming it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import numpy as np

INSTALL_HINT = 'pip install "fastconv[keras-files]"'


def h5py() -> Any:
    try:
        import h5py as module
    except ImportError:
        raise ImportError(f"Reading and writing Keras' HDF5 files needs h5py: {INSTALL_HINT}"
                          ) from None
    return module


@contextlib.contextmanager
def open_h5(data: bytes, source: str) -> Iterator[Any]:
    """The HDF5 file held in ``data`` (read-only, in memory)."""
    module = h5py()
    try:
        f = module.File(io.BytesIO(data), "r")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{source} is not a readable HDF5 file (truncated or corrupt): "
                         f"{exc}") from None
    try:
        yield f
    except (OSError, KeyError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{source} is a corrupt HDF5 file: {exc}") from None
    finally:
        f.close()


def h5_bytes(write: Any) -> bytes:
    """The bytes of an HDF5 file that ``write(file)`` fills."""
    module = h5py()
    buffer = io.BytesIO()
    with module.File(buffer, "w") as f:
        write(f)
    return buffer.getvalue()


def read_dataset(dataset: Any, source: str, what: str, shape: tuple | None = None,
                 kinds: str = "fiu") -> np.ndarray:
    """A dataset's array once its shape and dtype are checked (nothing is read
    before)."""
    module = h5py()
    if not isinstance(dataset, module.Dataset):
        raise ValueError(f"{source}: {what} is not an array.")  # noqa: TRY004  (file content)
    if shape is not None and tuple(dataset.shape) != tuple(shape):
        raise ValueError(f"{source}: {what} has shape {tuple(dataset.shape)} in the file but "
                         f"{tuple(shape)} in the model.")
    if dataset.dtype.kind not in kinds or dataset.dtype.itemsize not in (1, 2, 4, 8):
        raise ValueError(f"{source}: {what} is stored as {dataset.dtype}; expected a numeric "
                         "array.")
    try:
        return np.asarray(dataset[()])
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{source}: {what} cannot be read (truncated or corrupt file): "
                         f"{exc}") from None

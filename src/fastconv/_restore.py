"""Weights of a model being rebuilt from a file.

While ``fastconv.saving`` rebuilds a model, ``Layer.add_weight`` takes each
weight's value from the stored arrays, in model order, instead of running
the initializer: a stored shape is checked before anything of the config's
size is allocated, and no weight is initialised only to be overwritten.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import numpy as np

_source: contextvars.ContextVar[Any] = contextvars.ContextVar("fastconv_stored_weights",
                                                              default=None)


def stored_weight(shape: tuple, dtype: str, name: str) -> np.ndarray | None:
    """The stored value of the next weight (checked to have ``shape``), or
    None when no model is being restored."""
    source = _source.get()
    return None if source is None else source.next_weight(tuple(shape), np.dtype(dtype), name)


@contextlib.contextmanager
def restoring(source: Any) -> Iterator[None]:
    """Within the block, ``stored_weight`` asks ``source.next_weight``."""
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)

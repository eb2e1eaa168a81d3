"""Weights of a model being rebuilt from a file.

While ``fastconv.saving`` rebuilds a model, ``Layer.add_weight`` asks the
file for each weight before allocating it: the file must hold an array of
that shape, so nothing of the config's size is allocated unchecked, and no
weight is initialised only to be overwritten.
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
    """A placeholder for a weight the file holds (checked by shape), or None
    when no model is being restored."""
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

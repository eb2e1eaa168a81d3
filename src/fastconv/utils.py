"""Utilities with Keras' names: ``to_categorical``, ``set_random_seed``."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from fastconv.runtime import random as _random


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """One-hot float32 rows for integer class labels, as Keras' ``to_categorical``.

    Parameters
    ----------
    x : array of ints, shape (N,) or (N, 1) (or any shape; a trailing axis of
        size 1 is dropped)
    num_classes : int, optional
        Defaults to ``max(x) + 1``.

    Returns
    -------
    ndarray of float32, shape (*x.shape, num_classes)
    """
    labels = np.asarray(x)
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise ValueError("Invalid value for argument `x`: expected integer class labels, "
                             "received non-integer values.")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iub":
        raise TypeError(f"Invalid dtype for argument `x`: expected integer class labels, "
                        f"received {labels.dtype}.")
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"Invalid value for argument `x`: class labels must be >= 0, "
                         f"received {labels.min()}.")
    top = int(labels.max()) + 1 if labels.size else 0
    if num_classes is None:
        num_classes = top
    elif not isinstance(num_classes, (int, np.integer)) or num_classes < top:
        raise ValueError(f"Invalid value for argument `num_classes`: expected an int > every "
                         f"label ({top - 1}), received num_classes={num_classes!r}.")
    out = np.zeros((*labels.shape, int(num_classes)), dtype=np.float32)
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


def set_random_seed(seed: int) -> None:
    """Seed every generator fastconv uses (and Python's and NumPy's global ones):
    the same seed then gives the same initial weights, shuffles and dropout
    masks, so training reproduces bit for bit."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Invalid value for argument `seed`: expected an int >= 0, "
                         f"received seed={seed!r}.")
    _random.set_seed(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)

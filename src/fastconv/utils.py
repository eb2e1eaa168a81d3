"""Utilities with Keras' names: ``to_categorical``, ``set_random_seed``,
``PyDataset`` (alias ``Sequence``), ``plot_model``, ``model_to_dot`` and
``plot_history`` (from ``fastconv.visualization``)."""

from __future__ import annotations

import itertools
import random
import warnings
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


class PyDataset:
    """Base class of a dataset written in Python, batch by batch
    (``keras.utils.PyDataset``, alias ``Sequence``).

    A subclass implements ``__len__`` (the number of batches; or the
    ``num_batches`` property, None for an endless dataset) and
    ``__getitem__(index)``, which returns one whole batch: ``x``,
    ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``. ``on_epoch_begin``
    and ``on_epoch_end`` are called around every epoch of ``fit`` (for
    instance to reshuffle).

    Parameters
    ----------
    workers : int, default 1
        With more than one, ``fit``/``evaluate``/``predict`` load batches
        ahead in a pool of that many threads. Batches are still consumed in
        index order, so results equal those of ``workers=1``.
    use_multiprocessing : bool, default False
        Accepted as in Keras; fastconv loads batches in threads either way
        (no processes are forked), which gives the same batches.
    max_queue_size : int, default 10
        How many batches the threads may load ahead.

    Examples
    --------
    >>> class Batches(PyDataset):
    ...     def __init__(self, x, y, batch_size, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.x, self.y, self.batch_size = x, y, batch_size
    ...     def __len__(self):
    ...         return -(-len(self.x) // self.batch_size)
    ...     def __getitem__(self, i):
    ...         rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
    ...         return self.x[rows], self.y[rows]
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        if not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 0:
            raise ValueError(f"Invalid value for argument `workers`: expected an int >= 0, "
                             f"received workers={workers!r}.")
        if (not isinstance(max_queue_size, (int, np.integer)) or isinstance(max_queue_size, bool)
                or max_queue_size < 1):
            raise ValueError(f"Invalid value for argument `max_queue_size`: expected an int "
                             f">= 1, received max_queue_size={max_queue_size!r}.")
        self._workers = int(workers)
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = int(max_queue_size)

    def _warn_if_super_not_called(self) -> None:
        missing = [name for name in ("_workers", "_use_multiprocessing", "_max_queue_size")
                   if not hasattr(self, name)]
        if missing:
            self._workers = getattr(self, "_workers", 1)
            self._use_multiprocessing = getattr(self, "_use_multiprocessing", False)
            self._max_queue_size = getattr(self, "_max_queue_size", 10)
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in "
                          "its constructor. `**kwargs` can include `workers`, "
                          "`use_multiprocessing`, `max_queue_size`. Do not pass these "
                          "arguments to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self) -> int:
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """The batch at position ``index``."""
        raise NotImplementedError

    @property
    def num_batches(self) -> int | None:
        """The number of batches, or None for an endless dataset (defaults to ``len``)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property:\n\n"
                                  "@property\ndef num_batches(self):\n  return ...")

    def __iter__(self) -> Any:
        try:
            n = self.num_batches
        except NotImplementedError:
            n = None
        for index in (range(n) if n is not None else itertools.count()):
            yield self[index]

    def on_epoch_begin(self) -> None:
        """Called at the start of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch."""


#: Keras' older name of :class:`PyDataset`.
Sequence = PyDataset


# Keras keeps its drawing functions in keras.utils; they live in their own module here.
from fastconv.visualization import model_to_dot, plot_history, plot_model  # noqa: F401

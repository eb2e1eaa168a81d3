"""The data that ``fit``/``evaluate``/``predict`` accept, as batches.

Every kind of input becomes a ``DataAdapter`` whose ``iterator()`` yields
batches ``(x, y, sample_weight)`` (``y`` and ``sample_weight`` may be None):

- ``ArrayDataAdapter``: NumPy arrays (or lists / dicts of them), cut into
  ``batch_size`` rows, shuffled each epoch if asked; ``class_weight`` turned
  into sample weights once.
- ``GeneratorDataAdapter``: a Python generator or iterator yielding ``x``,
  ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``; its length is unknown.
- ``PyDatasetAdapter``: a ``fastconv.utils.PyDataset``, read by index, in a
  thread pool when the dataset asks for ``workers > 1``.

``train_validation_split`` and ``should_eval`` are Keras' rules for
``validation_split`` and ``validation_freq``. ``EpochIterator`` walks an
adapter epoch by epoch with Keras 3's rules for
``steps_per_epoch`` (``keras/src/trainers/epoch_iterator.py``): with a step
count the same iterator carries over from one epoch to the next, and running
out of data warns and ends the epoch.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import math
import random
import types
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastconv.runtime import random as _random
from fastconv.utils import PyDataset

Batch = tuple[Any, Any, Any]

_SUPPORTED = ("NumPy arrays (or lists / dicts of arrays), a Python generator or iterator "
              "yielding batches, or a fastconv.utils.PyDataset")


# ----------------------------------------------------------------------------
# helpers shared by the adapters


def unpack_x_y_sample_weight(data: Any) -> Batch:
    """``(x, y, sample_weight)`` from ``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` (Keras' ``unpack_x_y_sample_weight``)."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) in (1, 2, 3):
        return (*data, *(None,) * (3 - len(data)))  # type: ignore[return-value]
    raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                     f"`(x, y, sample_weight)`, found a tuple of {len(data)} elements.")


def is_array_like(value: Any) -> bool:
    """A NumPy array or scalar, or anything NumPy converts (``__array__``)."""
    return isinstance(value, (np.ndarray, np.generic, int, float)) or (
        hasattr(value, "__array__") and not isinstance(value, (str, bytes)))


def as_arrays(value: Any, name: str) -> Any:
    """An array of numbers, or a list / tuple / dict of them, from user data."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: as_arrays(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, np.ndarray) for v in value):
        return [as_arrays(v, name) for v in value]
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Invalid dtype for argument `{name}`: expected numbers, "
                        f"received {arr.dtype}.")
    return arr


def leaves(value: Any) -> list:
    """The arrays of a nested list / tuple / dict, in order (None has none)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [a for v in value.values() for a in leaves(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in leaves(v)]
    return [value]


def take_rows(value: Any, idx: Any) -> Any:
    """Rows ``idx`` of an array, or of each array in a list/tuple/dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: take_rows(v, idx) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(take_rows(v, idx) for v in value)
    return value[idx]


def is_nested(y: Any) -> bool:
    """Whether ``y`` is a structure of several arrays (Keras' ``tree.is_nested``)."""
    return isinstance(y, (list, tuple, dict))


def class_weight_to_sample_weights(y: Any, class_weight: Any) -> np.ndarray:
    """One weight per sample from ``class_weight`` (class index -> weight)
    and the targets ``y``: sparse labels ``(N,)`` / ``(N, 1)``, or one-hot /
    probability rows ``(N, K)`` read through their argmax. Classes missing
    from the dict weigh 1, as in Keras."""
    if not hasattr(class_weight, "items") or not hasattr(class_weight, "get"):
        raise ValueError("`class_weight` must be a dict-like mapping of class indices to "
                         f"weights. Received: class_weight={class_weight!r} of type "
                         f"{type(class_weight)}.")
    cleaned = {}
    for key, value in class_weight.items():
        try:
            cleaned[int(key)] = float(value)
        except (TypeError, ValueError):
            raise ValueError("`class_weight` must be a dictionary with integer keys "
                             "representing class indices. Received an invalid key: "
                             f"{key!r} of type {type(key)}.") from None
    if y is None:
        raise ValueError("Invalid value for argument `class_weight`: class weights are "
                         "read from the targets, but no targets `y` were given.")
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
    labels = np.round(labels).astype(np.int64).reshape(len(labels), -1)[:, 0]
    return np.array([cleaned.get(int(c), 1.0) for c in labels], dtype=np.float32)


def checked_class_weights(y: Any, sample_weight: Any, class_weight: Any) -> Any:
    """The sample weights that ``class_weight`` gives, with Keras' errors."""
    if sample_weight is not None:
        raise ValueError("You cannot `class_weight` and `sample_weight` at the same time.")
    if is_nested(y) and not (isinstance(y, (list, tuple)) and len(y) == 1):
        raise ValueError("`class_weight` is only supported for Models with a single output.")
    if isinstance(y, (list, tuple)):
        y = y[0]
    return class_weight_to_sample_weights(y, class_weight)


def _raise_unsupported_arg(arg_name: str, description: str, input_type: str) -> None:
    raise ValueError(f"When providing `x` as a {input_type}, `{arg_name}` should not be "
                     f"passed. Instead, {description} should be included as part of the "
                     f"{input_type}.")


def _standardize_batch(batch: Any, source: str) -> Batch:
    """A batch from a generator or a PyDataset as ``(x, y, sample_weight)``
    of arrays."""
    if isinstance(batch, (tuple, list)) and not 1 <= len(batch) <= 3 or not isinstance(
            batch, (tuple, list, dict)) and not is_array_like(batch):
        raise ValueError(f"{source} must yield `x`, `(x,)`, `(x, y)` or "
                         f"`(x, y, sample_weight)`, received {str(batch)[:100]!r} of type "
                         f"{type(batch).__name__}.")
    if isinstance(batch, list):
        batch = tuple(batch)
    x, y, sw = unpack_x_y_sample_weight(batch)
    return as_arrays(x, "x"), as_arrays(y, "y"), as_arrays(sw, "sample_weight")


# ----------------------------------------------------------------------------
# adapters


class DataAdapter:
    """Batches ``(x, y, sample_weight)`` from one kind of input."""

    #: Batches in one pass over the data, or None when unknown (a generator).
    num_batches: int | None = None

    def iterator(self) -> Iterator[Batch]:
        """A fresh pass over the data (a generator continues where it is)."""
        raise NotImplementedError

    def on_epoch_begin(self) -> None:
        """Called before every epoch."""

    def on_epoch_end(self) -> None:
        """Called after every epoch."""


class ArrayDataAdapter(DataAdapter):
    """NumPy arrays cut into batches of ``batch_size`` rows (Keras'
    ``ArrayDataAdapter``). Without ``batch_size``, ``ceil(n / steps)`` rows
    when ``steps`` is given, else 32. ``shuffle=True`` draws a new order each
    pass from fastconv's seeded generator."""

    def __init__(self, x: Any, y: Any = None, sample_weight: Any = None,
                 batch_size: int | None = None, steps: int | None = None,
                 shuffle: bool = False, class_weight: Any = None) -> None:
        x = as_arrays(x, "x")
        y = as_arrays(y, "y")
        sample_weight = as_arrays(sample_weight, "sample_weight")
        samplewise = sample_weight is None or is_nested(sample_weight) or (
            sample_weight.ndim == 1 or sample_weight.ndim == 2 and sample_weight.shape[1] == 1)
        if is_nested(y) and not samplewise:
            raise ValueError(
                "For a model with multiple outputs, when providing a single "
                "`sample_weight` array, it should only have one scalar score per "
                "sample (i.e. shape `(num_samples,)`). If you want to use non-scalar "
                "sample weights, pass a `sample_weight` argument with one array per "
                "model output.")
        if class_weight is not None:
            sample_weight = checked_class_weights(y, sample_weight, class_weight)
        sizes = {"x": [len(a) for a in leaves(x)], "y": [len(a) for a in leaves(y)],
                 "sample_weight": [len(a) for a in leaves(sample_weight)]}
        distinct = {n for ns in sizes.values() for n in ns}
        if len(distinct) > 1:
            detail = ", ".join(f"'{k}' sizes: {v}" for k, v in sizes.items() if v)
            raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the "
                             f"same number of samples. {detail}.")
        self.n_samples = distinct.pop() if distinct else 0
        if not batch_size:
            batch_size = math.ceil(self.n_samples / steps) if steps else 32
        self.batch_size = max(int(batch_size), 1)
        self.num_batches = math.ceil(self.n_samples / self.batch_size)
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.shuffle = shuffle

    def iterator(self) -> Iterator[Batch]:
        order = (_random.generator().permutation(self.n_samples) if self.shuffle
                 else np.arange(self.n_samples))
        for step in range(self.num_batches):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            if not self.shuffle:
                idx = slice(int(idx[0]), int(idx[-1]) + 1)  # views, no copies
            yield take_rows(self.x, idx), take_rows(self.y, idx), take_rows(self.sample_weight, idx)


class GeneratorDataAdapter(DataAdapter):
    """A Python generator or iterator of batches (Keras'
    ``GeneratorDataAdapter``). It is consumed once: each epoch continues
    where the last one stopped."""

    def __init__(self, generator: Any) -> None:
        self._generator = iter(generator)

    def iterator(self) -> Iterator[Batch]:
        for batch in self._generator:
            yield _standardize_batch(batch, "A generator passed as `x`")


class PyDatasetAdapter(DataAdapter):
    """A ``PyDataset`` read by index (Keras' ``PyDatasetAdapter``).

    With ``shuffle`` the order of the batches changes every epoch (the
    batches themselves are the dataset's). With ``workers > 1`` batches are
    loaded ahead by a thread pool, at most ``max_queue_size`` at a time, and
    handed over in index order, so training sees the same sequence as with
    one worker.
    """

    def __init__(self, dataset: PyDataset, class_weight: Any = None,
                 shuffle: bool = False) -> None:
        self.dataset = dataset
        self.class_weight = class_weight
        self.shuffle = shuffle
        self.workers = dataset.workers
        self.max_queue_size = dataset.max_queue_size
        # Threads either way: forked processes would give the same batches
        # at the price of pickling the dataset.
        self.use_multiprocessing = dataset.use_multiprocessing
        self._epoch = 0  # seeds the batch order, as Keras
        n = dataset.num_batches
        self.num_batches = None if n is None else int(n)

    def _batch(self, index: int) -> Batch:
        x, y, sw = _standardize_batch(self.dataset[index], "PyDataset.__getitem__()")
        if self.class_weight is not None:
            if sw is not None:
                raise ValueError("You cannot specify `class_weight` and `sample_weight` at "
                                 "the same time.")
            sw = checked_class_weights(y, None, self.class_weight)
        return x, y, sw

    def _indices(self) -> Iterator[int]:
        if self.num_batches is None:
            return itertools.count()
        indices = list(range(self.num_batches))
        if self.shuffle:  # Keras' order: seeded by the epoch count
            random.Random(self._epoch).shuffle(indices)
        return iter(indices)

    def iterator(self) -> Iterator[Batch]:
        indices = self._indices()
        if self.workers <= 1:
            for i in indices:
                yield self._batch(i)
            return
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            pending: collections.deque = collections.deque()
            try:
                for i in itertools.islice(indices, self.max_queue_size):
                    pending.append(pool.submit(self._batch, i))
                while pending:
                    batch = pending.popleft().result()
                    for i in itertools.islice(indices, 1):
                        pending.append(pool.submit(self._batch, i))
                    yield batch
            finally:  # an epoch cut short by steps_per_epoch drops what was loaded ahead
                for future in pending:
                    future.cancel()

    def on_epoch_begin(self) -> None:
        self.dataset.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.dataset.on_epoch_end()
        self._epoch += 1


def get_data_adapter(x: Any, y: Any = None, sample_weight: Any = None,
                     batch_size: int | None = None, steps: int | None = None,
                     shuffle: bool = False, class_weight: Any = None) -> DataAdapter:
    """The adapter for ``x`` (with ``y`` and ``sample_weight`` for arrays),
    with Keras' errors for arguments that the kind of data does not take."""
    if isinstance(x, DataAdapter):
        return x
    if x is None:
        raise ValueError("Invalid value for argument `x`: expected " + _SUPPORTED +
                         ", received None.")
    if isinstance(x, PyDataset):
        _no_array_arguments(y, sample_weight, batch_size, "PyDataset")
        if x.num_batches is None and shuffle:
            warnings.warn("`shuffle=True` was passed, but will be ignored since the data "
                          "`x` was provided as an infinite PyDataset. The PyDataset is "
                          "expected to already be shuffled.", stacklevel=3)
        return PyDatasetAdapter(x, class_weight=class_weight, shuffle=shuffle)
    if isinstance(x, types.GeneratorType) or (
            hasattr(x, "__next__") and hasattr(x, "__iter__")):
        _no_array_arguments(y, sample_weight, batch_size, "generator")
        if class_weight is not None:
            raise ValueError("Argument `class_weight` is not supported for Python generator "
                             f"inputs. Received: class_weight={class_weight!r}")
        if shuffle:
            warnings.warn("`shuffle=True` was passed, but will be ignored since the data "
                          "`x` was provided as a generator. The generator is expected to "
                          "yield already-shuffled data.", stacklevel=3)
        return GeneratorDataAdapter(x)
    for name, value in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        bad = [leaf for leaf in leaves(value) if not is_array_like(leaf)
               and not isinstance(leaf, (list, tuple))]
        if bad:
            raise TypeError(f"Invalid value for argument `{name}`: expected {_SUPPORTED}; "
                            f"received an object of type {type(bad[0]).__module__}."
                            f"{type(bad[0]).__qualname__}.")
    return ArrayDataAdapter(x, y, sample_weight, batch_size=batch_size, steps=steps,
                            shuffle=shuffle, class_weight=class_weight)


def _no_array_arguments(y: Any, sample_weight: Any, batch_size: Any, input_type: str) -> None:
    if y is not None:
        _raise_unsupported_arg("y", "the targets", input_type)
    if sample_weight is not None:
        _raise_unsupported_arg("sample_weights", "the sample weights", input_type)
    if batch_size is not None:
        raise ValueError(f"Invalid value for argument `batch_size`: do not specify the "
                         f"`batch_size` if your data `x` is a {input_type} (it yields whole "
                         f"batches); received batch_size={batch_size!r}.")


# ----------------------------------------------------------------------------
# validation


def check_validation_freq(validation_freq: Any) -> None:
    if isinstance(validation_freq, bool) or not (
            isinstance(validation_freq, (int, np.integer)) and validation_freq >= 1
            or isinstance(validation_freq, (list, tuple))):
        raise ValueError(f"Invalid value for argument `validation_freq`: expected a positive "
                         f"int or a list of epochs, received validation_freq={validation_freq!r}.")


def should_eval(epoch: int, validation_freq: Any) -> bool:
    """Keras' rule: epochs counted from 1; an int is a period, a list the epochs."""
    if isinstance(validation_freq, (list, tuple)):
        return epoch + 1 in validation_freq
    return (epoch + 1) % int(validation_freq) == 0


def train_validation_split(x: Any, y: Any, sample_weight: Any,
                           validation_split: float) -> tuple[tuple, tuple]:
    """The last ``validation_split`` of the samples held out, before any
    shuffling, as Keras (arrays only)."""
    data = (x, y, sample_weight)
    for leaf in leaves(data):
        if not is_array_like(leaf) or isinstance(leaf, (int, float)):
            raise ValueError("`validation_split` is only supported for Tensors or NumPy "
                             "arrays. Found incompatible type in the input: "
                             f"{type(leaf)}")
    x = as_arrays(x, "x")
    y = as_arrays(y, "y")
    sample_weight = as_arrays(sample_weight, "sample_weight")
    n = len(leaves(x)[0]) if leaves(x) else 0
    split = math.floor(n * (1.0 - validation_split))
    if split == 0 or split == n:
        raise ValueError(f"Training data contains {n} samples, which is not sufficient to "
                         "split it into a validation and training set as specified by "
                         f"`validation_split={validation_split}`. Either provide more data, "
                         "or a different value for the `validation_split` argument.")
    head, tail = slice(None, split), slice(split, None)
    return ((take_rows(x, head), take_rows(y, head), take_rows(sample_weight, head)),
            (take_rows(x, tail), take_rows(y, tail), take_rows(sample_weight, tail)))


# ----------------------------------------------------------------------------
# epochs


class EpochIterator:
    """Steps ``(step, batch)`` of one epoch after another over an adapter.

    With ``steps`` (``steps_per_epoch``), each epoch takes that many batches
    and the next epoch continues the same pass; when the data runs out, a
    warning is given and the epoch ends early (Keras' "Your input ran out of
    data"). Without it, an epoch is one whole pass; a generator's length is
    learnt from its first pass.
    """

    def __init__(self, adapter: DataAdapter, steps: int | None = None) -> None:
        self.adapter = adapter
        self.steps = steps
        self._iterator: Iterator[Batch] | None = None
        self._seen = 0
        self._known = adapter.num_batches
        self.exhausted = False

    @property
    def num_batches(self) -> int | None:
        return self.steps or self._known

    def reset(self) -> None:
        """Start the next epoch on a fresh pass (Keras calls the data's
        ``on_epoch_end`` here too)."""
        self._iterator = None
        self._seen = 0
        self.adapter.on_epoch_end()

    def _ran_out(self) -> None:
        warnings.warn("Your input ran out of data; interrupting training. Make sure that "
                      "your dataset or generator can generate at least "
                      "`steps_per_epoch * epochs` batches.", stacklevel=4)

    def epoch(self) -> Iterator[tuple[int, Batch]]:
        self.adapter.on_epoch_begin()
        known = self.adapter.num_batches
        if self._iterator is None or self.steps is None:
            self._iterator, self._seen = self.adapter.iterator(), 0
        limit = self.steps or known
        step = 0
        while limit is None or step < limit:
            if known and self._seen >= known:
                if self.steps:
                    self._ran_out()
                break
            try:
                batch = next(self._iterator)
            except StopIteration:
                if self._known is None:
                    self._known = self._seen
                self.exhausted = self._seen == 0 or bool(self.steps)
                if self.steps or self._seen == 0:
                    self._ran_out()
                self._iterator = None
                break
            self._seen += 1
            yield step, batch
            step += 1
        if known and self._seen >= known:
            self._iterator = None
        self.adapter.on_epoch_end()

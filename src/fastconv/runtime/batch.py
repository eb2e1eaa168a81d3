"""The batch chunks every weight gradient is summed over.

A batch of ``n`` rows is cut into ``G = min(n, CHUNKS)`` contiguous chunks,
chunk ``j`` holding rows ``[n * j // G, n * (j + 1) // G)``. Each op that sums
over the batch (a weight or bias gradient) sums each chunk alone, row
after row, and adds the chunks' sums in chunk order. Random layers draw
each chunk's numbers from a generator of its own. The bits of a training
step then depend on the chunks, not on how the work is shared out: threads
inside a kernel, or MPI ranks that each run some chunks of a global batch
(``fastconv.distribute``).

A rank running chunk ``j`` of a global batch of ``n`` rows on its own enters
``chunk_of(n, j)``. Inside it, the batch an op sees is that one chunk:
``weight_chunks`` is 1, and losses divide by the global ``n``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CHUNKS = 16
"""Chunks of a batch (fewer when the batch has fewer rows)."""


def chunk_bounds(n: int) -> list[tuple[int, int]]:
    """The rows ``[begin, end)`` of each chunk of a batch of ``n`` rows."""
    g = min(n, CHUNKS)
    return [(n * j // g, n * (j + 1) // g) for j in range(g)]


@dataclass(frozen=True)
class _Chunk:
    rows: int   # rows of the global batch
    index: int  # the chunk this process runs


_current: list[_Chunk] = []


@contextlib.contextmanager
def chunk_of(rows: int, index: int) -> Iterator[None]:
    """Run the enclosed forward and backward passes as chunk ``index`` of a
    global batch of ``rows`` rows."""
    bounds = chunk_bounds(rows)
    if not 0 <= index < len(bounds):
        raise ValueError(f"Invalid value for argument `index`: a batch of {rows} rows has "
                         f"{len(bounds)} chunks, received index={index}.")
    _current.append(_Chunk(rows, index))
    try:
        yield
    finally:
        _current.pop()


def in_chunk() -> bool:
    """Whether the ops run one chunk of a larger batch."""
    return bool(_current)


def weight_chunks(n: int) -> int:
    """How many chunks an op cuts a batch of ``n`` rows into."""
    return 1 if _current else min(n, CHUNKS)


def row_ranges(n: int) -> list[tuple[int, int]]:
    """The chunks, as row ranges, of the ``n`` rows an op holds."""
    return [(0, n)] if _current or n == 0 else chunk_bounds(n)


def global_rows(n: int) -> int:
    """The rows of the whole batch that ``n`` local rows belong to (the
    divisor of a mean over the batch)."""
    return _current[-1].rows if _current else n


def chunk_indices(n: int) -> range:
    """The global indices of the chunks of the ``n`` rows an op holds."""
    if _current:
        return range(_current[-1].index, _current[-1].index + 1)
    return range(min(n, CHUNKS))


def matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` (``x`` of shape ``(rows, ..., K)``, ``w`` 2-D) one chunk at
    a time. BLAS may round a row differently with another number of rows,
    so each chunk gets the call it would get on its own."""
    ranges = row_ranges(len(x)) if x.ndim > 1 else [(0, len(x))]
    if len(ranges) == 1:
        return x @ w
    out = np.empty((*x.shape[:-1], w.shape[-1]), dtype=np.result_type(x, w))
    for b, e in ranges:
        np.matmul(x[b:e], w, out=out[b:e])
    return out


def matmul_rows_t(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``x.T @ g`` summed over the rows of 2-D ``x`` and ``g`` by chunks:
    the gradient of ``w`` in ``x @ w``."""
    return fold([x[b:e].T @ g[b:e] for b, e in row_ranges(len(x))])


def fold(parts: list) -> np.ndarray:
    """``parts[0] + parts[1] + ...`` in that order: the chunks' sums added."""
    total = np.array(parts[0], copy=True)
    for p in parts[1:]:
        total += p
    return total


def sum_rows(a: np.ndarray, axes: tuple[int, ...] = (), keepdims: bool = False
             ) -> np.ndarray:
    """The sum of ``a`` over its first axis (the batch) and ``axes``, by
    chunks: each chunk's rows summed alone, the chunks' sums added in chunk
    order (the sum a weight gradient is). The batch axis is removed; with
    ``keepdims`` the other summed axes stay, of size 1."""
    a = np.asarray(a)
    axes = (0, *sorted({ax % a.ndim for ax in axes} - {0}))

    def part(rows: np.ndarray) -> np.ndarray:
        return np.sum(rows, axis=axes, keepdims=True)[0] if keepdims else np.sum(rows, axis=axes)

    return fold([part(a[b:e]) for b, e in row_ranges(len(a))])

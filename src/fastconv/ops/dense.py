"""The dense layer's products on the compiled kernels (``_kernels/dense.pyx``).

``linear(x, w, b)`` is ``x @ w + b``, ``linear_input_gradient(dz, w)`` is
``dz @ w.T`` and ``linear_weight_gradient(x, dz)`` is ``x.T @ dz`` summed by
the batch's chunks (``fastconv.runtime.batch``), on 2-D float32 or float64
arrays of one dtype. Each result element is one accumulator over its terms
in a fixed order, so a row of a product is the same bits whatever the other
rows (a chunk run alone gives what it gives inside its batch) and whatever
the thread count. They replace BLAS for the dense layer: BLAS rounds a row
differently with another number of rows, so an exact chunked product needs
one BLAS call per chunk, and on the small matrices of a CNN's head the calls
cost more than the arithmetic.

The columns are the vector lanes: ``w`` (and ``dz`` for the weight
gradient) are copied with zero columns up to a multiple of the vector width
where they are not one already.
"""

from __future__ import annotations

import numpy as np

from fastconv._kernels import dense as _dense
from fastconv.runtime import batch as _batch
from fastconv.runtime import settings as _settings

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Multiply-adds a thread should have before another one is woken: waking a
# sleeping worker costs tens of microseconds (measured: 2 threads lost up to
# 32x1600x128, won at 256x1600x128).
_WORK_PER_THREAD = 1 << 23


def supported(*arrays: np.ndarray) -> bool:
    """Whether the kernels take these arrays: one float dtype, 2-D."""
    dtype = arrays[0].dtype
    return dtype in _DTYPES and all(a.dtype == dtype and a.ndim == 2 for a in arrays)


def _padded_columns(a: np.ndarray, lanes: int) -> np.ndarray:
    """``a`` (C-contiguous) with zero columns up to a multiple of ``lanes``."""
    cols = a.shape[-1]
    width = -(-cols // lanes) * lanes
    if width == cols:
        return np.ascontiguousarray(a)
    out = np.zeros((*a.shape[:-1], width), dtype=a.dtype)
    out[..., :cols] = a
    return out


def _threads(rows: int, work: int) -> int:
    return _settings.threads_for(min(rows, max(1, work // _WORK_PER_THREAD)))


def _rows_times(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``a @ b (+ bias)`` for 2-D ``a`` (M, K) and ``b`` (K, U)."""
    m, k = a.shape
    u = b.shape[1]
    out = np.empty((m, u), dtype=a.dtype)
    if m == 0 or u == 0:
        return out
    if k == 0:
        out[...] = 0 if bias is None else bias
        return out
    isa = _settings.isa_code()
    lanes = _dense.lanes(isa, a.dtype.itemsize)
    _dense.rows_times_matrix(out, np.ascontiguousarray(a), _padded_columns(b, lanes),
                             None if bias is None else _padded_columns(bias, lanes),
                             isa, _threads(m, m * k * u))
    return out


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``x @ w + b``: ``x`` (M, K), ``w`` (K, U), ``b`` (U,) or None."""
    return _rows_times(x, w, b)


def linear_input_gradient(dz: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``dz @ w.T``: ``dz`` (M, U), ``w`` (K, U)."""
    return _rows_times(dz, np.ascontiguousarray(w.T), None)


def linear_weight_gradient(x: np.ndarray, dz: np.ndarray, batch_rows: int | None = None
                           ) -> np.ndarray:
    """``x.T @ dz`` summed by the chunks of the batch: ``x`` (M, K), ``dz``
    (M, U), whose M rows are ``batch_rows`` samples of M / batch_rows rows
    each (default: one row a sample). Each chunk's rows are added in row
    order, then the chunks' sums in chunk order."""
    m, k = x.shape
    u = dz.shape[1]
    rows = m if batch_rows is None else batch_rows
    per_sample = m // rows if rows else 0
    dw = np.zeros((k, u), dtype=x.dtype)
    if m == 0 or k == 0 or u == 0:
        return dw
    bounds = np.array([0] + [e * per_sample for _, e in _batch.row_ranges(rows)],
                      dtype=np.int64)
    isa = _settings.isa_code()
    lanes = _dense.lanes(isa, x.dtype.itemsize)
    _dense.weight_gradient(dw, np.ascontiguousarray(x), _padded_columns(dz, lanes), bounds,
                           isa, _threads(k, m * k * u))
    return dw

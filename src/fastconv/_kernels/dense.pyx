# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the dense layer's kernels of src_c/dense.c.

C micro-kernel (a block of rows, per dtype and instruction set) -> OpenMP
loop here (GIL released, one parallel region per call, a static split of
independent rows) -> fastconv.ops.dense (validation, padding, allocation).

Arrays arrive checked and C-contiguous, outputs first. ``b``, ``bias`` and
``dz`` have ``ub`` columns, a multiple of ``lanes(isa, itemsize)``, padded
with zeros past the ``u`` columns the results keep. Every output element is
computed by one thread in an order fixed by the shapes alone, so results
are bitwise identical for any thread count, and a row of a product does not
depend on the other rows.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastconv._kernels.kernels cimport fc_last_team_size, fc_record_team_size


cdef extern from "dense.h" nogil:
    int fc_dense_lanes(int isa, int itemsize)
    void fc_dense_rows_f32(int isa, float *out, const float *a, const float *b,
                           const float *bias, int64_t k, int64_t u, int64_t ub,
                           int64_t row_begin, int64_t row_end)
    void fc_dense_rows_f64(int isa, double *out, const double *a, const double *b,
                           const double *bias, int64_t k, int64_t u, int64_t ub,
                           int64_t row_begin, int64_t row_end)
    void fc_dense_weight_grad_f32(int isa, float *dw, const float *x, const float *dz,
                                  const int64_t *bounds, int64_t chunks, int64_t k,
                                  int64_t u, int64_t ub, int64_t k_begin, int64_t k_end)
    void fc_dense_weight_grad_f64(int isa, double *dw, const double *x, const double *dz,
                                  const int64_t *bounds, int64_t chunks, int64_t k,
                                  int64_t u, int64_t ub, int64_t k_begin, int64_t k_end)


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


def lanes(int isa, int itemsize) -> int:
    """Elements of ``itemsize`` bytes in one vector of ``isa``: the
    multiple the padded column counts ``ub`` must be."""
    return fc_dense_lanes(isa, itemsize)


def rows_times_matrix(floating[:, ::1] out, const floating[:, ::1] a,
                      const floating[:, ::1] b, const floating[::1] bias, int isa,
                      int n_threads):
    """out (M, U) = a (M, K) b (K, Ub) [+ bias (Ub,)], the first U columns.
    M, K >= 1; ``bias`` may be None."""
    cdef floating *op = &out[0, 0]
    cdef const floating *ap = &a[0, 0]
    cdef const floating *bp = &b[0, 0]
    cdef const floating *biasp = NULL
    cdef int64_t m = a.shape[0], k = a.shape[1], u = out.shape[1], ub = b.shape[1]
    cdef int t
    if bias is not None:
        biasp = &bias[0]
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_dense_rows_f32(isa, op, ap, bp, biasp, k, u, ub, m * t // n_threads,
                                  m * (t + 1) // n_threads)
            else:
                fc_dense_rows_f64(isa, op, ap, bp, biasp, k, u, ub, m * t // n_threads,
                                  m * (t + 1) // n_threads)


def weight_gradient(floating[:, ::1] dw, const floating[:, ::1] x,
                    const floating[:, ::1] dz, const int64_t[::1] bounds, int isa,
                    int n_threads):
    """dw (K, U) = the chunks' x^T dz added in chunk order; chunk c holds
    rows [bounds[c], bounds[c + 1]) of x (M, K) and dz (M, Ub). K >= 1."""
    cdef floating *dwp = &dw[0, 0]
    cdef const floating *xp = &x[0, 0]
    cdef const floating *dzp = &dz[0, 0]
    cdef const int64_t *bp = &bounds[0]
    cdef int64_t chunks = bounds.shape[0] - 1, k = x.shape[1], u = dw.shape[1]
    cdef int64_t ub = dz.shape[1]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_dense_weight_grad_f32(isa, dwp, xp, dzp, bp, chunks, k, u, ub,
                                         k * t // n_threads, k * (t + 1) // n_threads)
            else:
                fc_dense_weight_grad_f64(isa, dwp, xp, dzp, bp, chunks, k, u, ub,
                                         k * t // n_threads, k * (t + 1) // n_threads)

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the batch normalization kernels of src_c/batchnorm.c.

C micro-kernel (one block of chunks, items, rows or runs, per dtype and
instruction set) -> OpenMP loop here (GIL released, one parallel region per
call, static split of independent work) -> fastconv.ops.normalization
(validation, the per-channel coefficients, allocation).

Arrays arrive checked and C-contiguous, x seen as rows (M, C) (channels last)
or as runs (outer, C, inner); outputs come first in every signature. The sums
write one partial sum per chunk or item, each computed by one thread in an
order fixed by the shapes; ``combine`` then adds them in a fixed order, so
results are bitwise identical for any thread count. Optional arrays come with
a flag (``use_dy``, ``use_v``, ``use_q``) and are not read when it is off.
"""
from cython cimport floating
from cython.parallel cimport prange

from fastconv._kernels.kernels cimport fc_last_team_size, fc_record_team_size
from libc.stdint cimport int64_t


cdef extern from "fc_stream.h" nogil:
    int64_t FC_STREAM_MIN_BYTES


cdef extern from "batchnorm.h" nogil:
    int64_t FC_BN_PIECE
    int64_t FC_BN_CHUNK
    void fc_bn_sums_rows_f32(int isa, double *s1, double *s2, const float *dy, const float *x,
                             const float *center, int64_t rows, int64_t c, int64_t chunk_rows,
                             int64_t chunk_begin, int64_t chunk_end)
    void fc_bn_sums_rows_f64(int isa, double *s1, double *s2, const double *dy,
                             const double *x, const double *center, int64_t rows, int64_t c,
                             int64_t chunk_rows, int64_t chunk_begin, int64_t chunk_end)
    void fc_bn_sums_runs_f32(int isa, double *s1, double *s2, const float *dy, const float *x,
                             const float *center, int64_t c, int64_t inner, int64_t piece,
                             int64_t item_begin, int64_t item_end)
    void fc_bn_sums_runs_f64(int isa, double *s1, double *s2, const double *dy,
                             const double *x, const double *center, int64_t c, int64_t inner,
                             int64_t piece, int64_t item_begin, int64_t item_end)
    void fc_bn_apply_rows_f32(int isa, float *out, const float *u, const float *a,
                              const float *v, const float *p, const float *q, int64_t c,
                              int64_t row_begin, int64_t row_end, int stream)
    void fc_bn_apply_rows_f64(int isa, double *out, const double *u, const double *a,
                              const double *v, const double *p, const double *q, int64_t c,
                              int64_t row_begin, int64_t row_end, int stream)
    void fc_bn_apply_runs_f32(int isa, float *out, const float *u, const float *a,
                              const float *v, const float *p, const float *q, int64_t c,
                              int64_t inner, int64_t run_begin, int64_t run_end, int stream)
    void fc_bn_apply_runs_f64(int isa, double *out, const double *u, const double *a,
                              const double *v, const double *p, const double *q, int64_t c,
                              int64_t inner, int64_t run_begin, int64_t run_end, int stream)
    void fc_bn_combine(double *t1, double *t2, const double *s1, const double *s2, int64_t a,
                       int64_t c, int64_t b)

PIECE = FC_BN_PIECE
CHUNK = FC_BN_CHUNK
STREAM_MIN_BYTES = FC_STREAM_MIN_BYTES


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


def sums_rows(double[:, ::1] s1, double[:, ::1] s2, const floating[:, ::1] dy,
              const floating[:, ::1] x, const floating[::1] center, bint use_dy,
              int64_t chunk_rows, int isa, int n_threads):
    """s1, s2 (chunks, C): per chunk of ``chunk_rows`` rows of x (M, C), the sums
    of u and u * (x - center), u = dy (M, C) if ``use_dy`` else x - center."""
    cdef double *s1p = &s1[0, 0]
    cdef double *s2p = &s2[0, 0]
    cdef const floating *dyp = &dy[0, 0] if use_dy else NULL
    cdef const floating *xp = &x[0, 0]
    cdef const floating *cp = &center[0]
    cdef int64_t rows = x.shape[0], c = x.shape[1], chunks = s1.shape[0]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bn_sums_rows_f32(isa, s1p, s2p, dyp, xp, cp, rows, c, chunk_rows,
                                    chunks * t // n_threads, chunks * (t + 1) // n_threads)
            else:
                fc_bn_sums_rows_f64(isa, s1p, s2p, dyp, xp, cp, rows, c, chunk_rows,
                                    chunks * t // n_threads, chunks * (t + 1) // n_threads)


def sums_runs(double[:, :, ::1] s1, double[:, :, ::1] s2, const floating[:, :, ::1] dy,
              const floating[:, :, ::1] x, const floating[::1] center, bint use_dy,
              int64_t piece, int isa, int n_threads):
    """s1, s2 (outer, C, pieces): the same sums per piece of ``piece`` values of
    each run of x (outer, C, inner)."""
    cdef double *s1p = &s1[0, 0, 0]
    cdef double *s2p = &s2[0, 0, 0]
    cdef const floating *dyp = &dy[0, 0, 0] if use_dy else NULL
    cdef const floating *xp = &x[0, 0, 0]
    cdef const floating *cp = &center[0]
    cdef int64_t c = x.shape[1], inner = x.shape[2]
    cdef int64_t items = s1.shape[0] * s1.shape[1] * s1.shape[2]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bn_sums_runs_f32(isa, s1p, s2p, dyp, xp, cp, c, inner, piece,
                                    items * t // n_threads, items * (t + 1) // n_threads)
            else:
                fc_bn_sums_runs_f64(isa, s1p, s2p, dyp, xp, cp, c, inner, piece,
                                    items * t // n_threads, items * (t + 1) // n_threads)


def combine(double[::1] t1, double[::1] t2, const double[:, :, ::1] s1,
            const double[:, :, ::1] s2):
    """t1, t2 (C) = sums of s1, s2 (A, C, B) over A, then B, in that order."""
    with nogil:
        fc_bn_combine(&t1[0], &t2[0], &s1[0, 0, 0], &s2[0, 0, 0], s1.shape[0], s1.shape[1],
                      s1.shape[2])


def apply_rows(floating[:, ::1] out, const floating[:, ::1] u, const floating[::1] a,
               const floating[:, ::1] v, const floating[::1] p, const floating[::1] q,
               bint use_v, bint use_q, int isa, int n_threads):
    """out (M, C) = a * u + p * v + q, per channel (a, p, q (C)); the p * v term
    only if ``use_v``, the q term only if ``use_q``. Outputs of at least
    FC_STREAM_MIN_BYTES are written with streaming stores."""
    cdef floating *op = &out[0, 0]
    cdef const floating *up = &u[0, 0]
    cdef const floating *ap = &a[0]
    cdef const floating *vp = &v[0, 0] if use_v else NULL
    cdef const floating *pp = &p[0] if use_v else NULL
    cdef const floating *qp = &q[0] if use_q else NULL
    cdef int64_t rows = out.shape[0], c = out.shape[1]
    cdef int stream = rows * c * <int64_t>sizeof(floating) >= FC_STREAM_MIN_BYTES
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bn_apply_rows_f32(isa, op, up, ap, vp, pp, qp, c, rows * t // n_threads,
                                     rows * (t + 1) // n_threads, stream)
            else:
                fc_bn_apply_rows_f64(isa, op, up, ap, vp, pp, qp, c, rows * t // n_threads,
                                     rows * (t + 1) // n_threads, stream)


def apply_runs(floating[:, :, ::1] out, const floating[:, :, ::1] u, const floating[::1] a,
               const floating[:, :, ::1] v, const floating[::1] p, const floating[::1] q,
               bint use_v, bint use_q, int isa, int n_threads):
    """The same for out, u, v (outer, C, inner)."""
    cdef floating *op = &out[0, 0, 0]
    cdef const floating *up = &u[0, 0, 0]
    cdef const floating *ap = &a[0]
    cdef const floating *vp = &v[0, 0, 0] if use_v else NULL
    cdef const floating *pp = &p[0] if use_v else NULL
    cdef const floating *qp = &q[0] if use_q else NULL
    cdef int64_t c = out.shape[1], inner = out.shape[2]
    cdef int64_t runs = out.shape[0] * c
    cdef int stream = runs * inner * <int64_t>sizeof(floating) >= FC_STREAM_MIN_BYTES
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bn_apply_runs_f32(isa, op, up, ap, vp, pp, qp, c, inner,
                                     runs * t // n_threads, runs * (t + 1) // n_threads, stream)
            else:
                fc_bn_apply_runs_f64(isa, op, up, ap, vp, pp, qp, c, inner,
                                     runs * t // n_threads, runs * (t + 1) // n_threads, stream)

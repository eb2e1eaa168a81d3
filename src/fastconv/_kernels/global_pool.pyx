# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the global pooling kernels of src_c/global_pool.c.

C micro-kernel (one block of work items or rows, per dtype and instruction
set) -> OpenMP loop here (GIL released, one parallel region per call, static
split of independent work) -> fastconv.ops.resample (validation, allocation,
the choice of channel block).

Arrays arrive checked, C-contiguous and flattened to x (N, P, C), P the
spatial positions of one image; outputs come first in every signature. The
forward passes split the (image, channel block) items of y (N, C) into one
contiguous range per thread; the gradients split the N * P rows of dx. Every
output element is computed by one thread in an order fixed by the shapes
alone, so results are bitwise identical for any thread count.
"""
from cython cimport floating
from cython.parallel cimport prange

from fastconv._kernels.kernels cimport fc_last_team_size, fc_record_team_size
from fastconv._kernels.resample cimport (
    fc_global_avg_pool_forward_f32, fc_global_avg_pool_forward_f64,
    fc_global_avg_pool_backward_f32, fc_global_avg_pool_backward_f64,
    fc_global_max_pool_forward_f32, fc_global_max_pool_forward_f64,
    fc_global_max_pool_backward_f32, fc_global_max_pool_backward_f64,
)
from libc.stdint cimport int32_t, int64_t


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


def global_avg_pool_forward(floating[:, ::1] y, const floating[:, :, ::1] x, int64_t block,
                            int isa, int n_threads):
    """y (N, C) = mean over P of x (N, P, C), in items of ``block`` channels.
    N, P, C >= 1."""
    cdef floating *yp = &y[0, 0]
    cdef const floating *xp = &x[0, 0, 0]
    cdef int64_t p = x.shape[1], c = x.shape[2]
    cdef int64_t items = x.shape[0] * ((c + block - 1) // block)
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_global_avg_pool_forward_f32(isa, yp, xp, p, c, block, items * t // n_threads,
                                               items * (t + 1) // n_threads)
            else:
                fc_global_avg_pool_forward_f64(isa, yp, xp, p, c, block, items * t // n_threads,
                                               items * (t + 1) // n_threads)


def global_avg_pool_backward(floating[:, :, ::1] dx, const floating[:, ::1] dy, int isa,
                             int n_threads):
    """dx (N, P, C) = dy (N, C) / P on every row. N, P, C >= 1."""
    cdef floating *dxp = &dx[0, 0, 0]
    cdef const floating *dyp = &dy[0, 0]
    cdef int64_t p = dx.shape[1], c = dx.shape[2]
    cdef int64_t rows = dx.shape[0] * p
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_global_avg_pool_backward_f32(isa, dxp, dyp, p, c, rows * t // n_threads,
                                                rows * (t + 1) // n_threads)
            else:
                fc_global_avg_pool_backward_f64(isa, dxp, dyp, p, c, rows * t // n_threads,
                                                rows * (t + 1) // n_threads)


def global_max_pool_forward(floating[:, ::1] y, int32_t[:, ::1] argmax,
                            const floating[:, :, ::1] x, int64_t block, int isa,
                            int n_threads):
    """y, argmax (N, C) = max over P of x (N, P, C) and its first position, in
    items of ``block`` channels. N, P, C >= 1, P < 2**31."""
    cdef floating *yp = &y[0, 0]
    cdef int32_t *ap = &argmax[0, 0]
    cdef const floating *xp = &x[0, 0, 0]
    cdef int64_t p = x.shape[1], c = x.shape[2]
    cdef int64_t items = x.shape[0] * ((c + block - 1) // block)
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_global_max_pool_forward_f32(isa, yp, ap, xp, p, c, block,
                                               items * t // n_threads,
                                               items * (t + 1) // n_threads)
            else:
                fc_global_max_pool_forward_f64(isa, yp, ap, xp, p, c, block,
                                               items * t // n_threads,
                                               items * (t + 1) // n_threads)


def global_max_pool_backward(floating[:, :, ::1] dx, const floating[:, ::1] dy,
                             const int32_t[:, ::1] argmax, int isa, int n_threads):
    """dx (N, P, C) = dy (N, C) at each channel's argmax (N, C), else 0.
    N, P, C >= 1."""
    cdef floating *dxp = &dx[0, 0, 0]
    cdef const floating *dyp = &dy[0, 0]
    cdef const int32_t *ap = &argmax[0, 0]
    cdef int64_t p = dx.shape[1], c = dx.shape[2]
    cdef int64_t rows = dx.shape[0] * p
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_global_max_pool_backward_f32(isa, dxp, dyp, ap, p, c,
                                                rows * t // n_threads,
                                                rows * (t + 1) // n_threads)
            else:
                fc_global_max_pool_backward_f64(isa, dxp, dyp, ap, p, c,
                                                rows * t // n_threads,
                                                rows * (t + 1) // n_threads)

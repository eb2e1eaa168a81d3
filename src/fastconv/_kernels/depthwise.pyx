# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the depthwise-convolution kernels of src_c/depthwise.c.

C micro-kernel (one block of rows or images, per dtype and instruction set)
-> OpenMP loop here (GIL released, one parallel region per call, static
split of independent work) -> fastconv.ops.convolution (validation, views).

Arrays arrive as 4-D views with depth merged into the first spatial axis
(x (N, D * H, W, C), y and dy (N, OD * OH, OW, C * m)) and kernels as
(KD * KH * KW, C * m). Work is split so no two threads write the same
memory: the forward pass over the N * OD * OH output rows, the input
gradient over the N * D * H input rows, and the weight and bias gradients
over conv.pyx's fixed batch chunks, whose partial sums are then added in
chunk order, so results are bitwise identical for any thread count.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange

import numpy as np

from fastconv._kernels.conv import WEIGHT_GRAD_CHUNKS
from fastconv._kernels.kernels cimport (
    conv_geometry, fc_conv_geom, fc_last_team_size, fc_omp_barrier, fc_record_team_size,
    sum_parts_share,
    fc_depthwise_forward_f32, fc_depthwise_forward_f64,
    fc_depthwise_backward_data_f32, fc_depthwise_backward_data_f64,
    fc_depthwise_backward_weight_f32, fc_depthwise_backward_weight_f64,
)
from libc.stdint cimport int64_t


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


def depthwise_forward(const floating[:, :, :, ::1] x, const floating[:, ::1] w,
                      const floating[::1] b, floating[:, :, :, ::1] y,
                      geom, bint relu, int isa, int n_threads):
    """y = depthwise conv(x, w) + b, then max(y, 0) when ``relu``. ``b`` may
    be None. N >= 1."""
    cdef fc_conv_geom g = conv_geometry(geom)
    g.relu = relu
    cdef const floating *bp = NULL
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0]
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef int64_t rows = g.n * g.od * g.oh
    cdef int t
    if b is not None:
        bp = &b[0]
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_depthwise_forward_f32(isa, &g, xp, wp, bp, yp, rows * t // n_threads,
                                         rows * (t + 1) // n_threads)
            else:
                fc_depthwise_forward_f64(isa, &g, xp, wp, bp, yp, rows * t // n_threads,
                                         rows * (t + 1) // n_threads)


def depthwise_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                       const floating[:, ::1] w, floating[:, :, :, ::1] dx,
                       floating[:, ::1] dw, floating[::1] db, geom, int isa, int n_threads,
                       int weight_chunks=WEIGHT_GRAD_CHUNKS):
    """Gradients of depthwise_forward into dx, dw and db; a None output is
    not computed. N >= 1. The weight gradients are summed over
    ``min(N, weight_chunks)`` chunks, as conv2d_backward's."""
    cdef fc_conv_geom g = conv_geometry(geom)
    cdef const floating *dyp = &dy[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0]
    cdef floating *dxp = NULL if dx is None else &dx[0, 0, 0, 0]
    cdef floating *dwp = NULL if dw is None else &dw[0, 0]
    cdef floating *dbp = NULL if db is None else &db[0]
    cdef floating[:, ::1] dw_parts, db_parts
    cdef floating *dw_parts_p = NULL
    cdef floating *db_parts_p = NULL
    cdef int64_t dx_rows = g.n * g.d * g.h
    cdef int64_t w_len = g.kd * g.kh * g.kw * g.c_out
    cdef int64_t n_chunks = min(g.n, max(weight_chunks, 1))
    cdef bint weights = dwp != NULL or dbp != NULL
    cdef int t_dx, c, t_dw, t_db

    dtype = np.asarray(dy).dtype
    if dwp != NULL:
        dw_parts = np.empty((n_chunks, w_len), dtype=dtype)
        dw_parts_p = &dw_parts[0, 0]
    if dbp != NULL:
        db_parts = np.empty((n_chunks, g.c_out), dtype=dtype)
        db_parts_p = &db_parts[0, 0]

    with nogil, parallel(num_threads=n_threads):
        fc_record_team_size()
        if dxp != NULL:
            for t_dx in prange(n_threads, schedule="static"):
                if floating is float:
                    fc_depthwise_backward_data_f32(isa, &g, dyp, wp, dxp,
                                                   dx_rows * t_dx // n_threads,
                                                   dx_rows * (t_dx + 1) // n_threads)
                else:
                    fc_depthwise_backward_data_f64(isa, &g, dyp, wp, dxp,
                                                   dx_rows * t_dx // n_threads,
                                                   dx_rows * (t_dx + 1) // n_threads)
        if weights:
            for c in prange(n_chunks, schedule="static"):
                if floating is float:
                    fc_depthwise_backward_weight_f32(
                        isa, &g, xp, dyp,
                        NULL if dwp == NULL else dw_parts_p + c * w_len,
                        NULL if dbp == NULL else db_parts_p + c * g.c_out,
                        g.n * c // n_chunks, g.n * (c + 1) // n_chunks)
                else:
                    fc_depthwise_backward_weight_f64(
                        isa, &g, xp, dyp,
                        NULL if dwp == NULL else dw_parts_p + c * w_len,
                        NULL if dbp == NULL else db_parts_p + c * g.c_out,
                        g.n * c // n_chunks, g.n * (c + 1) // n_chunks)
            # Cython ends each prange with `nowait`: every chunk's partial sum
            # must be complete before any thread adds them up.
            fc_omp_barrier()
            if dwp != NULL:
                for t_dw in prange(n_threads, schedule="static"):
                    sum_parts_share(dw_parts_p, n_chunks, w_len, dwp, t_dw, n_threads)
            if dbp != NULL:
                for t_db in prange(n_threads, schedule="static"):
                    sum_parts_share(db_parts_p, n_chunks, g.c_out, dbp, t_db, n_threads)

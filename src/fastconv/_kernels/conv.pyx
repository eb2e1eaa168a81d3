# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the direct-convolution kernels of src_c/conv2d.c.

C micro-kernel (one block of rows or images, per dtype and instruction set)
-> OpenMP loop here (GIL released, one parallel region per call, static
split of independent work items) -> fastconv.ops (validation, allocation).

Arguments arrive checked and C-contiguous; outputs are preallocated by the
caller. Work is split so no two threads write the same memory:

- forward: the N * OH output rows, in contiguous blocks, one per thread;
- input gradient: the N * H input rows, likewise;
- weight/bias gradient: the batch is cut into ``min(N, WEIGHT_GRAD_CHUNKS)``
  fixed chunks, each summed into its own slice of a workspace, and the slices
  are then added in chunk order. Neither the chunks nor the order depend on
  the thread count, so results are bitwise identical for any thread count.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange

import numpy as np

from fastconv._kernels.kernels cimport (
    MAX_DATA_PHASES, plan_data_phases, fc_data_phase, fc_data_phases_plan_f32, fc_data_phases_plan_f64,
    fc_conv2d_backward_data_phases_f32, fc_conv2d_backward_data_phases_f64,
    conv_geometry, data_gradient_geometry, fc_conv_geom, fc_last_team_size, fc_omp_barrier,
    fc_record_team_size, sum_parts_share,
    fc_conv2d_forward_f32, fc_conv2d_forward_f64,
    fc_conv2d_backward_data_f32, fc_conv2d_backward_data_f64,
    fc_conv2d_backward_weight_f32, fc_conv2d_backward_weight_f64,
    fc_conv2d_weight_blocks_f32, fc_conv2d_weight_blocks_f64,
    fc_conv2d_backward_weight_blocks_f32, fc_conv2d_backward_weight_blocks_f64,
    fc_relu_backward_f32, fc_relu_backward_f64,
)
from libc.stdint cimport int64_t

# Batch chunks of the weight gradient. Fixed (not the thread count) for
# determinism; the workspace is one copy of the kernel's size (by blocks of
# dw) or min(N, 16) of them (by chunks), see conv2d_backward.
WEIGHT_GRAD_CHUNKS = 16


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


cdef inline void run_data_phases(int isa, const fc_data_phase *plan, int64_t count, int64_t n,
                                 const floating *dy, const floating *kernels,
                                 const floating *b, floating *dx, int64_t part,
                                 int64_t parts) noexcept nogil:
    """Share ``part`` of ``parts`` of the phases' rows for images [0, n)."""
    if floating is float:
        fc_conv2d_backward_data_phases_f32(isa, plan, count, n, dy, kernels, b, dx, part,
                                           parts)
    else:
        fc_conv2d_backward_data_phases_f64(isa, plan, count, n, dy, kernels, b, dx, part,
                                           parts)


def data_gradient_weights(w, bint flip):
    """The kernel as the data gradient reads it, (*kernel_size, C_out, C_in),
    so that its innermost loop runs over contiguous input channels; flipped
    in space when ``flip`` (unit strides: the data gradient is then the
    forward convolution of dy with it, on the blocked forward kernel).
    Spatial axes may come merged (a (KD * KH, KW, ...) view of a 3-D
    kernel): reversing a merged axis reverses each of the axes it holds."""
    w = np.asarray(w)
    if flip:
        w = w[(slice(None, None, -1),) * (w.ndim - 2)]
    return np.ascontiguousarray(np.swapaxes(w, -1, -2))


def conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                   const floating[::1] b, floating[:, :, :, ::1] y,
                   geom, bint relu, int isa, int n_threads, int64_t y_offset=0,
                   tuple y_strides=None):
    """y (N, OH, OW, C_out) = conv(x (N, H, W, C_in), w (KH, KW, C_in, C_out)) + b,
    then max(y, 0) when ``relu``.

    ``b`` may be None. N >= 1. For a 3-D ``geom`` the arrays come as views
    with depth merged into the first spatial axis (x (N, D * H, W, C_in),
    w (KD * KH, KW, C_in, C_out), y (N, OD * OH, OW, C_out)).

    With ``y_strides`` (element strides between images, planes, rows and
    columns), output pixel (n, od, oh, ow) goes to element ``y_offset +
    n * s_n + od * s_d + oh * s_h + ow * s_w`` of y instead, which may then
    be any array holding them all (e.g. every s-th pixel of a larger one).
    """
    cdef fc_conv_geom g = conv_geometry(geom)
    g.relu = relu
    cdef const floating *bp = NULL
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef int64_t rows = g.n * g.od * g.oh
    cdef int t
    if b is not None:
        bp = &b[0]
    if y_strides is not None:
        g.y_sn, g.y_sd, g.y_sh, g.y_sw = y_strides
        yp += y_offset
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_conv2d_forward_f32(isa, &g, xp, wp, bp, yp,
                                      rows * t // n_threads, rows * (t + 1) // n_threads)
            else:
                fc_conv2d_forward_f64(isa, &g, xp, wp, bp, yp,
                                      rows * t // n_threads, rows * (t + 1) // n_threads)


def conv2d_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                    const floating[:, :, :, ::1] w, floating[:, :, :, ::1] dx,
                    floating[:, :, :, ::1] dw, floating[::1] db,
                    geom, int isa, int n_threads, const floating[::1] dx_bias=None,
                    int weight_chunks=WEIGHT_GRAD_CHUNKS):
    """Gradients of conv2d_forward into dx (N, H, W, C_in), dw (KH, KW, C_in, C_out)
    and db (C_out,); a None output is not computed. N >= 1. Arrays of a 3-D
    ``geom`` come with depth merged, as for conv2d_forward. With ``dx_bias``
    (C_in,), dx is the input gradient plus it (a transposed convolution's
    output). A strided input gradient goes by stride phases (DataPhases).
    The weight gradients are summed over ``min(N, weight_chunks)`` chunks
    (1 when this batch is one chunk of a larger one, fastconv.runtime.batch).
    Where the kernel allows it, dw is shared out among the threads by
    blocks of its elements, each chunk's sums added to dw as they are done,
    instead of by chunks whose partial sums of all of dw are added up after
    (less memory traffic for kernels with many weights per pixel; the same
    bits either way).
    """
    cdef fc_conv_geom g = conv_geometry(geom)
    cdef const floating *dyp = &dy[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *dxp = NULL if dx is None else &dx[0, 0, 0, 0]
    cdef floating *dwp = NULL if dw is None else &dw[0, 0, 0, 0]
    cdef floating *dbp = NULL if db is None else &db[0]
    cdef const floating[:, :, :, ::1] wt
    cdef floating[:, ::1] dw_parts, db_parts
    cdef const floating *wtp = NULL
    cdef floating *dw_parts_p = NULL
    cdef floating *db_parts_p = NULL
    cdef int64_t dx_rows = g.n * g.d * g.h
    cdef int64_t w_len = g.kd * g.kh * g.kw * g.c_in * g.c_out
    cdef int64_t n_chunks = min(g.n, max(weight_chunks, 1))
    cdef bint flip = False
    cdef fc_conv_geom gt
    cdef fc_data_phase plan[MAX_DATA_PHASES]
    cdef int64_t n_phases = -1
    cdef floating[::1] phase_kernels
    cdef const floating *pkp = NULL
    cdef const floating *dxbp = NULL if dx_bias is None else &dx_bias[0]
    cdef int t_dx, c, t_dw, t_db
    cdef bint by_blocks = False
    cdef floating[::1] dw_scratch
    cdef floating *dw_scratch_p = NULL

    dtype = np.asarray(dy).dtype
    if dxp != NULL:
        flip = g.stride_d == 1 and g.stride_h == 1 and g.stride_w == 1
        if not flip:
            phase_kernels = np.empty(w_len, dtype=dtype)
            n_phases = plan_data_phases(&g, w, phase_kernels, plan, MAX_DATA_PHASES)
            if n_phases >= 0:
                pkp = &phase_kernels[0]
        if pkp == NULL:
            wt = data_gradient_weights(w, flip)
            wtp = &wt[0, 0, 0, 0]
        if flip:
            gt = data_gradient_geometry(g)
    if dwp != NULL:
        if floating is float:
            by_blocks = fc_conv2d_weight_blocks_f32(isa, &g) > 0
        else:
            by_blocks = fc_conv2d_weight_blocks_f64(isa, &g) > 0
        if by_blocks:
            dw_scratch = np.empty(w_len, dtype=dtype)
            dw_scratch_p = &dw_scratch[0]
        else:
            dw_parts = np.empty((n_chunks, w_len), dtype=dtype)
            dw_parts_p = &dw_parts[0, 0]
    if dbp != NULL:
        db_parts = np.empty((n_chunks, g.c_out), dtype=dtype)
        db_parts_p = &db_parts[0, 0]

    with nogil, parallel(num_threads=n_threads):
        fc_record_team_size()
        if dxp != NULL and pkp != NULL:
            for t_dx in prange(n_threads, schedule="static"):
                run_data_phases(isa, plan, n_phases, g.n, dyp, pkp, dxbp, dxp, t_dx, n_threads)
        elif dxp != NULL and flip:
            for t_dx in prange(n_threads, schedule="static"):
                if floating is float:
                    fc_conv2d_forward_f32(isa, &gt, dyp, wtp, dxbp, dxp,
                                          dx_rows * t_dx // n_threads,
                                          dx_rows * (t_dx + 1) // n_threads)
                else:
                    fc_conv2d_forward_f64(isa, &gt, dyp, wtp, dxbp, dxp,
                                          dx_rows * t_dx // n_threads,
                                          dx_rows * (t_dx + 1) // n_threads)
        elif dxp != NULL:
            for t_dx in prange(n_threads, schedule="static"):
                if floating is float:
                    fc_conv2d_backward_data_f32(isa, &g, dyp, wtp, dxp,
                                                dx_rows * t_dx // n_threads,
                                                dx_rows * (t_dx + 1) // n_threads)
                else:
                    fc_conv2d_backward_data_f64(isa, &g, dyp, wtp, dxp,
                                                dx_rows * t_dx // n_threads,
                                                dx_rows * (t_dx + 1) // n_threads)
        if by_blocks:
            for t_dw in prange(n_threads, schedule="static"):
                if floating is float:
                    fc_conv2d_backward_weight_blocks_f32(isa, &g, xp, dyp, dwp, dw_scratch_p,
                                                         n_chunks, t_dw, n_threads)
                else:
                    fc_conv2d_backward_weight_blocks_f64(isa, &g, xp, dyp, dwp, dw_scratch_p,
                                                         n_chunks, t_dw, n_threads)
        if dbp != NULL or (dwp != NULL and not by_blocks):
            for c in prange(n_chunks, schedule="static"):
                if floating is float:
                    fc_conv2d_backward_weight_f32(
                        isa, &g, xp, dyp,
                        NULL if dw_parts_p == NULL else dw_parts_p + c * w_len,
                        NULL if dbp == NULL else db_parts_p + c * g.c_out,
                        g.n * c // n_chunks, g.n * (c + 1) // n_chunks, 0)
                else:
                    fc_conv2d_backward_weight_f64(
                        isa, &g, xp, dyp,
                        NULL if dw_parts_p == NULL else dw_parts_p + c * w_len,
                        NULL if dbp == NULL else db_parts_p + c * g.c_out,
                        g.n * c // n_chunks, g.n * (c + 1) // n_chunks, 0)
            # Cython ends each prange with `nowait`: every chunk's partial sum
            # must be complete before any thread adds them up.
            fc_omp_barrier()
            if dw_parts_p != NULL:
                for t_dw in prange(n_threads, schedule="static"):
                    sum_parts_share(dw_parts_p, n_chunks, w_len, dwp, t_dw, n_threads)
            if dbp != NULL:
                for t_db in prange(n_threads, schedule="static"):
                    sum_parts_share(db_parts_p, n_chunks, g.c_out, dbp, t_db, n_threads)
    if dxp != NULL and dxbp != NULL and not flip and pkp == NULL:
        np.asarray(dx)[...] += np.asarray(dx_bias)  # (the gather adds no bias)


def relu_backward(const floating[::1] dy, const floating[::1] y, floating[::1] dx,
                  int isa, int n_threads):
    """dx = dy where y > 0, else 0 (flat arrays of one size, dx may be dy)."""
    cdef int64_t size = dy.shape[0]
    cdef const floating *dyp = &dy[0]
    cdef const floating *yp = &y[0]
    cdef floating *dxp = &dx[0]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_relu_backward_f32(isa, dyp, yp, dxp, size * t // n_threads,
                                     size * (t + 1) // n_threads)
            else:
                fc_relu_backward_f64(isa, dyp, yp, dxp, size * t // n_threads,
                                     size * (t + 1) // n_threads)

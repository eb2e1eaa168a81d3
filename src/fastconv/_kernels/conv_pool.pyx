# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops of the fused convolution + max pooling, forward and backward.

A convolution followed by max pooling need not write its full output (nor,
going back, the gradient of that output) to memory and read it back: each
thread works in scratch planes (OH, OW, C_out) of its own, small enough to
stay in its core's cache. Forward, it convolves one image at a time into its
plane and pools it at once. Backward, it takes a group of images (as many
planes as fit in about 512 KiB), writes their convolution output's gradient
into the planes (a gather when the pooling windows are disjoint, else a
scatter-add), then computes their input gradient and adds their weight
gradient from there. Only pooled-size arrays, x and dx reach memory: a
pool-size times less traffic (the first layer of a small CNN writes 5.5 MB
per batch of 64 otherwise, each way). When the windows stop short of the
output's last rows or columns (11 rows pooled by 2 read 10), the planes hold
only the part they read (crop_to_windows): the forward pass does not compute
the rest, the backward pass leaves its zero gradient out of the sums.

Forward, images are split into one contiguous block per thread. Backward,
the weight gradient keeps conv.pyx's fixed batch chunks (each image added to
its chunk's partial sum in image order, the chunks then summed in order).
Each image goes through the same kernels as the separate ops, whose results
depend only on the layer's sizes, so the results are bitwise those of the
separate ops, for any thread count.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

import numpy as np

from fastconv._kernels.conv import WEIGHT_GRAD_CHUNKS, data_gradient_weights
from fastconv._kernels.kernels cimport (
    MAX_DATA_PHASES, fc_data_phase, plan_data_phases,
    fc_conv2d_backward_data_phases_f32, fc_conv2d_backward_data_phases_f64,
    conv_geometry, crop_to_windows, data_gradient_geometry, fc_all_finite_f32,
    fc_all_finite_f64, fc_has_negative_zero_f32, fc_has_negative_zero_f64, fc_conv_geom,
    fc_last_team_size, fc_omp_barrier, fc_pool_geom,
    fc_record_team_size, pool_geometry, sum_parts_share,
    fc_conv2d_forward_f32, fc_conv2d_forward_f64,
    fc_conv2d_backward_data_f32, fc_conv2d_backward_data_f64,
    fc_conv2d_backward_weight_f32, fc_conv2d_backward_weight_f64,
    fc_max_pool2d_forward_f32, fc_max_pool2d_forward_f64,
    fc_max_pool2d_backward_f32, fc_max_pool2d_backward_f64,
    fc_max_pool2d_backward_disjoint_f32, fc_max_pool2d_backward_disjoint_f64,
)
from libc.stdint cimport int32_t, int64_t


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


def conv2d_max_pool2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                              const floating[::1] b, floating[:, :, :, ::1] y,
                              int32_t[:, :, :, ::1] argmax, floating[:, :, :, ::1] scratch,
                              conv_geom, pool_geom, bint relu, int isa, int n_threads):
    """y, argmax (N, POH, POW, C_out) = max pooling (pool_geom) of
    conv(x (N, H, W, C_in), w (KH, KW, C_in, C_out)) + b, rectified first when
    ``relu``. scratch: (n_threads, OH, OW, C_out), one plane per thread, of
    which the rows and columns the windows read are computed.
    ``b`` may be None. 1 <= n_threads <= N."""
    cdef fc_conv_geom g = conv_geometry(conv_geom)
    cdef fc_pool_geom pg = pool_geometry(pool_geom)
    cdef int64_t images = g.n
    g.relu = relu
    g.n = 1
    pg.n = 1
    crop_to_windows(&g, &pg)
    cdef int64_t x_image = g.h * g.w * g.c_in
    cdef int64_t plane = g.oh * g.ow * g.c_out
    cdef int64_t pooled = pg.oh * pg.ow * pg.c
    cdef const floating *bp = NULL
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef int32_t *ap = &argmax[0, 0, 0, 0]
    cdef floating *sp = &scratch[0, 0, 0, 0]
    cdef int64_t i
    cdef int t
    if b is not None:
        bp = &b[0]
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            for i in range(images * t // n_threads, images * (t + 1) // n_threads):
                if floating is float:
                    fc_conv2d_forward_f32(isa, &g, xp + i * x_image, wp, bp, sp + t * plane,
                                          0, g.oh)
                    fc_max_pool2d_forward_f32(isa, &pg, sp + t * plane, yp + i * pooled,
                                              ap + i * pooled, 0, pg.oh)
                else:
                    fc_conv2d_forward_f64(isa, &g, xp + i * x_image, wp, bp, sp + t * plane,
                                          0, g.oh)
                    fc_max_pool2d_forward_f64(isa, &pg, sp + t * plane, yp + i * pooled,
                                              ap + i * pooled, 0, pg.oh)


def group_size(conv_geom, int itemsize) -> int:
    """Images the backward pass handles together per thread: as many as fit
    their gradient planes in about 512 KiB of a core's cache, so that the
    forward kernel's blocks (the data gradient) fill across images."""
    cdef int64_t plane = conv_geom.oh * conv_geom.ow * conv_geom.c_out * itemsize
    return max(1, min(conv_geom.n, (512 * 1024) // plane))


cdef inline void _pool_gradient(int isa, const fc_pool_geom *pg, bint disjoint,
                                const floating *dy, const floating *relu_y,
                                const int32_t *argmax, floating *dz) noexcept nogil:
    """dz (the pg->n images' convolution-output gradient) from the pooled
    gradient: by the gather when the windows are disjoint and every argmax
    lies in its window, else by the scatter-add."""
    cdef int done = 0
    if floating is float:
        if disjoint:
            done = fc_max_pool2d_backward_disjoint_f32(isa, pg, dy, relu_y, argmax, dz, 0, pg.n)
        if not done:
            fc_max_pool2d_backward_f32(isa, pg, dy, relu_y, argmax, dz, 0, pg.n)
    else:
        if disjoint:
            done = fc_max_pool2d_backward_disjoint_f64(isa, pg, dy, relu_y, argmax, dz, 0, pg.n)
        if not done:
            fc_max_pool2d_backward_f64(isa, pg, dy, relu_y, argmax, dz, 0, pg.n)


cdef inline bint _all_finite(const floating *a, int64_t n) noexcept nogil:
    if floating is float:
        return fc_all_finite_f32(a, n)
    else:
        return fc_all_finite_f64(a, n)


cdef inline bint _has_negative_zero(const floating *a, int64_t n) noexcept nogil:
    if floating is float:
        return fc_has_negative_zero_f32(a, n)
    else:
        return fc_has_negative_zero_f64(a, n)


cdef bint _finite_where_cropped(const fc_conv_geom *g, const fc_conv_geom *crop,
                                const floating *x, int64_t images) noexcept nogil:
    """Whether x (images of g's input) is finite wherever the output pixels
    that ``crop`` leaves out read it: in every input row from the first
    dropped row's first tap on, and likewise every column (a superset).
    Those pixels' gradient is zero; zero times a finite input adds nothing
    to the weight gradient's sums, times an infinity or NaN it adds NaN."""
    cdef int64_t row = g.w * g.c_in
    cdef int64_t r0 = max(0, crop.oh * g.stride_h - g.pad_top)
    cdef int64_t c0 = max(0, crop.ow * g.stride_w - g.pad_left)
    cdef int64_t n, r
    cdef const floating *xn
    for n in range(images):
        xn = x + n * g.h * row
        if r0 < g.h and not _all_finite(xn + r0 * row, (g.h - r0) * row):
            return False
        if c0 < g.w:
            for r in range(min(r0, g.h)):
                if not _all_finite(xn + r * row + c0 * g.c_in, (g.w - c0) * g.c_in):
                    return False
    return True


def conv2d_max_pool2d_backward(const floating[:, :, :, ::1] dy, relu_y,
                               const int32_t[:, :, :, ::1] argmax,
                               const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                               floating[:, :, :, ::1] dx, floating[:, :, :, ::1] dw,
                               floating[::1] db, floating[:, :, :, :, ::1] scratch,
                               conv_geom, pool_geom, int isa, int n_threads,
                               int weight_chunks=WEIGHT_GRAD_CHUNKS):
    """Gradients of conv2d_max_pool2d_forward into dx (N, H, W, C_in),
    dw (KH, KW, C_in, C_out) and db (C_out,) (a None output is not computed),
    from dy and argmax (N, POH, POW, C_out); relu_y, the pooled output of a
    rectified forward pass or None, masks dy where it is not > 0.
    scratch: (n_threads, G, OH, OW, C_out) with G = group_size(conv_geom).
    The weight gradients are summed over ``min(N, weight_chunks)`` chunks,
    as conv2d_backward's. 1 <= n_threads <= N, and no more threads than
    weight-gradient chunks.

    With disjoint windows that leave the convolution output's last rows or
    columns out, a group's gradient plane holds only the part they cover
    (crop_to_windows): the rest is zero, and a zero term changes no sum but
    one that is still a zero, or meets an infinity or NaN. So:
    - a group takes the full plane when an infinite or NaN input lies where
      the dropped pixels read it (dw), or an argmax lies outside its window;
    - no group is cropped with a non-finite weight, or for a strided
      convolution, when dx is computed (the strided dx runs by stride
      phases planned on the full geometry);
    - a multiply-add whose product underflows gives -0 from +0, which the
      dropped zeros would have turned back to +0: if a cropped dx, or dw,
      holds a -0, the whole call runs again on full planes (only tiny
      values get there)."""
    cdef fc_conv_geom g = conv_geometry(conv_geom)
    cdef fc_pool_geom pg = pool_geometry(pool_geom)
    cdef int64_t images = g.n
    cdef int64_t group = scratch.shape[1]
    cdef bint disjoint = pg.stride_h >= pg.kh and pg.stride_w >= pg.kw
    cdef int64_t x_image = g.h * g.w * g.c_in
    cdef int64_t plane = g.oh * g.ow * g.c_out
    cdef int64_t pooled = pg.oh * pg.ow * pg.c
    cdef int64_t w_len = g.kh * g.kw * g.c_in * g.c_out
    cdef int64_t n_chunks = min(images, max(weight_chunks, 1))
    cdef const floating *dyp = &dy[0, 0, 0, 0]
    cdef const int32_t *ap = &argmax[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *sp = &scratch[0, 0, 0, 0, 0]
    cdef floating *dxp = NULL if dx is None else &dx[0, 0, 0, 0]
    cdef floating *dwp = NULL if dw is None else &dw[0, 0, 0, 0]
    cdef floating *dbp = NULL if db is None else &db[0]
    cdef const floating[:, :, :, ::1] ry
    cdef const floating *ryp = NULL
    cdef const floating *ry_i
    cdef const floating[:, :, :, ::1] wt
    cdef const floating *wtp = NULL
    cdef floating[:, ::1] dw_parts, db_parts
    cdef floating *dw_parts_p = NULL
    cdef floating *db_parts_p = NULL
    cdef bint flip = g.stride_h == 1 and g.stride_w == 1
    cdef fc_data_phase plan[MAX_DATA_PHASES]
    cdef int64_t n_phases = -1
    cdef floating[::1] phase_kernels
    cdef const floating *pkp = NULL
    cdef fc_conv_geom g_i, gt_i
    cdef fc_pool_geom pg_i
    cdef fc_conv_geom g_crop = g
    cdef fc_pool_geom pg_crop = pg
    cdef bint crop = disjoint and crop_to_windows(&g_crop, &pg_crop)
    cdef bint crop_i
    cdef int64_t n_i
    cdef int[::1] negative_zero = np.zeros(n_threads, dtype=np.intc)
    cdef int *nzp = &negative_zero[0]
    cdef floating *s_t
    cdef floating *dw_c
    cdef floating *db_c
    cdef int64_t c, c_begin, c_end, i, end, first, lo, hi
    cdef int t, t_dw, t_db

    dtype = np.asarray(dy).dtype
    if relu_y is not None:
        ry = relu_y
        ryp = &ry[0, 0, 0, 0]
    if dxp != NULL and not flip:
        # A strided input gradient by stride phases, as conv.pyx computes it.
        phase_kernels = np.empty(w_len, dtype=dtype)
        n_phases = plan_data_phases(&g, w, phase_kernels, plan, MAX_DATA_PHASES)
        if n_phases >= 0:
            pkp = &phase_kernels[0]
    if dxp != NULL and pkp == NULL:
        wt = data_gradient_weights(w, flip)
        wtp = &wt[0, 0, 0, 0]
    if crop and dxp != NULL:
        crop = flip and _all_finite(&w[0, 0, 0, 0], w_len)
    if dwp != NULL:
        dw_parts = np.empty((n_chunks, w_len), dtype=dtype)
        dw_parts_p = &dw_parts[0, 0]
    if dbp != NULL:
        db_parts = np.empty((n_chunks, g.c_out), dtype=dtype)
        db_parts_p = &db_parts[0, 0]

    while True:
        with nogil, parallel(num_threads=n_threads):
            fc_record_team_size()
            for t in prange(n_threads, schedule="static"):
                # This thread's chunks, and their images [i, end), in groups.
                s_t = sp + t * group * plane
                c_begin = n_chunks * t // n_threads
                c_end = n_chunks * (t + 1) // n_threads
                i = images * c_begin // n_chunks
                end = images * c_end // n_chunks
                while i < end:
                    # Images [i, i + n_i) as a batch of their own.
                    n_i = min(group, end - i)
                    ry_i = ryp
                    if ryp != NULL:
                        ry_i = ryp + i * pooled
                    crop_i = crop and (dwp == NULL or
                                       _finite_where_cropped(&g, &g_crop, xp + i * x_image, n_i))
                    if crop_i:
                        pg_i = pg_crop
                        pg_i.n = n_i
                        if floating is float:
                            crop_i = fc_max_pool2d_backward_disjoint_f32(
                                isa, &pg_i, dyp + i * pooled, ry_i, ap + i * pooled, s_t, 0, n_i)
                        else:
                            crop_i = fc_max_pool2d_backward_disjoint_f64(
                                isa, &pg_i, dyp + i * pooled, ry_i, ap + i * pooled, s_t, 0, n_i)
                    if crop_i:
                        g_i = g_crop
                    else:
                        g_i = g
                        pg_i = pg
                        pg_i.n = n_i
                        _pool_gradient(isa, &pg_i, disjoint, dyp + i * pooled, ry_i,
                                       ap + i * pooled, s_t)
                    g_i.n = n_i
                    gt_i = data_gradient_geometry(g_i)
                    if dxp != NULL and pkp != NULL:
                        if floating is float:
                            fc_conv2d_backward_data_phases_f32(isa, plan, n_phases, g_i.n, s_t,
                                                               pkp, NULL, dxp + i * x_image, 0,
                                                               1)
                        else:
                            fc_conv2d_backward_data_phases_f64(isa, plan, n_phases, g_i.n, s_t,
                                                               pkp, NULL, dxp + i * x_image, 0,
                                                               1)
                    elif floating is float:
                        if dxp != NULL and flip:
                            fc_conv2d_forward_f32(isa, &gt_i, s_t, wtp, NULL, dxp + i * x_image,
                                                  0, gt_i.n * gt_i.oh)
                        elif dxp != NULL:
                            fc_conv2d_backward_data_f32(isa, &g_i, s_t, wtp, dxp + i * x_image,
                                                        0, g_i.n * g_i.h)
                    else:
                        if dxp != NULL and flip:
                            fc_conv2d_forward_f64(isa, &gt_i, s_t, wtp, NULL, dxp + i * x_image,
                                                  0, gt_i.n * gt_i.oh)
                        elif dxp != NULL:
                            fc_conv2d_backward_data_f64(isa, &g_i, s_t, wtp, dxp + i * x_image,
                                                        0, g_i.n * g_i.h)
                    if crop_i and dxp != NULL and _has_negative_zero(dxp + i * x_image,
                                                                     n_i * x_image):
                        nzp[t] = 1
                    if dwp != NULL or dbp != NULL:
                        # Each image's weight gradient goes to its chunk's partial
                        # sum, added in image order.
                        for c in range(c_begin, c_end):
                            first = images * c // n_chunks
                            lo = max(first, i)
                            hi = min(images * (c + 1) // n_chunks, i + g_i.n)
                            if lo >= hi:
                                continue
                            dw_c = NULL if dwp == NULL else dw_parts_p + c * w_len
                            db_c = NULL if dbp == NULL else db_parts_p + c * g.c_out
                            if floating is float:
                                fc_conv2d_backward_weight_f32(isa, &g_i, xp + i * x_image, s_t,
                                                              dw_c, db_c, lo - i, hi - i,
                                                              lo > first)
                            else:
                                fc_conv2d_backward_weight_f64(isa, &g_i, xp + i * x_image, s_t,
                                                              dw_c, db_c, lo - i, hi - i,
                                                              lo > first)
                    i = i + g_i.n
            # Cython ends each prange with `nowait`: every chunk's partial sum
            # must be complete before any thread adds them up.
            fc_omp_barrier()
            if dwp != NULL:
                for t_dw in prange(n_threads, schedule="static"):
                    sum_parts_share(dw_parts_p, n_chunks, w_len, dwp, t_dw, n_threads)
            if dbp != NULL:
                for t_db in prange(n_threads, schedule="static"):
                    sum_parts_share(db_parts_p, n_chunks, g.c_out, dbp, t_db, n_threads)
        # The -0 check of the docstring: once no group is cropped, the bits
        # are those of the full planes.
        if not crop or not (any(negative_zero) or (
                dwp != NULL and _has_negative_zero(dwp, w_len))):
            break
        crop = False

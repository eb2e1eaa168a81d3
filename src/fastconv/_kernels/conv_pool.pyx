# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loop of the fused convolution + max pooling forward pass.

A convolution followed by max pooling need not write its full output to
memory and read it back: each thread convolves one image at a time into its
own scratch plane (OH, OW, C_out), small enough to stay in its core's cache,
and pools that plane at once. Only the pooled output and its argmax reach
memory, a pool-size times less traffic (the first layer of a small CNN
writes 5.5 MB per batch of 64 otherwise).

Images are split into one contiguous block per thread. Each image is
computed by the same kernels as the separate ops (conv2d_forward on one
image: its block paths depend only on the layer's sizes and each pixel's tap
range), so the results are bitwise those of conv2d then max_pool2d, for any
thread count.
"""
from cython cimport floating
from cython.parallel cimport prange

from fastconv._kernels.kernels cimport (
    conv_geometry, fc_conv_geom, fc_last_team_size, fc_pool_geom, fc_record_team_size,
    pool_geometry, fc_conv2d_forward_f32, fc_conv2d_forward_f64,
    fc_max_pool2d_forward_f32, fc_max_pool2d_forward_f64,
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
    ``relu``. scratch: (n_threads, OH, OW, C_out), one plane per thread.
    ``b`` may be None. 1 <= n_threads <= N."""
    cdef fc_conv_geom g = conv_geometry(conv_geom)
    cdef fc_pool_geom pg = pool_geometry(pool_geom)
    cdef int64_t images = g.n
    g.relu = relu
    g.n = 1
    pg.n = 1
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

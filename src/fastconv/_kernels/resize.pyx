# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the upsampling kernels of src_c/resize.c.

C micro-kernel (one block of rows, per dtype and instruction set) -> OpenMP
loop here (GIL released, one parallel region per call, static split of
independent rows) -> fastconv.ops.resample (validation, allocation, the taps
of each axis and the scratch rows).

Arrays arrive checked and C-contiguous, channels last; outputs come first in
every signature. Bilinear: each axis comes as its taps, an object with the
int64 arrays ``i0``, ``i1`` (one entry per output index), ``lo``, ``hi``
(one per input index) and the arrays ``w0``, ``w1`` of the images' dtype
(see src_c/resize.h); ``scratch`` holds one row per thread. The forward pass
splits the N * OH output rows into one contiguous block per thread; the
gradient gathers, so it splits the N * H input rows likewise. Nearest: the
images are (N, D, H, W, C); the forward pass splits the output rows, the
gradient the N * D * H input rows.
Every element is computed by one thread in a fixed order: results are
bitwise identical for any thread count.
"""
from cython cimport floating
from cython.parallel cimport prange

from fastconv._kernels.kernels cimport fc_last_team_size, fc_record_team_size
from fastconv._kernels.resample cimport (
    fc_linear_axis, fc_nearest_geom,
    fc_bilinear_forward_f32, fc_bilinear_forward_f64,
    fc_bilinear_backward_f32, fc_bilinear_backward_f64,
    fc_nearest_forward_f32, fc_nearest_forward_f64,
    fc_nearest_backward_f32, fc_nearest_backward_f64,
)
from libc.stdint cimport int64_t


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


cdef fc_linear_axis linear_axis(taps, bint f64):
    """The C view of one axis's taps (its arrays stay alive with ``taps``,
    which the caller holds); ``f64``: the weights are float64, else float32."""
    cdef const int64_t[::1] i0 = taps.i0, i1 = taps.i1, lo = taps.lo, hi = taps.hi
    cdef const float[::1] w0_f32, w1_f32
    cdef const double[::1] w0_f64, w1_f64
    cdef fc_linear_axis a
    a.in_, a.out = lo.shape[0], i0.shape[0]
    a.i0, a.i1, a.lo, a.hi = &i0[0], &i1[0], &lo[0], &hi[0]
    if f64:
        w0_f64, w1_f64 = taps.w0, taps.w1
        a.w0, a.w1 = &w0_f64[0], &w1_f64[0]
    else:
        w0_f32, w1_f32 = taps.w0, taps.w1
        a.w0, a.w1 = &w0_f32[0], &w1_f32[0]
    return a


def bilinear_forward(floating[:, :, :, ::1] y, floating[:, ::1] scratch,
                     const floating[:, :, :, ::1] x, rows, cols, int isa, int n_threads):
    """y (N, OH, OW, C) = bilinear resize of x (N, H, W, C) through the taps
    ``rows`` (H -> OH) and ``cols`` (W -> OW). scratch: (n_threads, W * C).
    N >= 1."""
    cdef fc_linear_axis ra = linear_axis(rows, floating is double)
    cdef fc_linear_axis ca = linear_axis(cols, floating is double)
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef floating *sp = &scratch[0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef int64_t c = x.shape[3], n_rows = y.shape[0] * y.shape[1], stride = scratch.shape[1]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bilinear_forward_f32(isa, yp, sp + t * stride, xp, c, &ra, &ca,
                                        n_rows * t // n_threads, n_rows * (t + 1) // n_threads)
            else:
                fc_bilinear_forward_f64(isa, yp, sp + t * stride, xp, c, &ra, &ca,
                                        n_rows * t // n_threads, n_rows * (t + 1) // n_threads)


def bilinear_backward(floating[:, :, :, ::1] dx, floating[:, ::1] scratch,
                      const floating[:, :, :, ::1] dy, rows, cols, int isa, int n_threads):
    """dx (N, H, W, C) = gradient of the bilinear resize through the taps
    ``rows`` and ``cols`` given dy (N, OH, OW, C). scratch: (n_threads, OW * C).
    N >= 1."""
    cdef fc_linear_axis ra = linear_axis(rows, floating is double)
    cdef fc_linear_axis ca = linear_axis(cols, floating is double)
    cdef floating *dxp = &dx[0, 0, 0, 0]
    cdef floating *sp = &scratch[0, 0]
    cdef const floating *dyp = &dy[0, 0, 0, 0]
    cdef int64_t c = dx.shape[3], n_rows = dx.shape[0] * dx.shape[1], stride = scratch.shape[1]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bilinear_backward_f32(isa, dxp, sp + t * stride, dyp, c, &ra, &ca,
                                         n_rows * t // n_threads, n_rows * (t + 1) // n_threads)
            else:
                fc_bilinear_backward_f64(isa, dxp, sp + t * stride, dyp, c, &ra, &ca,
                                         n_rows * t // n_threads, n_rows * (t + 1) // n_threads)


cdef fc_nearest_geom nearest_geometry(tuple shape, tuple sizes):
    """The struct of x (N, D, H, W, C) upsampled by (sd, sh, sw)."""
    cdef fc_nearest_geom g
    g.n, g.d, g.h, g.w, g.c = shape
    g.sd, g.sh, g.sw = sizes
    return g


def nearest_forward(floating[::1] y, const floating[::1] x, tuple x_shape, tuple sizes,
                    int isa, int n_threads):
    """y = x of shape ``x_shape`` (N, D, H, W, C) repeated ``sizes`` (sd, sh,
    sw) times along the spatial axes; both flat. N >= 1."""
    cdef fc_nearest_geom g = nearest_geometry(x_shape, sizes)
    cdef floating *yp = &y[0]
    cdef const floating *xp = &x[0]
    cdef int64_t n_rows = g.n * g.d * g.sd * g.h * g.sh
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_nearest_forward_f32(isa, yp, xp, &g, n_rows * t // n_threads,
                                       n_rows * (t + 1) // n_threads)
            else:
                fc_nearest_forward_f64(isa, yp, xp, &g, n_rows * t // n_threads,
                                       n_rows * (t + 1) // n_threads)


def nearest_backward(floating[::1] dx, const floating[::1] dy, tuple x_shape, tuple sizes,
                     int isa, int n_threads):
    """dx of shape ``x_shape`` (N, D, H, W, C) = the sums of the blocks of dy,
    the gradient of nearest_forward; both flat. N >= 1."""
    cdef fc_nearest_geom g = nearest_geometry(x_shape, sizes)
    cdef floating *dxp = &dx[0]
    cdef const floating *dyp = &dy[0]
    cdef int64_t n_rows = g.n * g.d * g.h
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_nearest_backward_f32(isa, dxp, dyp, &g, n_rows * t // n_threads,
                                        n_rows * (t + 1) // n_threads)
            else:
                fc_nearest_backward_f64(isa, dxp, dyp, &g, n_rows * t // n_threads,
                                        n_rows * (t + 1) // n_threads)

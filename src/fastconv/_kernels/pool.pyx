# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the pooling kernels of src_c/pool2d.c.

C micro-kernel (one block of rows or images, per dtype and instruction set)
-> OpenMP loop here (GIL released, static split of independent work) ->
fastconv.ops (validation, allocation).

Forward passes split the N * OH output rows into one contiguous block per
thread. The average-pooling gradient gathers, so it splits the N * H input
rows likewise. The max-pooling gradient scatters through argmax (or, for
windows that do not overlap, gathers), and windows of one image may
overlap, so it splits whole images: every dx element is summed by one
thread in one fixed order.
"""
from cython cimport floating
from cython.parallel cimport prange

from fastconv._kernels.kernels cimport (
    fc_pool_geom, fc_last_team_size, pool_geometry, fc_record_team_size,
    fc_max_pool2d_forward_f32, fc_max_pool2d_forward_f64,
    fc_max_pool2d_backward_f32, fc_max_pool2d_backward_f64,
    fc_max_pool2d_backward_disjoint_f32, fc_max_pool2d_backward_disjoint_f64,
    fc_avg_pool2d_forward_f32, fc_avg_pool2d_forward_f64,
    fc_avg_pool2d_backward_f32, fc_avg_pool2d_backward_f64,
)
from libc.stdint cimport int32_t, int64_t


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


def max_pool2d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                       int32_t[:, :, :, ::1] argmax, geom, int isa, int n_threads):
    """y, argmax (N, OH, OW, C) = max pooling of x (N, H, W, C). N >= 1."""
    cdef fc_pool_geom g = pool_geometry(geom)
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef int32_t *ap = &argmax[0, 0, 0, 0]
    cdef int64_t rows = g.n * g.oh
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_max_pool2d_forward_f32(isa, &g, xp, yp, ap, rows * t // n_threads,
                                          rows * (t + 1) // n_threads)
            else:
                fc_max_pool2d_forward_f64(isa, &g, xp, yp, ap, rows * t // n_threads,
                                          rows * (t + 1) // n_threads)


def max_pool2d_backward(const floating[:, :, :, ::1] dy, const int32_t[:, :, :, ::1] argmax,
                        floating[:, :, :, ::1] dx, geom, bint disjoint, int isa,
                        int n_threads):
    """dx (N, H, W, C) = scatter-add of dy (N, OH, OW, C) at argmax; by the
    gather for windows that do not overlap (``disjoint``, with the windows'
    geometry), falling back to the scatter for a thread's images when an
    argmax lies outside its window. N >= 1."""
    cdef fc_pool_geom g = pool_geometry(geom)
    cdef const floating *dyp = &dy[0, 0, 0, 0]
    cdef const int32_t *ap = &argmax[0, 0, 0, 0]
    cdef floating *dxp = &dx[0, 0, 0, 0]
    cdef int t, done
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            done = 0
            if floating is float:
                if disjoint:
                    done = fc_max_pool2d_backward_disjoint_f32(
                        isa, &g, dyp, NULL, ap, dxp, g.n * t // n_threads,
                        g.n * (t + 1) // n_threads)
                if not done:
                    fc_max_pool2d_backward_f32(isa, &g, dyp, NULL, ap, dxp,
                                               g.n * t // n_threads, g.n * (t + 1) // n_threads)
            else:
                if disjoint:
                    done = fc_max_pool2d_backward_disjoint_f64(
                        isa, &g, dyp, NULL, ap, dxp, g.n * t // n_threads,
                        g.n * (t + 1) // n_threads)
                if not done:
                    fc_max_pool2d_backward_f64(isa, &g, dyp, NULL, ap, dxp,
                                               g.n * t // n_threads, g.n * (t + 1) // n_threads)


def avg_pool2d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                       geom, int isa, int n_threads):
    """y (N, OH, OW, C) = average pooling of x (N, H, W, C). N >= 1."""
    cdef fc_pool_geom g = pool_geometry(geom)
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef int64_t rows = g.n * g.oh
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_avg_pool2d_forward_f32(isa, &g, xp, yp, rows * t // n_threads,
                                          rows * (t + 1) // n_threads)
            else:
                fc_avg_pool2d_forward_f64(isa, &g, xp, yp, rows * t // n_threads,
                                          rows * (t + 1) // n_threads)


def avg_pool2d_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                        geom, int isa, int n_threads):
    """dx (N, H, W, C) = gradient of average pooling given dy (N, OH, OW, C). N >= 1."""
    cdef fc_pool_geom g = pool_geometry(geom)
    cdef const floating *dyp = &dy[0, 0, 0, 0]
    cdef floating *dxp = &dx[0, 0, 0, 0]
    cdef int64_t rows = g.n * g.h
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_avg_pool2d_backward_f32(isa, &g, dyp, dxp, rows * t // n_threads,
                                           rows * (t + 1) // n_threads)
            else:
                fc_avg_pool2d_backward_f64(isa, &g, dyp, dxp, rows * t // n_threads,
                                           rows * (t + 1) // n_threads)

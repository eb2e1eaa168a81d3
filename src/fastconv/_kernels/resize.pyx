# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops around the bilinear resizing kernels of src_c/resize.c.

C micro-kernel (one block of rows, per dtype and instruction set) -> OpenMP
loop here (GIL released, one parallel region per call, static split of
independent rows) -> fastconv.ops.resample (validation, allocation and the
taps of each axis).

Arrays arrive checked and C-contiguous, NHWC; outputs come first in every
signature. Each axis comes as its taps, an object with the int64 arrays
``i0``, ``i1`` (one entry per output index), ``lo``, ``hi`` (one per input
index) and the float64 array ``f`` (see src_c/resize.h). The forward pass
splits the N * OH output rows into one contiguous block per thread; the
gradient gathers, so it splits the N * H input rows likewise. Every element
is computed by one thread in a fixed order: results are bitwise identical
for any thread count.
"""
from cython cimport floating
from cython.parallel cimport prange

from fastconv._kernels.kernels cimport fc_last_team_size, fc_record_team_size
from fastconv._kernels.resample cimport (
    fc_linear_axis,
    fc_bilinear_forward_f32, fc_bilinear_forward_f64,
    fc_bilinear_backward_f32, fc_bilinear_backward_f64,
)
from libc.stdint cimport int64_t


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


cdef class _Axis:
    """The C view of one axis's taps; keeps their arrays alive while in use."""
    cdef const int64_t[::1] i0, i1, lo, hi
    cdef const double[::1] f
    cdef fc_linear_axis axis

    def __init__(self, taps):
        self.i0, self.i1, self.f = taps.i0, taps.i1, taps.f
        self.lo, self.hi = taps.lo, taps.hi
        self.axis.in_ = self.lo.shape[0]
        self.axis.out = self.i0.shape[0]
        self.axis.i0, self.axis.i1, self.axis.f = &self.i0[0], &self.i1[0], &self.f[0]
        self.axis.lo, self.axis.hi = &self.lo[0], &self.hi[0]


def bilinear_forward(floating[:, :, :, ::1] y, const floating[:, :, :, ::1] x, rows, cols,
                     int isa, int n_threads):
    """y (N, OH, OW, C) = bilinear resize of x (N, H, W, C) through the taps
    ``rows`` (H -> OH) and ``cols`` (W -> OW). N >= 1."""
    cdef _Axis ra = _Axis(rows), ca = _Axis(cols)
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef int64_t c = x.shape[3], n_rows = y.shape[0] * y.shape[1]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bilinear_forward_f32(isa, yp, xp, c, &ra.axis, &ca.axis,
                                        n_rows * t // n_threads, n_rows * (t + 1) // n_threads)
            else:
                fc_bilinear_forward_f64(isa, yp, xp, c, &ra.axis, &ca.axis,
                                        n_rows * t // n_threads, n_rows * (t + 1) // n_threads)


def bilinear_backward(floating[:, :, :, ::1] dx, const floating[:, :, :, ::1] dy, rows, cols,
                      int isa, int n_threads):
    """dx (N, H, W, C) = gradient of the bilinear resize through the taps
    ``rows`` and ``cols`` given dy (N, OH, OW, C). N >= 1."""
    cdef _Axis ra = _Axis(rows), ca = _Axis(cols)
    cdef floating *dxp = &dx[0, 0, 0, 0]
    cdef const floating *dyp = &dy[0, 0, 0, 0]
    cdef int64_t c = dx.shape[3], n_rows = dx.shape[0] * dx.shape[1]
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            if floating is float:
                fc_bilinear_backward_f32(isa, dxp, dyp, c, &ra.axis, &ca.axis,
                                         n_rows * t // n_threads, n_rows * (t + 1) // n_threads)
            else:
                fc_bilinear_backward_f64(isa, dxp, dyp, c, &ra.axis, &ca.axis,
                                         n_rows * t // n_threads, n_rows * (t + 1) // n_threads)

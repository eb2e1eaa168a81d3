# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loop around the row copies of zero padding and cropping
(src_c/margins.c).

C row copies (memcpy / memset, one version for every dtype) -> OpenMP loop
here (GIL released, one parallel region per call, the destination's rows
split into one contiguous block per thread) -> fastconv.ops.resample
(validation, allocation, the shift of each axis).

Arrays arrive checked and C-contiguous, channels last, viewed as raw bytes;
the destination comes first. Every destination byte is written once, by one
thread (with streaming stores when the destination is large, fc_stream.h).
"""
from cython.parallel cimport prange

from fastconv._kernels.kernels cimport fc_last_team_size, fc_record_team_size
from fastconv._kernels.resample cimport FC_STREAM_MIN_BYTES, fc_shift_geom, fc_shift_rows
from libc.stdint cimport int64_t


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


def shift(unsigned char[::1] dst, const unsigned char[::1] src, tuple dst_shape,
          tuple src_shape, tuple offsets, int64_t itemsize, int n_threads):
    """dst (N, D, H, W, C) = src (N, SD, SH, SW, C) moved by ``offsets`` (od,
    oh, ow) along the spatial axes, zeros where nothing lands; both as flat
    bytes of items of ``itemsize``. N >= 1."""
    cdef fc_shift_geom g
    cdef int64_t c
    g.n, g.d, g.h, g.w, c = dst_shape
    _, g.sd, g.sh, g.sw, _ = src_shape
    g.od, g.oh, g.ow = offsets
    g.pixel = c * itemsize
    g.stream = dst.shape[0] >= FC_STREAM_MIN_BYTES
    cdef void *dp = &dst[0]
    cdef const void *sp = &src[0]
    cdef int64_t n_rows = g.n * g.d * g.h
    cdef int t
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_record_team_size()
            fc_shift_rows(dp, sp, &g, n_rows * t // n_threads, n_rows * (t + 1) // n_threads)

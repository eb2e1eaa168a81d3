# cython: language_level=3
"""What the compiled extension can do on this machine: OpenMP, the CPU's
instruction sets (the run-time half of the SIMD dispatch in src_c/), its
floating-point peak and its memory bandwidth."""
import time

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastconv._kernels.kernels cimport FC_OPENMP_ENABLED, fc_cpu_supports, fc_omp_release_threads

# Instruction-set levels, in the order of src_c/fc_common.h's enum fc_isa.
ISA_LEVELS = ("generic", "avx2", "avx512")


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""
    return bool(FC_OPENMP_ENABLED)


def release_threads() -> None:
    """End the calling thread's idle OpenMP workers (see fc_omp.h); the next
    parallel region starts new ones."""
    fc_omp_release_threads()


def cpu_supports(isa: str) -> bool:
    """True when this CPU can run the micro-kernels compiled for ``isa``."""
    return bool(fc_cpu_supports(ISA_LEVELS.index(isa)))


cdef extern from "fc_peak.h" nogil:
    int fc_peak_lanes(int isa)
    double fc_peak_loop(int isa, int64_t iterations)
    void fc_triad_block(float *a, const float *b, const float *c, float s, int64_t n)
    void fc_fill_block(float *a, float value, int64_t n)


def fma_peak_gflops(isa: str, int n_threads, double seconds=0.1, int repeat=5) -> float:
    """This machine's float32 multiply-add peak, in GFLOP/s, measured by
    ``n_threads`` threads each running a register-only FMA loop compiled for
    ``isa`` for about ``seconds``: the best of ``repeat`` such runs (on a
    shared host, a run during which another process held a core says
    nothing about the peak)."""
    cdef int code = ISA_LEVELS.index(isa)
    cdef int64_t iterations = 1 << 20
    cdef double start, elapsed, best = 0.0
    cdef int t, r
    # Calibrate on one thread (it also wakes the core up to speed).
    while True:
        start = time.perf_counter()
        with nogil:
            fc_peak_loop(code, iterations)
        elapsed = time.perf_counter() - start
        if elapsed > 0.02:
            break
        iterations *= 4
    iterations = max(1, <int64_t>(iterations * seconds / elapsed))
    for r in range(max(repeat, 1)):
        start = time.perf_counter()
        with nogil:
            for t in prange(n_threads, schedule="static", num_threads=n_threads):
                fc_peak_loop(code, iterations)
        elapsed = time.perf_counter() - start
        best = max(best, n_threads * iterations * 12.0 * fc_peak_lanes(code) * 2.0 / elapsed / 1e9)
    return best


def triad_gbps(int n_threads, double mib=64.0, int passes=5) -> float:
    """This machine's memory bandwidth, in GB/s (10^9 bytes per second),
    measured by the STREAM triad ``a[i] = b[i] + s * c[i]``.

    Three float32 arrays of ``mib`` MiB each (much larger than the caches
    for the default); ``n_threads`` threads each run one contiguous block
    (a static split, the same one that first wrote the block). The rate is
    STREAM's: 3 arrays x 4 bytes per element (b and c read, a written) over
    the best of ``passes`` passes; the line reads that a write-allocate
    cache adds for ``a`` are not counted, so a fastconv kernel's GB/s,
    counting bytes read plus bytes written, compares with it directly.
    """
    if n_threads < 1 or passes < 1 or not mib > 0:
        raise ValueError(f"expected n_threads >= 1, passes >= 1 and mib > 0, received "
                         f"n_threads={n_threads}, passes={passes}, mib={mib}")
    cdef int64_t n = max(n_threads, <int64_t>(mib * (1 << 20) / 4))
    a_arr = np.empty(n, dtype=np.float32)
    b_arr = np.empty(n, dtype=np.float32)
    c_arr = np.empty(n, dtype=np.float32)
    cdef float[::1] a = a_arr, b = b_arr, c = c_arr
    cdef int t
    cdef int64_t lo, hi
    cdef double start, best = float("inf")
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            lo = n * t // n_threads
            hi = n * (t + 1) // n_threads
            fc_fill_block(&a[lo], 0.0, hi - lo)
            fc_fill_block(&b[lo], 1.0, hi - lo)
            fc_fill_block(&c[lo], 2.0, hi - lo)
    for _ in range(passes):
        start = time.perf_counter()
        with nogil:
            for t in prange(n_threads, schedule="static", num_threads=n_threads):
                lo = n * t // n_threads
                hi = n * (t + 1) // n_threads
                fc_triad_block(&a[lo], &b[lo], &c[lo], 3.0, hi - lo)
        best = min(best, time.perf_counter() - start)
    if a[n - 1] != 7.0:  # 1 + 3 * 2: the passes ran, and completely
        raise RuntimeError("the triad left a wrong result")
    return 3.0 * 4.0 * n / best / 1e9

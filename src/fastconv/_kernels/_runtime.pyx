# cython: language_level=3
"""What the compiled extension can do on this machine: OpenMP, the CPU's
instruction sets (the run-time half of the SIMD dispatch in src_c/) and its
floating-point peak."""
import time

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


def fma_peak_gflops(isa: str, int n_threads, double seconds=0.25) -> float:
    """This machine's float32 multiply-add peak, in GFLOP/s, measured by
    ``n_threads`` threads each running a register-only FMA loop compiled for
    ``isa`` for about ``seconds``."""
    cdef int code = ISA_LEVELS.index(isa)
    cdef int64_t iterations = 1 << 20
    cdef double start, elapsed
    cdef int t
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
    start = time.perf_counter()
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            fc_peak_loop(code, iterations)
    elapsed = time.perf_counter() - start
    return n_threads * iterations * 12.0 * fc_peak_lanes(code) * 2.0 / elapsed / 1e9

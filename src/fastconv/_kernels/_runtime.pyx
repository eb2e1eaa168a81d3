# cython: language_level=3
"""What the compiled extension can do on this machine: OpenMP and the CPU's
instruction sets (the run-time half of the SIMD dispatch in src_c/)."""
from fastconv._kernels.kernels cimport FC_OPENMP_ENABLED, fc_cpu_supports

# Instruction-set levels, in the order of src_c/fc_common.h's enum fc_isa.
ISA_LEVELS = ("generic", "avx2", "avx512")


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""
    return bool(FC_OPENMP_ENABLED)


def cpu_supports(isa: str) -> bool:
    """True when this CPU can run the micro-kernels compiled for ``isa``."""
    return bool(fc_cpu_supports(ISA_LEVELS.index(isa)))

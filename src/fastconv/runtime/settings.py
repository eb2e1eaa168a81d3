"""Process-wide settings of the compiled kernels: thread count and SIMD level.

Every kernel call in ``fastconv.ops`` reads both here, so a change applies to
the next call. Defaults: ``OMP_NUM_THREADS`` if set, else the cores this
process may run on; the widest instruction set the CPU supports, unless the
environment variable ``FASTCONV_ISA`` (generic, avx2 or avx512) asks for
another.
"""

from __future__ import annotations

import os
import warnings

from fastconv._kernels import _runtime
from fastconv._validation import _is_int

ISA_LEVELS: tuple[str, ...] = _runtime.ISA_LEVELS


def openmp_enabled() -> bool:
    """True when the kernels were built with OpenMP (else they use one thread)."""
    return _runtime.openmp_enabled()


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# More threads than this is a mistake (and asking libgomp for ~10^5 threads
# crashes the process), so set_num_threads refuses it.
MAX_THREADS = 1024


def _default_num_threads() -> int:
    # OMP_NUM_THREADS may be a list ("4,2") for nested regions; the first
    # entry is the count for the outermost level, which is ours.
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) > 0:
        return min(int(value), MAX_THREADS)
    return min(_available_cores(), MAX_THREADS)


_num_threads = _default_num_threads()

# libgomp's thread pool does not survive fork(): a child inherits the pool's
# record of its workers but not the threads, and its first multi-threaded
# kernel would wait for them forever. Ending the forking thread's idle
# workers first lets the child (and the parent, at its next call) start new
# ones, so a forked child runs the kernels with the parent's thread count.
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(before=_runtime.release_threads)


def set_num_threads(n: int) -> None:
    """Set the number of threads every kernel uses from the next call on.

    Parameters
    ----------
    n : int
        Threads, >= 1. Without OpenMP (see ``openmp_enabled()``) kernels run on
        one thread whatever ``n`` is.
    """
    global _num_threads
    if not _is_int(n):
        raise TypeError(
            f"Invalid value for argument `n`: expected a positive int, received n={n!r}."
        )
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(
            f"Invalid value for argument `n`: expected an int in [1, {MAX_THREADS}], "
            f"received n={n!r}."
        )
    _num_threads = int(n)


def get_num_threads() -> int:
    """Threads the kernels use: 1 without OpenMP, else the current setting."""
    return _num_threads if openmp_enabled() else 1


def threads_for(work_items: int) -> int:
    """Threads for a kernel call that splits ``work_items`` independent items
    (rows, images): never more threads than items, so tiny calls do not wake
    threads that would have nothing to do."""
    return max(1, min(get_num_threads(), work_items))


def supported_isas() -> tuple[str, ...]:
    """Instruction-set levels this CPU can run, narrowest first."""
    return tuple(isa for isa in ISA_LEVELS if _runtime.cpu_supports(isa))


def set_isa(isa: str) -> None:
    """Select the micro-kernels compiled for ``isa`` ('generic', 'avx2', 'avx512').

    Results of every level agree with ``fastconv.reference`` to rounding; the
    levels differ only in speed. The CPU must support the level.
    """
    global _isa
    if isa not in ISA_LEVELS:
        raise ValueError(
            f"Invalid value for argument `isa`: expected one of {ISA_LEVELS}, "
            f"received isa={isa!r}."
        )
    if not _runtime.cpu_supports(isa):
        raise ValueError(
            f"Invalid value for argument `isa`: this CPU supports {supported_isas()}, "
            f"received isa={isa!r}."
        )
    _isa = isa


def get_isa() -> str:
    """The instruction-set level the kernels use."""
    return _isa


def isa_code() -> int:
    """The level as the integer the compiled kernels take."""
    return ISA_LEVELS.index(_isa)


def _default_isa() -> str:
    best = supported_isas()[-1]
    forced = os.environ.get("FASTCONV_ISA", "").strip().lower()
    if not forced:
        return best
    if forced in ISA_LEVELS and _runtime.cpu_supports(forced):
        return forced
    warnings.warn(
        f"FASTCONV_ISA={forced!r} is not one of the levels this CPU supports "
        f"{supported_isas()}; using {best!r}.",
        RuntimeWarning,
        stacklevel=2,
    )
    return best


_isa = _default_isa()

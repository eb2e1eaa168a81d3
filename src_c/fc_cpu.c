/* fc_cpu.c - which instruction sets this CPU can run.
 *
 * The micro-kernels are compiled several times with per-function target
 * attributes (see conv2d.c); this is the run-time half of that dispatch.
 * fastconv._settings asks once at import; fastconv.ops passes the chosen level
 * to every call.
 */
#include "fc_common.h"

int fc_cpu_supports(int isa)
{
    switch (isa) {
    case FC_ISA_GENERIC:
        return 1;
#if FC_X86 && (defined(__GNUC__) || defined(__clang__))
    case FC_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FC_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    default:
        return 0;
    }
}

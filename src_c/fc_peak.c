/* fc_peak.c - the floating-point peak probe of `python -m fastconv bench`:
 * the same register-only FMA loop compiled for each instruction set. */
#include "fc_peak.h"

#define FC_PEAK_NAME peak_generic
#define FC_TARGET
#define FC_VEC_BYTES 16
#include "fc_peak_impl.h"
#undef FC_PEAK_NAME
#undef FC_TARGET
#undef FC_VEC_BYTES

#if FC_X86
#define FC_PEAK_NAME peak_avx2
#define FC_TARGET __attribute__((target("avx2,fma")))
#define FC_VEC_BYTES 32
#include "fc_peak_impl.h"
#undef FC_PEAK_NAME
#undef FC_TARGET
#undef FC_VEC_BYTES

#define FC_PEAK_NAME peak_avx512
#define FC_TARGET __attribute__((target("avx512f,fma")))
#define FC_VEC_BYTES 64
#include "fc_peak_impl.h"
#undef FC_PEAK_NAME
#undef FC_TARGET
#undef FC_VEC_BYTES
#endif

int fc_peak_lanes(int isa)
{
    return isa == FC_ISA_AVX512 ? 16 : isa == FC_ISA_AVX2 ? 8 : 4;
}

double fc_peak_loop(int isa, int64_t iterations)
{
#if FC_X86
    if (isa == FC_ISA_AVX512)
        return peak_avx512(iterations);
    if (isa == FC_ISA_AVX2)
        return peak_avx2(iterations);
#endif
    return peak_generic(iterations);
}

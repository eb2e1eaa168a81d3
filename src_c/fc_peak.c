/* fc_peak.c - the two limits `python -m fastconv bench` measures: the
 * floating-point peak (the same register-only FMA loop compiled for each
 * instruction set) and the memory bandwidth (the STREAM triad over arrays
 * much larger than the caches). The Cython wrappers in _runtime.pyx own
 * the threads and the timing; the functions here run on the calling thread. */
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

/* Portable C: the compiler's baseline vectors are enough to saturate memory
 * on one core, so the triad needs no per-instruction-set variants. */
void fc_triad_block(float *FC_RESTRICT a, const float *FC_RESTRICT b,
                    const float *FC_RESTRICT c, float s, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
        a[i] = b[i] + s * c[i];
}

void fc_fill_block(float *a, float value, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
        a[i] = value;
}

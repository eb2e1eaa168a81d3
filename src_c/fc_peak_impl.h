/* fc_peak_impl.h - a register-only float32 multiply-add loop that measures
 * this machine's peak, instantiated by fc_peak.c once per instruction set
 * with FC_PEAK_NAME, FC_TARGET and FC_VEC_BYTES set. 12 independent vector
 * accumulators hide the FMA latency of current cores; nothing touches memory
 * inside the loop. */

FC_TARGET static double FC_PEAK_NAME(int64_t iterations)
{
    typedef float vec __attribute__((vector_size(FC_VEC_BYTES)));
    vec acc[12];
    const vec m = (vec){0} + 0.999999f, c = (vec){0} + 1e-7f;
#pragma GCC unroll 16
    for (int k = 0; k < 12; ++k)
        acc[k] = (vec){0} + (float)k;
    for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
        for (int k = 0; k < 12; ++k)
            acc[k] = acc[k] * m + c;
    }
    /* A result that depends on every accumulator keeps the loop alive. */
    double sum = 0;
    for (int k = 0; k < 12; ++k)
        for (int l = 0; l < (int)(FC_VEC_BYTES / sizeof(float)); ++l)
            sum += (double)acc[k][l];
    return sum;
}

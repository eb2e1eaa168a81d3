/* fc_peak.h - the floating-point peak and memory-bandwidth probes (see fc_peak.c). */
#ifndef FC_PEAK_H
#define FC_PEAK_H
#include "fc_common.h"

/* Float32 lanes of one vector at instruction set `isa`. */
int fc_peak_lanes(int isa);

/* `iterations` rounds of 12 vector FMAs (2 * 12 * lanes FLOPs each) on the
 * calling thread; returns a checksum of the accumulators. */
double fc_peak_loop(int isa, int64_t iterations);

/* One thread's block of the STREAM triad: a[i] = b[i] + s * c[i], i < n. */
void fc_triad_block(float *FC_RESTRICT a, const float *FC_RESTRICT b,
                    const float *FC_RESTRICT c, float s, int64_t n);

/* a[i] = value, i < n: the triad's arrays are first written by the thread
 * that later reads them, so their pages sit on its memory node. */
void fc_fill_block(float *a, float value, int64_t n);
#endif

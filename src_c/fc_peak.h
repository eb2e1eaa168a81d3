/* fc_peak.h - the floating-point peak probe (see fc_peak.c). */
#ifndef FC_PEAK_H
#define FC_PEAK_H
#include "fc_common.h"

/* Float32 lanes of one vector at instruction set `isa`. */
int fc_peak_lanes(int isa);

/* `iterations` rounds of 12 vector FMAs (2 * 12 * lanes FLOPs each) on the
 * calling thread; returns a checksum of the accumulators. */
double fc_peak_loop(int isa, int64_t iterations);
#endif

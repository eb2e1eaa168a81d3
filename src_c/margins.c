/* margins.c - the row copies of zero padding and cropping (margins.h).
 *
 * Only bytes move, whole runs at a time (memcpy and memset, which the C
 * library already vectorises for the CPU it runs on, or their streaming
 * versions for large outputs, fc_stream.h), so there is one version for
 * every dtype and no instruction-set dispatch. Each dst row is written once:
 * zeros where it lies outside src, else zeros before the shifted src row,
 * the row itself, zeros after.
 */
#include <string.h>

#include "fc_stream.h"
#include "margins.h"

static inline int64_t fc_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline void fc_zero(void *dst, int64_t n, int stream)
{
    if (stream)
        fc_stream_zero(dst, (size_t)n);
    else
        memset(dst, 0, (size_t)n);
}

void fc_shift_rows(void *dst, const void *src, const fc_shift_geom *g, int64_t row_begin,
                   int64_t row_end)
{
    const int64_t row_bytes = g->w * g->pixel;
    /* dst columns [lo, hi) come from src columns [lo - ow, hi - ow). */
    const int64_t lo = fc_clamp(g->ow, 0, g->w), hi = fc_clamp(g->sw + g->ow, lo, g->w);
    /* dst row r is (n, i, j); stepped along, not divided out per row. */
    int64_t n = row_begin / (g->d * g->h), i = row_begin / g->h % g->d, j = row_begin % g->h;
    for (int64_t r = row_begin; r < row_end; ++r) {
        char *out = (char *)dst + r * row_bytes;
        const int64_t si = i - g->od, sj = j - g->oh;
        if (si < 0 || si >= g->sd || sj < 0 || sj >= g->sh || lo == hi) {
            fc_zero(out, row_bytes, g->stream);
        } else {
            const char *in = (const char *)src + ((n * g->sd + si) * g->sh + sj) * g->sw * g->pixel;
            const size_t run = (size_t)((hi - lo) * g->pixel);
            if (lo)
                fc_zero(out, lo * g->pixel, g->stream);
            if (g->stream)
                fc_stream_copy(out + lo * g->pixel, in + (lo - g->ow) * g->pixel, run);
            else
                memcpy(out + lo * g->pixel, in + (lo - g->ow) * g->pixel, run);
            if (hi < g->w)
                fc_zero(out + hi * g->pixel, (g->w - hi) * g->pixel, g->stream);
        }
        if (++j == g->h) {
            j = 0;
            if (++i == g->d) {
                i = 0;
                ++n;
            }
        }
    }
    if (g->stream)
        fc_stream_fence();
}

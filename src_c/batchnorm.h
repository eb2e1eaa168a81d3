/* batchnorm.h - batch normalization: per-channel sums and per-channel affine
 * maps, the two passes its forward and backward are made of (see
 * batchnorm.c and fastconv/ops/normalization.py).
 *
 * The input is seen as x (outer, C, inner), C the normalized axis. Two
 * layouts, two kernels each:
 *
 * - rows (inner == 1, channels last): x is `rows` rows of C contiguous
 *   channels; the vector lanes are channels. The rows are cut into chunks of
 *   `chunk_rows` rows (the last one shorter); chunk j sums its rows in row
 *   order into s1[j, :], s2[j, :] (chunks, C).
 * - runs (inner > 1, channels first): x is outer * C runs of `inner`
 *   contiguous values, run (o, k) belonging to channel k. Each run is cut
 *   into pieces of `piece` values; item (o, k, b) sums piece b of run (o, k)
 *   into s1, s2 (outer, C, pieces), lane by lane over a fixed number of
 *   lanes, then the lanes in order.
 *
 * The sums are in double. Chunks, pieces and lanes are set by the shapes
 * alone, and fc_bn_combine then adds the partial sums of each channel in
 * one fixed order, so the results depend neither on how the chunks are
 * shared among threads nor on the instruction set (batchnorm.c is compiled
 * without fused multiply-adds).
 */
#ifndef FC_BATCHNORM_H
#define FC_BATCHNORM_H
#include "fc_common.h"

/* Values of a run summed into one partial sum (runs layout). */
#define FC_BN_PIECE 4096
/* Elements of x a chunk of rows holds at least (rows layout). */
#define FC_BN_CHUNK 8192

#define FC_BATCHNORM_DECLARE(dt, T)                                                        \
    /* Per-channel partial sums of u and u * (x - center), u = dy or, when dy is   \
     * NULL, u = x - center: center (C); s1, s2 (chunks, C); chunks                 \
     * [chunk_begin, chunk_end) of the rows layout. */                                    \
    void fc_bn_sums_rows_##dt(int isa, double *s1, double *s2, const T *dy, const T *x,    \
                              const T *center, int64_t rows, int64_t c, int64_t chunk_rows, \
                              int64_t chunk_begin, int64_t chunk_end);                     \
    /* The same for the runs layout: s1, s2 (outer, C, pieces), items                     \
     * [item_begin, item_end) of the outer * C * pieces. */                                 \
    void fc_bn_sums_runs_##dt(int isa, double *s1, double *s2, const T *dy, const T *x,    \
                              const T *center, int64_t c, int64_t inner, int64_t piece,     \
                              int64_t item_begin, int64_t item_end);                       \
    /* out = a * u + p * v + q per channel (a, p, q (C)); v and p NULL: no p * v term;      \
     * q NULL: no q term. Rows [row_begin, row_end) of the rows layout; `stream`:          \
     * write out with streaming stores (fc_stream.h), for outputs too large to cache. */   \
    void fc_bn_apply_rows_##dt(int isa, T *out, const T *u, const T *a, const T *v,        \
                               const T *p, const T *q, int64_t c, int64_t row_begin,        \
                               int64_t row_end, int stream);                               \
    /* The same for runs [run_begin, run_end) of the outer * C runs. */                     \
    void fc_bn_apply_runs_##dt(int isa, T *out, const T *u, const T *a, const T *v,        \
                               const T *p, const T *q, int64_t c, int64_t inner,            \
                               int64_t run_begin, int64_t run_end, int stream);

FC_BATCHNORM_DECLARE(f32, float)
FC_BATCHNORM_DECLARE(f64, double)

/* t1[k], t2[k] = the sums over a, then b, of s1, s2 (A, C, B), in that order. */
void fc_bn_combine(double *t1, double *t2, const double *s1, const double *s2, int64_t a,
                   int64_t c, int64_t b);
#endif

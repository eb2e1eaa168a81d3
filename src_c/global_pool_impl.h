/* global_pool_impl.h - global average and max pooling micro-kernels, one
 * instantiation per (dtype, instruction set); see fc_dispatch.h for the
 * macros and global_pool.h for the layout and the work items.
 *
 * The innermost loops run over the contiguous channel axis; the outer loop
 * walks the spatial positions p = 0, 1, ..., P - 1 of one image, so x is
 * read once, in memory order, and each output keeps its running sum (or
 * maximum) in the output row, which stays in the L1 cache. A sum starts
 * from the first element and adds the others in order, as numpy.mean over
 * these axes does. Max pooling keeps the first maximum (a later element must
 * be strictly greater to win) and lets NaN win over numbers, so a channel
 * holding NaN yields NaN with the index of its first NaN, as numpy.argmax.
 */

/* Channels [*lo, *hi) of image *n: work item `item` (see global_pool.h). */
FC_TARGET static inline void FC_FN(global_item)(int64_t item, int64_t c, int64_t block,
                                                int64_t *n, int64_t *lo, int64_t *hi)
{
    const int64_t blocks = (c + block - 1) / block;
    *n = item / blocks;
    *lo = item % blocks * block;
    *hi = c - *lo < block ? c : *lo + block;
}

/* Global average pooling of items [item_begin, item_end): y (N, C) = the sum
 * over p of x (N, P, C), divided by P. The quotient is taken in double and
 * rounded once: for float32 it is the correctly rounded float32 quotient
 * (the float64 one is, for float64), even where P has no exact float32. */
FC_TARGET static void FC_FN(global_avg_pool_forward)(FC_T *y, const FC_T *x, int64_t p,
                                                     int64_t c, int64_t block,
                                                     int64_t item_begin, int64_t item_end)
{
    for (int64_t item = item_begin; item < item_end; ++item) {
        int64_t n, lo, hi;
        FC_FN(global_item)(item, c, block, &n, &lo, &hi);
        FC_T *FC_RESTRICT yn = y + n * c;
        const FC_T *xn = x + n * p * c;
        for (int64_t k = lo; k < hi; ++k)
            yn[k] = xn[k];
        for (int64_t q = 1; q < p; ++q) {
            const FC_T *FC_RESTRICT xq = xn + q * c;
            for (int64_t k = lo; k < hi; ++k)
                yn[k] += xq[k];
        }
        const double count = (double)p;
        for (int64_t k = lo; k < hi; ++k)
            yn[k] = (FC_T)((double)yn[k] / count);
    }
}

/* Global average pooling gradient of rows [row_begin, row_end) of the N * P
 * rows of dx (N, P, C): every row of image n is dy[n] / P (N, C). The first
 * row of each image in the block is computed, the others copied from it. */
FC_TARGET static void FC_FN(global_avg_pool_backward)(FC_T *dx, const FC_T *dy, int64_t p,
                                                      int64_t c, int64_t row_begin,
                                                      int64_t row_end)
{
    const double count = (double)p;
    const FC_T *first = dx;
    for (int64_t r = row_begin; r < row_end; ++r) {
        FC_T *FC_RESTRICT dxr = dx + r * c;
        if (r == row_begin || r % p == 0) {
            const FC_T *FC_RESTRICT dyn = dy + r / p * c;
            for (int64_t k = 0; k < c; ++k)
                dxr[k] = (FC_T)((double)dyn[k] / count);
            first = dxr;
        } else {
            memcpy(dxr, first, (size_t)c * sizeof(FC_T));
        }
    }
}

/* Explicit vectors of the max-pooling forward pass: FC_GVL channels of the
 * element type, their comparison masks (integers as wide as the element) and
 * the int32 argmax lanes stored. */
#define FC_GVL ((int64_t)(FC_VEC_BYTES / sizeof(FC_T)))
typedef FC_T FC_FN(gvec) __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T))));
typedef int32_t FC_FN(gidx) __attribute__((vector_size(FC_GVL * 4), aligned(4)));

/* Channels [lo, hi) of spatial position q against the running maximum: the
 * readable statement of the rule, and the tail of the vector loop below,
 * which applies the same comparisons lane by lane. */
FC_TARGET static inline void FC_FN(max_step)(FC_T *FC_RESTRICT yn, int32_t *FC_RESTRICT an,
                                             const FC_T *FC_RESTRICT xq, int32_t q,
                                             int64_t lo, int64_t hi)
{
    for (int64_t k = lo; k < hi; ++k) {
        const FC_T v = xq[k], best = yn[k];
        const int wins = (v > best) | ((v != v) & (best == best));
        yn[k] = wins ? v : best;
        an[k] = wins ? q : an[k];
    }
}

/* Global max pooling of items [item_begin, item_end): y (N, C) the maximum
 * over p of x (N, P, C), argmax (N, C) int32 its first position p. */
FC_TARGET static void FC_FN(global_max_pool_forward)(FC_T *y, int32_t *argmax, const FC_T *x,
                                                     int64_t p, int64_t c, int64_t block,
                                                     int64_t item_begin, int64_t item_end)
{
    typedef FC_FN(gvec) vec;
    typedef FC_FN(gidx) idx;
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    for (int64_t item = item_begin; item < item_end; ++item) {
        int64_t n, lo, hi;
        FC_FN(global_item)(item, c, block, &n, &lo, &hi);
        FC_T *FC_RESTRICT yn = y + n * c;
        int32_t *FC_RESTRICT an = argmax + n * c;
        const FC_T *xn = x + n * p * c;
        for (int64_t k = lo; k < hi; ++k) {
            yn[k] = xn[k];
            an[k] = 0;
        }
        for (int64_t q = 1; q < p; ++q) {
            const FC_T *FC_RESTRICT xq = xn + q * c;
            const idx at = (idx){0} + (int32_t)q;
            int64_t k = lo;
            for (; k + FC_GVL <= hi; k += FC_GVL) {
                const vec v = *(const vec *)(xq + k), best = *(const vec *)(yn + k);
                const mask wins = (v > best) | ((v != v) & (best == best));
                const idx wins32 = __builtin_convertvector(wins, idx);
                *(vec *)(yn + k) = (vec)(((mask)v & wins) | ((mask)best & ~wins));
                *(idx *)(an + k) = (at & wins32) | (*(const idx *)(an + k) & ~wins32);
            }
            FC_FN(max_step)(yn, an, xq, (int32_t)q, k, hi);
        }
    }
}

/* Global max pooling gradient of rows [row_begin, row_end) of the N * P rows
 * of dx (N, P, C), as a gather: element (n, q, k) is dy[n, k] where its
 * channel chose q (argmax[n, k] == q), else 0; each written once, none
 * zeroed first. dy, argmax (N, C). */
FC_TARGET static void FC_FN(global_max_pool_backward)(FC_T *dx, const FC_T *dy,
                                                      const int32_t *argmax, int64_t p,
                                                      int64_t c, int64_t row_begin,
                                                      int64_t row_end)
{
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int32_t q = (int32_t)(r % p);
        FC_T *FC_RESTRICT dxr = dx + r * c;
        const FC_T *FC_RESTRICT dyn = dy + r / p * c;
        const int32_t *FC_RESTRICT an = argmax + r / p * c;
        for (int64_t k = 0; k < c; ++k)
            dxr[k] = an[k] == q ? dyn[k] : (FC_T)0;
    }
}

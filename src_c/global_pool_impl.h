/* global_pool_impl.h - global average and max pooling micro-kernels, one
 * instantiation per (dtype, instruction set); see fc_dispatch.h for the
 * macros and global_pool.h for the layout and the work items.
 *
 * Forward passes, two paths, chosen by the channel count alone (never by the
 * thread count or the instruction set, so the results depend on neither):
 *
 * - C >= FC_GP_WIDE: the channels are the vector lanes. Each vector of
 *   channels (four at a time, in registers) walks p = 0, 1, ..., P - 1, so
 *   every channel is summed (or compared) in position order, as numpy.mean
 *   and numpy.argmax over these axes do; the sum starts from the first
 *   element.
 * - fewer channels: the lanes would be mostly empty, so the image is read as
 *   one run of P * C values, value j of channel j % C, accumulated into
 *   m = lcm(C, lanes) partial results (lane i takes the values j = i mod m,
 *   in order), which each channel then combines in lane order.
 *
 * Max pooling keeps the first maximum (a later element must be strictly
 * greater to win) and lets NaN win over numbers, so a channel holding NaN
 * yields NaN with the index of its first NaN, as numpy.argmax.
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

/* Explicit vectors: FC_GVL channels of the element type, their comparison
 * masks (integers as wide as the element) and the int32 argmax lanes. */
#define FC_GVL ((int64_t)(FC_VEC_BYTES / sizeof(FC_T)))
typedef FC_T FC_FN(gvec) __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T))));
typedef int32_t FC_FN(gidx) __attribute__((vector_size(FC_GVL * 4), aligned(4)));

/* The mean's single rounding: the quotient is taken in double, so for
 * float32 it is the correctly rounded float32 quotient even where P has no
 * exact float32. */
#define FC_GP_MEAN(sum, p) ((FC_T)((double)(sum) / (double)(p)))

/* ---- average pooling ---------------------------------------------------- */

/* Positions per tile of the wide paths: a tile of the image (at most
 * FC_GP_TILE_BYTES) is read from memory once, in order, and stays in the
 * cache while each vector of channels walks it; the running results wait in
 * y between tiles. */
#define FC_GP_TILE(c) (FC_GP_TILE_BYTES / ((c) * (int64_t)sizeof(FC_T)) > 0                   \
                           ? FC_GP_TILE_BYTES / ((c) * (int64_t)sizeof(FC_T))                 \
                           : 1)

/* Channels [lo, hi) of one image, summed in position order: the readable
 * statement of the wide path, and its tail (positions [q0, q1); the sums
 * start from position 0 and wait in yn). */
FC_TARGET static inline void FC_FN(avg_channels)(FC_T *FC_RESTRICT yn, const FC_T *xn,
                                                 int64_t c, int64_t lo, int64_t hi, int64_t q0,
                                                 int64_t q1)
{
    for (int64_t k = lo; k < hi; ++k) {
        FC_T sum = q0 == 0 ? xn[k] : yn[k];
        for (int64_t q = q0 == 0 ? 1 : q0; q < q1; ++q)
            sum += xn[q * c + k];
        yn[k] = sum;
    }
}

/* The wide path: four, then one vector of channels at a time in registers,
 * tile by tile. */
FC_TARGET static void FC_FN(avg_wide)(FC_T *FC_RESTRICT yn, const FC_T *xn, int64_t p,
                                      int64_t c, int64_t lo, int64_t hi)
{
    typedef FC_FN(gvec) vec;
    const int64_t tile = FC_GP_TILE(c);
    for (int64_t q0 = 0; q0 < p; q0 += tile) {
        const int64_t q1 = p - q0 < tile ? p : q0 + tile, from = q0 == 0 ? 1 : q0;
        const FC_T *start = q0 == 0 ? xn : yn; /* the running sums so far */
        int64_t k = lo;
        for (; k + 4 * FC_GVL <= hi; k += 4 * FC_GVL) {
            vec s0 = *(const vec *)(start + k), s1 = *(const vec *)(start + k + FC_GVL);
            vec s2 = *(const vec *)(start + k + 2 * FC_GVL);
            vec s3 = *(const vec *)(start + k + 3 * FC_GVL);
            for (int64_t q = from; q < q1; ++q) {
                const FC_T *xq = xn + q * c + k;
                s0 += *(const vec *)xq;
                s1 += *(const vec *)(xq + FC_GVL);
                s2 += *(const vec *)(xq + 2 * FC_GVL);
                s3 += *(const vec *)(xq + 3 * FC_GVL);
            }
            *(vec *)(yn + k) = s0;
            *(vec *)(yn + k + FC_GVL) = s1;
            *(vec *)(yn + k + 2 * FC_GVL) = s2;
            *(vec *)(yn + k + 3 * FC_GVL) = s3;
        }
        for (; k + FC_GVL <= hi; k += FC_GVL) {
            vec s0 = *(const vec *)(start + k);
            for (int64_t q = from; q < q1; ++q)
                s0 += *(const vec *)(xn + q * c + k);
            *(vec *)(yn + k) = s0;
        }
        FC_FN(avg_channels)(yn, xn, c, k, hi, q0, q1);
    }
    for (int64_t k = lo; k < hi; ++k)
        yn[k] = FC_GP_MEAN(yn[k], p);
}

/* The narrow path (C < FC_GP_WIDE): m partial sums over the run of P * C
 * values, then each channel's lanes in order. */
FC_TARGET static void FC_FN(avg_narrow)(FC_T *FC_RESTRICT yn, const FC_T *FC_RESTRICT xn,
                                        int64_t p, int64_t c)
{
    FC_T acc[FC_GP_MAX_LANES];
    const int64_t m = fc_gp_lanes(c, FC_GP_SUM_LANES), len = p * c, used = len < m ? len : m;
    for (int64_t i = 0; i < used; ++i)
        acc[i] = xn[i];
    int64_t j = used;
    for (; j + m <= len; j += m)
        for (int64_t i = 0; i < m; ++i)
            acc[i] += xn[j + i];
    for (int64_t i = 0; j + i < len; ++i)
        acc[i] += xn[j + i];
    for (int64_t k = 0; k < c; ++k) {
        FC_T sum = acc[k];
        for (int64_t i = k + c; i < used; i += c)
            sum += acc[i];
        yn[k] = FC_GP_MEAN(sum, p);
    }
}

/* Global average pooling of items [item_begin, item_end): y (N, C) = the sum
 * over p of x (N, P, C), divided by P. */
FC_TARGET static void FC_FN(global_avg_pool_forward)(FC_T *y, const FC_T *x, int64_t p,
                                                     int64_t c, int64_t block,
                                                     int64_t item_begin, int64_t item_end)
{
    for (int64_t item = item_begin; item < item_end; ++item) {
        int64_t n, lo, hi;
        FC_FN(global_item)(item, c, block, &n, &lo, &hi);
        if (c < FC_GP_WIDE)
            FC_FN(avg_narrow)(y + n * c, x + n * p * c, p, c);
        else
            FC_FN(avg_wide)(y + n * c, x + n * p * c, p, c, lo, hi);
    }
}

/* Global average pooling gradient of rows [row_begin, row_end) of the N * P
 * rows of dx (N, P, C): every row of image n is dy[n] / P (N, C). Each
 * image's first row in the block is computed; the rest of its run is filled
 * with copies, from a stretch of at most FC_GP_FILL elements (doubled up
 * from that row) that stays in the cache. */
FC_TARGET static void FC_FN(global_avg_pool_backward)(FC_T *dx, const FC_T *dy, int64_t p,
                                                      int64_t c, int64_t row_begin,
                                                      int64_t row_end)
{
    for (int64_t r = row_begin; r < row_end;) {
        const int64_t n = r / p, stop = (n + 1) * p < row_end ? (n + 1) * p : row_end;
        FC_T *FC_RESTRICT d = dx + r * c;
        const FC_T *FC_RESTRICT dyn = dy + n * c;
        for (int64_t k = 0; k < c; ++k)
            d[k] = FC_GP_MEAN(dyn[k], p);
        const int64_t total = (stop - r) * c;
        const int64_t whole = FC_GP_FILL / c > 0 ? FC_GP_FILL / c * c : c;
        const int64_t stretch = total < whole ? total : whole;
        int64_t filled = c;
        while (filled < stretch) {
            const int64_t more = filled < stretch - filled ? filled : stretch - filled;
            memcpy(d + filled, d, (size_t)more * sizeof(FC_T));
            filled += more;
        }
        for (; filled < total; filled += stretch) {
            const int64_t more = stretch < total - filled ? stretch : total - filled;
            memcpy(d + filled, d, (size_t)more * sizeof(FC_T));
        }
        r = stop;
    }
}

/* ---- max pooling -------------------------------------------------------- */

/* Whether value v at position pv beats the best so far, b at pb, as the
 * first maximum (NaN counting as the largest) of values met in any order. */
FC_TARGET static inline int FC_FN(beats)(FC_T v, int64_t pv, FC_T b, int64_t pb)
{
    if (v != v)
        return b == b || pv < pb;
    return v > b || (v == b && pv < pb);
}

/* Channels [lo, hi) of spatial position q against the running maximum: the
 * readable statement of the rule (met in position order), and the tail of
 * the vector loops, which apply the same comparisons lane by lane. */
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

/* One vector of channels: the running maximum BEST and its positions AT
 * against the values V at positions Q (vectors). */
#define FC_GP_MAX_LANE(V, BEST, AT, Q)                                                      \
    do {                                                                                    \
        const mask wins_ = ((V) > (BEST)) | (((V) != (V)) & ((BEST) == (BEST)));            \
        const idx wins32_ = __builtin_convertvector(wins_, idx);                            \
        (BEST) = (vec)(((mask)(V) & wins_) | ((mask)(BEST) & ~wins_));                      \
        (AT) = ((Q) & wins32_) | ((AT) & ~wins32_);                                         \
    } while (0)

/* The wide path: four, then one vector of channels at a time in registers,
 * tile by tile (the running maxima and positions wait in yn and an). */
FC_TARGET static void FC_FN(max_wide)(FC_T *FC_RESTRICT yn, int32_t *FC_RESTRICT an,
                                      const FC_T *xn, int64_t p, int64_t c, int64_t lo,
                                      int64_t hi)
{
    typedef FC_FN(gvec) vec;
    typedef FC_FN(gidx) idx;
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    const int64_t tile = FC_GP_TILE(c);
    for (int64_t k = lo; k < hi; ++k) {
        yn[k] = xn[k];
        an[k] = 0;
    }
    for (int64_t q0 = 0; q0 < p; q0 += tile) {
        const int64_t q1 = p - q0 < tile ? p : q0 + tile, from = q0 == 0 ? 1 : q0;
        int64_t k = lo;
        /* Four vectors: four independent chains of compare-and-select hide
         * each one's latency. */
        for (; k + 4 * FC_GVL <= hi; k += 4 * FC_GVL) {
            vec b0 = *(const vec *)(yn + k), b1 = *(const vec *)(yn + k + FC_GVL);
            vec b2 = *(const vec *)(yn + k + 2 * FC_GVL);
            vec b3 = *(const vec *)(yn + k + 3 * FC_GVL);
            idx a0 = *(const idx *)(an + k), a1 = *(const idx *)(an + k + FC_GVL);
            idx a2 = *(const idx *)(an + k + 2 * FC_GVL);
            idx a3 = *(const idx *)(an + k + 3 * FC_GVL);
            for (int64_t q = from; q < q1; ++q) {
                const FC_T *xq = xn + q * c + k;
                const idx at = (idx){0} + (int32_t)q;
                const vec v0 = *(const vec *)xq, v1 = *(const vec *)(xq + FC_GVL);
                const vec v2 = *(const vec *)(xq + 2 * FC_GVL);
                const vec v3 = *(const vec *)(xq + 3 * FC_GVL);
                FC_GP_MAX_LANE(v0, b0, a0, at);
                FC_GP_MAX_LANE(v1, b1, a1, at);
                FC_GP_MAX_LANE(v2, b2, a2, at);
                FC_GP_MAX_LANE(v3, b3, a3, at);
            }
            *(vec *)(yn + k) = b0;
            *(vec *)(yn + k + FC_GVL) = b1;
            *(vec *)(yn + k + 2 * FC_GVL) = b2;
            *(vec *)(yn + k + 3 * FC_GVL) = b3;
            *(idx *)(an + k) = a0;
            *(idx *)(an + k + FC_GVL) = a1;
            *(idx *)(an + k + 2 * FC_GVL) = a2;
            *(idx *)(an + k + 3 * FC_GVL) = a3;
        }
        for (; k + FC_GVL <= hi; k += FC_GVL) {
            vec b0 = *(const vec *)(yn + k);
            idx a0 = *(const idx *)(an + k);
            for (int64_t q = from; q < q1; ++q) {
                const idx at = (idx){0} + (int32_t)q;
                const vec v0 = *(const vec *)(xn + q * c + k);
                FC_GP_MAX_LANE(v0, b0, a0, at);
            }
            *(vec *)(yn + k) = b0;
            *(idx *)(an + k) = a0;
        }
        for (int64_t q = from; q < q1 && k < hi; ++q)
            FC_FN(max_step)(yn, an, xn + q * c, (int32_t)q, k, hi);
    }
}

/* The narrow path (C < FC_GP_WIDE): the first maximum of each of m lanes over
 * the run of P * C values (lane i of chunk t holds value t * m + i), then each
 * channel's lanes compared by value and position. */
FC_TARGET static void FC_FN(max_narrow)(FC_T *FC_RESTRICT yn, int32_t *FC_RESTRICT an,
                                        const FC_T *FC_RESTRICT xn, int64_t p, int64_t c)
{
    typedef FC_FN(gvec) vec;
    typedef FC_FN(gidx) idx;
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    FC_T best[FC_GP_MAX_LANES] __attribute__((aligned(64)));
    int32_t chunk[FC_GP_MAX_LANES] __attribute__((aligned(64)));
    const int64_t m = fc_gp_lanes(c, FC_GP_MAX_SUM_LANES), len = p * c;
    const int64_t used = len < m ? len : m;
    for (int64_t i = 0; i < used; ++i) {
        best[i] = xn[i];
        chunk[i] = 0;
    }
    int64_t j = used;
    for (int32_t t = 1; j + m <= len; j += m, ++t) {
        const idx at = (idx){0} + t;
        for (int64_t i = 0; i < m; i += FC_GVL) {
            const vec v = *(const vec *)(xn + j + i);
            vec b = *(vec *)(best + i);
            idx a = *(idx *)(chunk + i);
            FC_GP_MAX_LANE(v, b, a, at);
            *(vec *)(best + i) = b;
            *(idx *)(chunk + i) = a;
        }
    }
    for (int64_t i = 0; j + i < len; ++i) {
        const FC_T v = xn[j + i];
        if ((v > best[i]) | ((v != v) & (best[i] == best[i]))) {
            best[i] = v;
            chunk[i] = (int32_t)(j / m);
        }
    }
    for (int64_t k = 0; k < c; ++k) {
        FC_T b = best[k];
        int64_t pos = (int64_t)chunk[k] * (m / c);
        for (int64_t i = k + c; i < used; i += c) {
            const int64_t pi = (int64_t)chunk[i] * (m / c) + i / c;
            if (FC_FN(beats)(best[i], pi, b, pos)) {
                b = best[i];
                pos = pi;
            }
        }
        yn[k] = b;
        an[k] = (int32_t)pos;
    }
}

/* Global max pooling of items [item_begin, item_end): y (N, C) the maximum
 * over p of x (N, P, C), argmax (N, C) int32 its first position p. */
FC_TARGET static void FC_FN(global_max_pool_forward)(FC_T *y, int32_t *argmax, const FC_T *x,
                                                     int64_t p, int64_t c, int64_t block,
                                                     int64_t item_begin, int64_t item_end)
{
    for (int64_t item = item_begin; item < item_end; ++item) {
        int64_t n, lo, hi;
        FC_FN(global_item)(item, c, block, &n, &lo, &hi);
        if (c < FC_GP_WIDE)
            FC_FN(max_narrow)(y + n * c, argmax + n * c, x + n * p * c, p, c);
        else
            FC_FN(max_wide)(y + n * c, argmax + n * c, x + n * p * c, p, c, lo, hi);
    }
}

/* Global max pooling gradient of rows [row_begin, row_end) of the N * P rows
 * of dx (N, P, C): the rows are zeroed, then each channel's dy (N, C) is
 * written at its argmax (N, C) when that row is in the range. Each element
 * is written by this call alone: the channels of an image never share one. */
FC_TARGET static void FC_FN(global_max_pool_backward)(FC_T *dx, const FC_T *dy,
                                                      const int32_t *argmax, int64_t p,
                                                      int64_t c, int64_t row_begin,
                                                      int64_t row_end)
{
    memset(dx + row_begin * c, 0, (size_t)((row_end - row_begin) * c) * sizeof(FC_T));
    for (int64_t n = row_begin / p; n * p < row_end; ++n)
        for (int64_t k = 0; k < c; ++k) {
            const int64_t r = n * p + argmax[n * c + k];
            if (r >= row_begin && r < row_end)
                dx[r * c + k] = dy[n * c + k];
        }
}

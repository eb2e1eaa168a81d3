/* batchnorm_impl.h - batch normalization micro-kernels, one instantiation
 * per (dtype, instruction set); see fc_dispatch.h for the macros and
 * batchnorm.h for the two layouts and how the work is cut.
 *
 * Every loop here is a plain loop over channels (rows layout) or over a
 * fixed number of lanes (runs layout) that the compiler vectorises without
 * changing the order of any sum, so each instruction set computes the same
 * bits.
 */

#define FC_BN_LANES 16

/* ---- sums --------------------------------------------------------------- */

/* Rows [r0, r1) added into a1, a2 (C): the readable statement of the sums. */
FC_TARGET static inline void FC_FN(bn_rows_add)(double *FC_RESTRICT a1, double *FC_RESTRICT a2,
                                                const FC_T *FC_RESTRICT dy,
                                                const FC_T *FC_RESTRICT x,
                                                const FC_T *FC_RESTRICT center, int64_t c,
                                                int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; ++r) {
        const FC_T *FC_RESTRICT xr = x + r * c;
        if (dy) {
            const FC_T *FC_RESTRICT ur = dy + r * c;
            for (int64_t k = 0; k < c; ++k) {
                const double d = (double)xr[k] - (double)center[k], u = (double)ur[k];
                a1[k] += u;
                a2[k] += u * d;
            }
        } else {
            for (int64_t k = 0; k < c; ++k) {
                const double d = (double)xr[k] - (double)center[k];
                a1[k] += d;
                a2[k] += d * d;
            }
        }
    }
}

FC_TARGET static void FC_FN(bn_sums_rows)(double *s1, double *s2, const FC_T *dy,
                                          const FC_T *x, const FC_T *center, int64_t rows,
                                          int64_t c, int64_t chunk_rows, int64_t chunk_begin,
                                          int64_t chunk_end)
{
    for (int64_t j = chunk_begin; j < chunk_end; ++j) {
        double *a1 = s1 + j * c, *a2 = s2 + j * c;
        const int64_t r0 = j * chunk_rows, r1 = rows - r0 < chunk_rows ? rows : r0 + chunk_rows;
        for (int64_t k = 0; k < c; ++k)
            a1[k] = a2[k] = 0.0;
        FC_FN(bn_rows_add)(a1, a2, dy, x, center, c, r0, r1);
    }
}

/* One piece of a run: len values from x (and dy), all of one channel. */
FC_TARGET static inline void FC_FN(bn_piece)(double *t1, double *t2,
                                             const FC_T *FC_RESTRICT dy,
                                             const FC_T *FC_RESTRICT x, double center,
                                             int64_t len)
{
    double a1[FC_BN_LANES] = {0}, a2[FC_BN_LANES] = {0};
    int64_t j = 0;
    if (dy) {
        for (; j + FC_BN_LANES <= len; j += FC_BN_LANES)
            for (int l = 0; l < FC_BN_LANES; ++l) {
                const double d = (double)x[j + l] - center, u = (double)dy[j + l];
                a1[l] += u;
                a2[l] += u * d;
            }
        for (int l = 0; j + l < len; ++l) {
            const double d = (double)x[j + l] - center, u = (double)dy[j + l];
            a1[l] += u;
            a2[l] += u * d;
        }
    } else {
        for (; j + FC_BN_LANES <= len; j += FC_BN_LANES)
            for (int l = 0; l < FC_BN_LANES; ++l) {
                const double d = (double)x[j + l] - center;
                a1[l] += d;
                a2[l] += d * d;
            }
        for (int l = 0; j + l < len; ++l) {
            const double d = (double)x[j + l] - center;
            a1[l] += d;
            a2[l] += d * d;
        }
    }
    double u1 = a1[0], u2 = a2[0];
    for (int l = 1; l < FC_BN_LANES; ++l) {
        u1 += a1[l];
        u2 += a2[l];
    }
    *t1 = u1;
    *t2 = u2;
}

FC_TARGET static void FC_FN(bn_sums_runs)(double *s1, double *s2, const FC_T *dy,
                                          const FC_T *x, const FC_T *center, int64_t c,
                                          int64_t inner, int64_t piece, int64_t item_begin,
                                          int64_t item_end)
{
    const int64_t pieces = (inner + piece - 1) / piece;
    for (int64_t item = item_begin; item < item_end; ++item) {
        const int64_t run = item / pieces, b = item % pieces;
        const int64_t start = run * inner + b * piece;
        const int64_t len = inner - b * piece < piece ? inner - b * piece : piece;
        FC_FN(bn_piece)(s1 + item, s2 + item, dy ? dy + start : NULL, x + start,
                        (double)center[run % c], len);
    }
}

/* ---- affine maps -------------------------------------------------------- */

/* out = a * u (+ p * v) (+ q) over n values of one channel (runs) or over
 * the channels of one row (rows: a, p, q indexed with the values). */
#define FC_BN_APPLY_LOOP(n, A, P, Q)                                                  \
    do {                                                                              \
        if (v && q)                                                                   \
            for (int64_t i = 0; i < (n); ++i)                                         \
                o[i] = A * w[i] + P * z[i] + Q;                                       \
        else if (v)                                                                   \
            for (int64_t i = 0; i < (n); ++i)                                         \
                o[i] = A * w[i] + P * z[i];                                           \
        else if (q)                                                                   \
            for (int64_t i = 0; i < (n); ++i)                                         \
                o[i] = A * w[i] + Q;                                                  \
        else                                                                          \
            for (int64_t i = 0; i < (n); ++i)                                         \
                o[i] = A * w[i];                                                      \
    } while (0)

FC_TARGET static void FC_FN(bn_apply_rows)(FC_T *out, const FC_T *u, const FC_T *a,
                                           const FC_T *v, const FC_T *p, const FC_T *q,
                                           int64_t c, int64_t row_begin, int64_t row_end)
{
    const FC_T *FC_RESTRICT ak = a, *FC_RESTRICT pk = p, *FC_RESTRICT qk = q;
    for (int64_t r = row_begin; r < row_end; ++r) {
        FC_T *FC_RESTRICT o = out + r * c;
        const FC_T *FC_RESTRICT w = u + r * c;
        const FC_T *FC_RESTRICT z = v ? v + r * c : NULL;
        FC_BN_APPLY_LOOP(c, ak[i], pk[i], qk[i]);
    }
}

FC_TARGET static void FC_FN(bn_apply_runs)(FC_T *out, const FC_T *u, const FC_T *a,
                                           const FC_T *v, const FC_T *p, const FC_T *q,
                                           int64_t c, int64_t inner, int64_t run_begin,
                                           int64_t run_end)
{
    for (int64_t run = run_begin; run < run_end; ++run) {
        const int64_t k = run % c;
        const FC_T ak = a[k], pk = v ? p[k] : 0, qk = q ? q[k] : 0;
        FC_T *FC_RESTRICT o = out + run * inner;
        const FC_T *FC_RESTRICT w = u + run * inner;
        const FC_T *FC_RESTRICT z = v ? v + run * inner : NULL;
        FC_BN_APPLY_LOOP(inner, ak, pk, qk);
    }
}

#undef FC_BN_APPLY_LOOP
#undef FC_BN_LANES

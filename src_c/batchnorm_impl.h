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

/* o[i] = a[i] * w[i] (+ p[i] * z[i]) (+ q[i]) for i < n: `step` 1 walks a, p
 * and q with the values (rows: one per channel), 0 holds them (runs: one
 * channel). z and p are read only with v, q only with use_q. */
FC_TARGET static inline void FC_FN(bn_span)(FC_T *FC_RESTRICT o, const FC_T *FC_RESTRICT w,
                                            const FC_T *FC_RESTRICT z,
                                            const FC_T *FC_RESTRICT a,
                                            const FC_T *FC_RESTRICT p,
                                            const FC_T *FC_RESTRICT q, int use_v, int use_q,
                                            int64_t n, int step)
{
    if (step) {
        if (use_v && use_q)
            for (int64_t i = 0; i < n; ++i)
                o[i] = a[i] * w[i] + p[i] * z[i] + q[i];
        else if (use_v)
            for (int64_t i = 0; i < n; ++i)
                o[i] = a[i] * w[i] + p[i] * z[i];
        else if (use_q)
            for (int64_t i = 0; i < n; ++i)
                o[i] = a[i] * w[i] + q[i];
        else
            for (int64_t i = 0; i < n; ++i)
                o[i] = a[i] * w[i];
        return;
    }
    const FC_T ak = a[0], pk = use_v ? p[0] : 0, qk = use_q ? q[0] : 0;
    if (use_v && use_q)
        for (int64_t i = 0; i < n; ++i)
            o[i] = ak * w[i] + pk * z[i] + qk;
    else if (use_v)
        for (int64_t i = 0; i < n; ++i)
            o[i] = ak * w[i] + pk * z[i];
    else if (use_q)
        for (int64_t i = 0; i < n; ++i)
            o[i] = ak * w[i] + qk;
    else
        for (int64_t i = 0; i < n; ++i)
            o[i] = ak * w[i];
}

/* Values computed into a buffer this long (bytes, in L1) before a
 * streaming copy to the output (fc_stream.h). */
#define FC_BN_BUF_BYTES 4096
#define FC_BN_BUF ((int64_t)(FC_BN_BUF_BYTES / sizeof(FC_T)))

/* out = a * u (+ p * v) (+ q) over rows [row_begin, row_end); with `stream`
 * the rows go through the buffer and streaming stores. */
FC_TARGET static void FC_FN(bn_apply_rows)(FC_T *out, const FC_T *u, const FC_T *a,
                                           const FC_T *v, const FC_T *p, const FC_T *q,
                                           int64_t c, int64_t row_begin, int64_t row_end,
                                           int stream)
{
    const int use_v = v != NULL, use_q = q != NULL;
    if (!stream) {
        for (int64_t r = row_begin; r < row_end; ++r)
            FC_FN(bn_span)(out + r * c, u + r * c, use_v ? v + r * c : NULL, a, p, q, use_v,
                           use_q, c, 1);
        return;
    }
    FC_T buf[FC_BN_BUF] __attribute__((aligned(64)));
    if (c <= FC_BN_BUF) {
        const int64_t per = FC_BN_BUF / c;
        for (int64_t r = row_begin; r < row_end; r += per) {
            const int64_t rows = row_end - r < per ? row_end - r : per;
            for (int64_t i = 0; i < rows; ++i) {
                const int64_t at = (r + i) * c;
                FC_FN(bn_span)(buf + i * c, u + at, use_v ? v + at : NULL, a, p, q, use_v,
                               use_q, c, 1);
            }
            fc_stream_copy(out + r * c, buf, (size_t)(rows * c) * sizeof(FC_T));
        }
    } else {
        for (int64_t r = row_begin; r < row_end; ++r)
            for (int64_t k = 0; k < c; k += FC_BN_BUF) {
                const int64_t n = c - k < FC_BN_BUF ? c - k : FC_BN_BUF, at = r * c + k;
                FC_FN(bn_span)(buf, u + at, use_v ? v + at : NULL, a + k,
                               use_v ? p + k : NULL, use_q ? q + k : NULL, use_v, use_q, n, 1);
                fc_stream_copy(out + at, buf, (size_t)n * sizeof(FC_T));
            }
    }
    fc_stream_fence();
}

/* The same for runs [run_begin, run_end) of the outer * C runs. */
FC_TARGET static void FC_FN(bn_apply_runs)(FC_T *out, const FC_T *u, const FC_T *a,
                                           const FC_T *v, const FC_T *p, const FC_T *q,
                                           int64_t c, int64_t inner, int64_t run_begin,
                                           int64_t run_end, int stream)
{
    const int use_v = v != NULL, use_q = q != NULL;
    FC_T buf[FC_BN_BUF] __attribute__((aligned(64)));
    for (int64_t run = run_begin; run < run_end; ++run) {
        const int64_t k = run % c;
        const FC_T *pk = use_v ? p + k : NULL, *qk = use_q ? q + k : NULL;
        if (!stream) {
            const int64_t at = run * inner;
            FC_FN(bn_span)(out + at, u + at, use_v ? v + at : NULL, a + k, pk, qk, use_v,
                           use_q, inner, 0);
            continue;
        }
        for (int64_t j = 0; j < inner; j += FC_BN_BUF) {
            const int64_t n = inner - j < FC_BN_BUF ? inner - j : FC_BN_BUF;
            const int64_t at = run * inner + j;
            FC_FN(bn_span)(buf, u + at, use_v ? v + at : NULL, a + k, pk, qk, use_v, use_q, n,
                           0);
            fc_stream_copy(out + at, buf, (size_t)n * sizeof(FC_T));
        }
    }
    if (stream)
        fc_stream_fence();
}

#undef FC_BN_BUF
#undef FC_BN_BUF_BYTES
#undef FC_BN_LANES

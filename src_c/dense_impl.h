/* dense_impl.h - the dense layer's micro-kernels, one instantiation per
 * (dtype, instruction set); see fc_dispatch.h for the macros and dense.h
 * for what they compute.
 *
 * The columns of the result are the vector lanes. Every result element is
 * one accumulator, started at zero and updated once per term in a fixed
 * order (k for a product row, the rows of a chunk for a weight gradient),
 * whatever block of registers it is computed in: the blocks only decide
 * how many elements share the loads. So a row of `out` is the same whether
 * its batch has one row or a thousand, and any split of the rows or of the
 * rows of dw among threads gives the same bits.
 */

#define FC_DVL ((int64_t)(FC_VEC_BYTES / sizeof(FC_T)))
typedef FC_T FC_FN(dvec) __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T))));

/* The first min(n, lanes) lanes of v stored at p (the last vector of a row
 * may hold padding columns). */
FC_TARGET static inline void FC_FN(dense_store)(FC_T *p, FC_FN(dvec) v, int64_t n)
{
    if (n >= FC_DVL) {
        *(FC_FN(dvec) *)p = v;
        return;
    }
    for (int64_t i = 0; i < n; ++i)
        p[i] = v[i];
}

FC_TARGET static inline FC_FN(dvec) FC_FN(dense_bias)(FC_FN(dvec) s, const FC_T *bias,
                                                      int64_t j)
{
    return bias ? s + *(const FC_FN(dvec) *)(bias + j) : s;
}

/* Rows [r0, r1) of out = a b (+ bias): four rows by two vectors of columns
 * in registers, then the leftover columns and rows. */
FC_TARGET static void FC_FN(dense_rows)(FC_T *FC_RESTRICT out, const FC_T *a, const FC_T *b,
                                        const FC_T *bias, int64_t k, int64_t u, int64_t ub,
                                        int64_t r0, int64_t r1)
{
    typedef FC_FN(dvec) vec;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const FC_T *a0 = a + r * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
        FC_T *o0 = out + r * u, *o1 = o0 + u, *o2 = o1 + u, *o3 = o2 + u;
        int64_t j = 0;
        for (; j + 2 * FC_DVL <= ub; j += 2 * FC_DVL) {
            vec s00 = {0}, s01 = {0}, s10 = {0}, s11 = {0};
            vec s20 = {0}, s21 = {0}, s30 = {0}, s31 = {0};
            for (int64_t q = 0; q < k; ++q) {
                const vec w0 = *(const vec *)(b + q * ub + j);
                const vec w1 = *(const vec *)(b + q * ub + j + FC_DVL);
                s00 += a0[q] * w0;
                s01 += a0[q] * w1;
                s10 += a1[q] * w0;
                s11 += a1[q] * w1;
                s20 += a2[q] * w0;
                s21 += a2[q] * w1;
                s30 += a3[q] * w0;
                s31 += a3[q] * w1;
            }
            const int64_t n0 = u - j, n1 = u - j - FC_DVL;
            FC_FN(dense_store)(o0 + j, FC_FN(dense_bias)(s00, bias, j), n0);
            FC_FN(dense_store)(o1 + j, FC_FN(dense_bias)(s10, bias, j), n0);
            FC_FN(dense_store)(o2 + j, FC_FN(dense_bias)(s20, bias, j), n0);
            FC_FN(dense_store)(o3 + j, FC_FN(dense_bias)(s30, bias, j), n0);
            FC_FN(dense_store)(o0 + j + FC_DVL, FC_FN(dense_bias)(s01, bias, j + FC_DVL), n1);
            FC_FN(dense_store)(o1 + j + FC_DVL, FC_FN(dense_bias)(s11, bias, j + FC_DVL), n1);
            FC_FN(dense_store)(o2 + j + FC_DVL, FC_FN(dense_bias)(s21, bias, j + FC_DVL), n1);
            FC_FN(dense_store)(o3 + j + FC_DVL, FC_FN(dense_bias)(s31, bias, j + FC_DVL), n1);
        }
        for (; j < ub; j += FC_DVL) {
            vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
            for (int64_t q = 0; q < k; ++q) {
                const vec w = *(const vec *)(b + q * ub + j);
                s0 += a0[q] * w;
                s1 += a1[q] * w;
                s2 += a2[q] * w;
                s3 += a3[q] * w;
            }
            FC_FN(dense_store)(o0 + j, FC_FN(dense_bias)(s0, bias, j), u - j);
            FC_FN(dense_store)(o1 + j, FC_FN(dense_bias)(s1, bias, j), u - j);
            FC_FN(dense_store)(o2 + j, FC_FN(dense_bias)(s2, bias, j), u - j);
            FC_FN(dense_store)(o3 + j, FC_FN(dense_bias)(s3, bias, j), u - j);
        }
    }
    for (; r < r1; ++r) {
        const FC_T *ar = a + r * k;
        for (int64_t j = 0; j < ub; j += FC_DVL) {
            vec s = {0};
            for (int64_t q = 0; q < k; ++q)
                s += ar[q] * *(const vec *)(b + q * ub + j);
            FC_FN(dense_store)(out + r * u + j, FC_FN(dense_bias)(s, bias, j), u - j);
        }
    }
}

/* Rows [k0, k1) of dw: four rows of dw by one vector of columns in
 * registers, each chunk's sum in s, the running sum of the chunks in t. */
FC_TARGET static void FC_FN(dense_weight_grad)(FC_T *FC_RESTRICT dw, const FC_T *x,
                                               const FC_T *dz, const int64_t *bounds,
                                               int64_t chunks, int64_t k, int64_t u,
                                               int64_t ub, int64_t k0, int64_t k1)
{
    typedef FC_FN(dvec) vec;
    int64_t i = k0;
    for (; i + 4 <= k1; i += 4) {
        for (int64_t j = 0; j < ub; j += FC_DVL) {
            vec t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};
            for (int64_t c = 0; c < chunks; ++c) {
                vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
                for (int64_t n = bounds[c]; n < bounds[c + 1]; ++n) {
                    const vec g = *(const vec *)(dz + n * ub + j);
                    const FC_T *xn = x + n * k + i;
                    s0 += xn[0] * g;
                    s1 += xn[1] * g;
                    s2 += xn[2] * g;
                    s3 += xn[3] * g;
                }
                if (c == 0) {
                    t0 = s0, t1 = s1, t2 = s2, t3 = s3;
                } else {
                    t0 += s0, t1 += s1, t2 += s2, t3 += s3;
                }
            }
            FC_FN(dense_store)(dw + i * u + j, t0, u - j);
            FC_FN(dense_store)(dw + (i + 1) * u + j, t1, u - j);
            FC_FN(dense_store)(dw + (i + 2) * u + j, t2, u - j);
            FC_FN(dense_store)(dw + (i + 3) * u + j, t3, u - j);
        }
    }
    for (; i < k1; ++i) {
        for (int64_t j = 0; j < ub; j += FC_DVL) {
            vec t = {0};
            for (int64_t c = 0; c < chunks; ++c) {
                vec s = {0};
                for (int64_t n = bounds[c]; n < bounds[c + 1]; ++n)
                    s += x[n * k + i] * *(const vec *)(dz + n * ub + j);
                t = c == 0 ? s : t + s;
            }
            FC_FN(dense_store)(dw + i * u + j, t, u - j);
        }
    }
}

#undef FC_DVL

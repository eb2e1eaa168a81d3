/* dense.h - the products of a dense layer, forward and gradients (see
 * dense.c).
 *
 * out (M, U) = a (M, K) b (K, Ub) [+ bias (Ub)], only the first U <= Ub
 * columns of b stored: the forward pass (a = x, b = the kernel) and the
 * input gradient (a = dz, b = the transposed kernel). Each out element is
 * one accumulator over k = 0, 1, ..., K - 1 in order (a multiply-add per
 * k), the bias added last, so a row's results depend neither on the other
 * rows nor on how the rows are shared out: rows [row_begin, row_end).
 *
 * dw (K, U) = the sum over the chunks c of a batch, in chunk order, of
 * x[rows of c]^T dz[rows of c] (x (M, K), dz (M, Ub)): each chunk's rows
 * added in row order, one accumulator per element, the chunks' sums then
 * added one after the other (the sum every weight gradient is, see
 * fastconv.runtime.batch). bounds[0] = 0 < bounds[1] < ... < bounds[G] = M.
 * Rows [k_begin, k_end) of dw.
 *
 * Ub is a multiple of fc_dense_lanes(isa, itemsize): the columns are the
 * vector lanes, padded with zeros by the caller.
 */
#ifndef FC_DENSE_H
#define FC_DENSE_H
#include "fc_common.h"

int fc_dense_lanes(int isa, int itemsize);

#define FC_DENSE_DECLARE(dt, T)                                                            \
    void fc_dense_rows_##dt(int isa, T *out, const T *a, const T *b, const T *bias,        \
                            int64_t k, int64_t u, int64_t ub, int64_t row_begin,           \
                            int64_t row_end);                                              \
    void fc_dense_weight_grad_##dt(int isa, T *dw, const T *x, const T *dz,                \
                                   const int64_t *bounds, int64_t chunks, int64_t k,       \
                                   int64_t u, int64_t ub, int64_t k_begin, int64_t k_end);

FC_DENSE_DECLARE(f32, float)
FC_DENSE_DECLARE(f64, double)
#endif

/* global_pool.h - global average and max pooling, forward and gradients
 * (see global_pool.c).
 *
 * Every image is seen as x (N, P, C): its P = W, H * W or D * H * W spatial
 * positions (rank 1, 2 or 3) flattened, C contiguous channels each. The
 * forward passes split their outputs y (N, C) into work items: item i is
 * image i / blocks, channels [b * block, min((b + 1) * block, C)) with
 * b = i % blocks and blocks = ceil(C / block) (below FC_GP_WIDE channels,
 * whole images: block = C). Each y element is computed by one item in an
 * order set by C alone, whatever the block, so the results do not depend on
 * how the items are shared out. The gradients split the N * P rows of dx
 * (N, P, C).
 */
#ifndef FC_GLOBAL_POOL_H
#define FC_GLOBAL_POOL_H
#include "fc_common.h"

#define FC_GLOBAL_POOL_DECLARE(dt, T)                                                       \
    /* y (N, C) = mean over p of x (N, P, C), items [item_begin, item_end). */              \
    void fc_global_avg_pool_forward_##dt(int isa, T *y, const T *x, int64_t p, int64_t c,   \
                                         int64_t block, int64_t item_begin,                 \
                                         int64_t item_end);                                 \
    /* dx (N, P, C) = dy (N, C) / P, rows [row_begin, row_end) of the N * P rows. */        \
    void fc_global_avg_pool_backward_##dt(int isa, T *dx, const T *dy, int64_t p,           \
                                          int64_t c, int64_t row_begin, int64_t row_end);   \
    /* y, argmax (N, C) = max over p of x (N, P, C) and its first p (NaN wins),             \
     * items [item_begin, item_end). */                                                     \
    void fc_global_max_pool_forward_##dt(int isa, T *y, int32_t *argmax, const T *x,        \
                                         int64_t p, int64_t c, int64_t block,               \
                                         int64_t item_begin, int64_t item_end);             \
    /* dx (N, P, C) = dy (N, C) where p == argmax (N, C), else 0, rows                      \
     * [row_begin, row_end) of the N * P rows (zeroed, then written at the argmax). */     \
    void fc_global_max_pool_backward_##dt(int isa, T *dx, const T *dy,                      \
                                          const int32_t *argmax, int64_t p, int64_t c,      \
                                          int64_t row_begin, int64_t row_end);

FC_GLOBAL_POOL_DECLARE(f32, float)
FC_GLOBAL_POOL_DECLARE(f64, double)
#endif

/* global_pool.c - global pooling kernels: the micro-kernels of
 * global_pool_impl.h compiled per dtype and instruction set, behind one entry
 * point per (op, dtype). */
#include <string.h>

#include "global_pool.h"

#define FC_TEMPLATE "global_pool_impl.h"
#include "fc_dispatch.h"

#define FC_GLOBAL_POOL_DEFINE(dt, T)                                                        \
    void fc_global_avg_pool_forward_##dt(int isa, T *y, const T *x, int64_t p, int64_t c,   \
                                         int64_t block, int64_t item_begin,                 \
                                         int64_t item_end)                                  \
    {                                                                                       \
        FC_DISPATCH(global_avg_pool_forward, dt, isa,                                       \
                    (y, x, p, c, block, item_begin, item_end));                             \
    }                                                                                       \
    void fc_global_avg_pool_backward_##dt(int isa, T *dx, const T *dy, int64_t p,           \
                                          int64_t c, int64_t row_begin, int64_t row_end)    \
    {                                                                                       \
        FC_DISPATCH(global_avg_pool_backward, dt, isa, (dx, dy, p, c, row_begin, row_end)); \
    }                                                                                       \
    void fc_global_max_pool_forward_##dt(int isa, T *y, int32_t *argmax, const T *x,        \
                                         int64_t p, int64_t c, int64_t block,               \
                                         int64_t item_begin, int64_t item_end)              \
    {                                                                                       \
        FC_DISPATCH(global_max_pool_forward, dt, isa,                                       \
                    (y, argmax, x, p, c, block, item_begin, item_end));                     \
    }                                                                                       \
    void fc_global_max_pool_backward_##dt(int isa, T *dx, const T *dy,                      \
                                          const int32_t *argmax, int64_t p, int64_t c,      \
                                          int64_t row_begin, int64_t row_end)               \
    {                                                                                       \
        FC_DISPATCH(global_max_pool_backward, dt, isa,                                      \
                    (dx, dy, argmax, p, c, row_begin, row_end));                            \
    }

FC_GLOBAL_POOL_DEFINE(f32, float)
FC_GLOBAL_POOL_DEFINE(f64, double)

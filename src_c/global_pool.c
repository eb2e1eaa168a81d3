/* global_pool.c - global pooling kernels: the micro-kernels of
 * global_pool_impl.h compiled per dtype and instruction set, behind one entry
 * point per (op, dtype). */
#include <string.h>

#include "global_pool.h"

/* Channel counts from which the channels are the vector lanes (a whole
 * AVX-512 vector of floats); below it the partial results of the narrow
 * paths: lcm(C, lanes) of them, at most FC_GP_MAX_LANES, with 64 lanes for
 * sums and 32 for maxima (whose lanes cost more to combine at the end). */
#define FC_GP_WIDE 16
#define FC_GP_SUM_LANES 64
#define FC_GP_MAX_SUM_LANES 32
#define FC_GP_MAX_LANES ((FC_GP_WIDE - 1) * FC_GP_SUM_LANES)
/* Bytes of an image the wide paths read per tile (see global_pool_impl.h). */
#define FC_GP_TILE_BYTES 16384
/* Elements of dx the average-pooling gradient copies from at a time. */
#define FC_GP_FILL 4096

/* lcm(c, lanes) */
static inline int64_t fc_gp_lanes(int64_t c, int64_t lanes)
{
    int64_t a = c, b = lanes;
    while (b) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return c / a * lanes;
}

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

/* pool2d.c - pooling kernels: the micro-kernels of pool2d_impl.h compiled per
 * dtype and instruction set, behind one entry point per (op, dtype). */
#include "pool2d.h"

#define FC_TEMPLATE "pool2d_impl.h"
#include "fc_dispatch.h"

#define FC_POOL_DEFINE(dt, T)                                                               \
    void fc_max_pool2d_forward_##dt(int isa, const fc_pool_geom *g, const T *x, T *y,       \
                                    int32_t *argmax, int64_t row_begin, int64_t row_end)    \
    {                                                                                       \
        FC_DISPATCH(max_pool2d_forward, dt, isa, (g, x, y, argmax, row_begin, row_end));    \
    }                                                                                       \
    void fc_max_pool2d_backward_##dt(int isa, const fc_pool_geom *g, const T *dy,           \
                                     const T *relu_y, const int32_t *argmax, T *dx,         \
                                     int64_t n_begin, int64_t n_end)                        \
    {                                                                                       \
        FC_DISPATCH(max_pool2d_backward, dt, isa,                                           \
                    (g, dy, relu_y, argmax, dx, n_begin, n_end));                           \
    }                                                                                       \
    int fc_max_pool2d_backward_disjoint_##dt(int isa, const fc_pool_geom *g, const T *dy,   \
                                             const T *relu_y, const int32_t *argmax, T *dx, \
                                             int64_t n_begin, int64_t n_end)                \
    {                                                                                       \
        FC_DISPATCH_RETURN(max_pool2d_backward_disjoint, dt, isa,                           \
                           (g, dy, relu_y, argmax, dx, n_begin, n_end));                    \
    }                                                                                       \
    void fc_avg_pool2d_forward_##dt(int isa, const fc_pool_geom *g, const T *x, T *y,       \
                                    int64_t row_begin, int64_t row_end)                     \
    {                                                                                       \
        FC_DISPATCH(avg_pool2d_forward, dt, isa, (g, x, y, row_begin, row_end));            \
    }                                                                                       \
    void fc_avg_pool2d_backward_##dt(int isa, const fc_pool_geom *g, const T *dy, T *dx,    \
                                     int64_t row_begin, int64_t row_end)                    \
    {                                                                                       \
        FC_DISPATCH(avg_pool2d_backward, dt, isa, (g, dy, dx, row_begin, row_end));         \
    }

FC_POOL_DEFINE(f32, float)
FC_POOL_DEFINE(f64, double)

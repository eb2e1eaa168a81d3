/* depthwise.c - depthwise convolution kernels: the micro-kernels of
 * depthwise_impl.h compiled per dtype and instruction set, behind one entry
 * point per (op, dtype) that takes the instruction set to use. */
#include "depthwise.h"

#define FC_TEMPLATE "depthwise_impl.h"
#include "fc_dispatch.h"

#define FC_DEFINE_ENTRIES(dt, T)                                                           \
    void fc_depthwise_forward_##dt(int isa, const fc_conv_geom *g, const T *x, const T *w, \
                                   const T *b, T *y, int64_t row_begin, int64_t row_end)   \
    {                                                                                      \
        FC_DISPATCH(depthwise_forward, dt, isa, (g, x, w, b, y, row_begin, row_end));      \
    }                                                                                      \
    void fc_depthwise_backward_data_##dt(int isa, const fc_conv_geom *g, const T *dy,      \
                                         const T *w, T *dx, int64_t row_begin,             \
                                         int64_t row_end)                                  \
    {                                                                                      \
        FC_DISPATCH(depthwise_backward_data, dt, isa, (g, dy, w, dx, row_begin, row_end)); \
    }                                                                                      \
    void fc_depthwise_backward_weight_##dt(int isa, const fc_conv_geom *g, const T *x,     \
                                           const T *dy, T *dw, T *db, int64_t n_begin,     \
                                           int64_t n_end)                                  \
    {                                                                                      \
        FC_DISPATCH(depthwise_backward_weight, dt, isa, (g, x, dy, dw, db, n_begin, n_end)); \
    }

FC_DEFINE_ENTRIES(f32, float)
FC_DEFINE_ENTRIES(f64, double)

/* resize.c - upsampling kernels: the micro-kernels of resize_impl.h compiled
 * per dtype and instruction set, behind one entry point per (op, dtype). */
#include <string.h>

#include "resize.h"

#define FC_TEMPLATE "resize_impl.h"
#include "fc_dispatch.h"

#define FC_RESIZE_DEFINE(dt, T)                                                             \
    void fc_bilinear_forward_##dt(int isa, T *y, T *row, const T *x, int64_t c,             \
                                  const fc_linear_axis *rows, const fc_linear_axis *cols,   \
                                  int64_t row_begin, int64_t row_end)                       \
    {                                                                                       \
        FC_DISPATCH(bilinear_forward, dt, isa,                                              \
                    (y, row, x, c, rows, cols, row_begin, row_end));                        \
    }                                                                                       \
    void fc_bilinear_backward_##dt(int isa, T *dx, T *row, const T *dy, int64_t c,          \
                                   const fc_linear_axis *rows, const fc_linear_axis *cols,  \
                                   int64_t row_begin, int64_t row_end)                      \
    {                                                                                       \
        FC_DISPATCH(bilinear_backward, dt, isa,                                             \
                    (dx, row, dy, c, rows, cols, row_begin, row_end));                      \
    }                                                                                       \
    void fc_nearest_forward_##dt(int isa, T *y, const T *x, const fc_nearest_geom *g,       \
                                 int64_t row_begin, int64_t row_end)                        \
    {                                                                                       \
        FC_DISPATCH(nearest_forward, dt, isa, (y, x, g, row_begin, row_end));               \
    }                                                                                       \
    void fc_nearest_backward_##dt(int isa, T *dx, const T *dy, const fc_nearest_geom *g,    \
                                  int64_t row_begin, int64_t row_end)                       \
    {                                                                                       \
        FC_DISPATCH(nearest_backward, dt, isa, (dx, dy, g, row_begin, row_end));            \
    }

FC_RESIZE_DEFINE(f32, float)
FC_RESIZE_DEFINE(f64, double)

/* pool2d.h - max and average pooling, forward and gradients (see pool2d.c). */
#ifndef FC_POOL2D_H
#define FC_POOL2D_H
#include "fc_common.h"

#define FC_POOL_DECLARE(dt, T)                                                              \
    /* y and argmax rows [row_begin, row_end) of the (N * OH) output rows. */               \
    void fc_max_pool2d_forward_##dt(int isa, const fc_pool_geom *g, const T *x, T *y,       \
                                    int32_t *argmax, int64_t row_begin, int64_t row_end);   \
    /* dx of images [n_begin, n_end); with relu_y (not NULL), only where relu_y > 0. */   \
    void fc_max_pool2d_backward_##dt(int isa, const fc_pool_geom *g, const T *dy,           \
                                     const T *relu_y, const int32_t *argmax, T *dx,         \
                                     int64_t n_begin, int64_t n_end);                       \
    /* The same for windows that do not overlap, as a gather; 0 (and then dx must be      \
     * recomputed by fc_max_pool2d_backward) if some argmax lies outside its window. */   \
    int fc_max_pool2d_backward_disjoint_##dt(int isa, const fc_pool_geom *g, const T *dy,   \
                                             const T *relu_y, const int32_t *argmax, T *dx, \
                                             int64_t n_begin, int64_t n_end);               \
    /* y rows [row_begin, row_end) of the (N * OH) output rows. */                          \
    void fc_avg_pool2d_forward_##dt(int isa, const fc_pool_geom *g, const T *x, T *y,       \
                                    int64_t row_begin, int64_t row_end);                    \
    /* dx rows [row_begin, row_end) of the (N * H) input rows. */                           \
    void fc_avg_pool2d_backward_##dt(int isa, const fc_pool_geom *g, const T *dy, T *dx,    \
                                     int64_t row_begin, int64_t row_end);

FC_POOL_DECLARE(f32, float)
FC_POOL_DECLARE(f64, double)
#endif

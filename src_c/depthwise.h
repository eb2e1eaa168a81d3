/* depthwise.h - depthwise convolution (every input channel convolved on its
 * own, with `c_out / c_in` filters each), forward and gradients, rank 1-3
 * (see depthwise.c). Geometry as for conv2d.h, with c_out = c_in * m;
 * kernels (KD * KH * KW, c_in * m): output channel c * m + j reads input
 * channel c. */
#ifndef FC_DEPTHWISE_H
#define FC_DEPTHWISE_H
#include "fc_common.h"

#define FC_DEPTHWISE_DECLARE(dt, T)                                                         \
    /* y rows [row_begin, row_end) of the (N * OD * OH) output rows; b may be NULL. */      \
    void fc_depthwise_forward_##dt(int isa, const fc_conv_geom *g, const T *x, const T *w,  \
                                   const T *b, T *y, int64_t row_begin, int64_t row_end);   \
    /* dx rows [row_begin, row_end) of the (N * D * H) input rows. */                       \
    void fc_depthwise_backward_data_##dt(int isa, const fc_conv_geom *g, const T *dy,       \
                                         const T *w, T *dx, int64_t row_begin,              \
                                         int64_t row_end);                                  \
    /* dw and db (either may be NULL) summed over images [n_begin, n_end), written. */      \
    void fc_depthwise_backward_weight_##dt(int isa, const fc_conv_geom *g, const T *x,      \
                                           const T *dy, T *dw, T *db, int64_t n_begin,      \
                                           int64_t n_end);

FC_DEPTHWISE_DECLARE(f32, float)
FC_DEPTHWISE_DECLARE(f64, double)
#endif

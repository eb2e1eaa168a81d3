/* conv2d.h - direct 2-D convolution, forward and gradients (see conv2d.c). */
#ifndef FC_CONV2D_H
#define FC_CONV2D_H
#include "fc_common.h"

/* y rows [row_begin, row_end) of the (N * OH) output rows. */
void fc_conv2d_forward_f32(int isa, const fc_conv_geom *g, const float *x, const float *w,
                           const float *b, float *y, int64_t row_begin, int64_t row_end);
void fc_conv2d_forward_f64(int isa, const fc_conv_geom *g, const double *x, const double *w,
                           const double *b, double *y, int64_t row_begin, int64_t row_end);

/* dx rows [row_begin, row_end) of the (N * H) input rows; wt is w transposed
 * to (KH, KW, C_out, C_in). */
void fc_conv2d_backward_data_f32(int isa, const fc_conv_geom *g, const float *dy,
                                 const float *wt, float *dx, int64_t row_begin,
                                 int64_t row_end);
void fc_conv2d_backward_data_f64(int isa, const fc_conv_geom *g, const double *dy,
                                 const double *wt, double *dx, int64_t row_begin,
                                 int64_t row_end);

/* dw (KH, KW, C_in, C_out) and db (C_out,) or NULL of images [n_begin, n_end),
 * written, or added to the stored values when `accumulate`. Summing images in
 * several calls this way gives the same bits as one call over all of them. */
void fc_conv2d_backward_weight_f32(int isa, const fc_conv_geom *g, const float *x,
                                   const float *dy, float *dw, float *db, int64_t n_begin,
                                   int64_t n_end, int accumulate);
void fc_conv2d_backward_weight_f64(int isa, const fc_conv_geom *g, const double *x,
                                   const double *dy, double *dw, double *db, int64_t n_begin,
                                   int64_t n_end, int accumulate);

/* dx[k] = y[k] > 0 ? dy[k] : 0 for k in [begin, end): the ReLU gradient
 * given its output y (dx may alias dy). */
void fc_relu_backward_f32(int isa, const float *dy, const float *y, float *dx, int64_t begin,
                          int64_t end);
void fc_relu_backward_f64(int isa, const double *dy, const double *y, double *dx,
                          int64_t begin, int64_t end);

/* out[k] = parts[0, k] + parts[1, k] + ... in that order, k in [begin, end);
 * parts (n_parts, len). Results are the same however [0, len) is split into
 * ranges, provided every range starts at a multiple of FC_SUM_BLOCK and ends
 * at one or at len. */
#define FC_SUM_BLOCK 16
void fc_sum_parts_f32(const float *parts, int64_t n_parts, int64_t len, float *out,
                      int64_t begin, int64_t end);
void fc_sum_parts_f64(const double *parts, int64_t n_parts, int64_t len, double *out,
                      int64_t begin, int64_t end);
#endif

/* resize.h - upsampling of images and volumes, forward and gradients:
 * bilinear (2-D) and nearest-neighbour (rank 1 to 3); see resize.c.
 *
 * Arrays are channels last and C-contiguous. Bilinear: x (N, H, W, C),
 * y (N, OH, OW, C). Each axis of the resize is described by its taps,
 * computed by fastconv.ops: output index o reads the input indices i0[o] and
 * i1[o] (equal at the last input) with weights w0[o] and w1[o] (= 1 - w0[o],
 * in the images' element type), and input index i is read by the outputs
 * [lo[i], hi[i]) (the taps never decrease, so these are ranges). Rows are
 * interpolated first, then columns:
 *   t = wh0 * x[h0] + wh1 * x[h1]                 (one row of W * C values)
 *   y[oh, ow] = ww0 * t[w0] + ww1 * t[w1].
 * Nearest: x (N, D, H, W, C), y (N, D * sd, H * sh, W * sw, C); lower ranks
 * are rank 3 with leading sizes and factors 1.
 */
#ifndef FC_RESIZE_H
#define FC_RESIZE_H
#include "fc_common.h"

/* One axis of a linear resize from `in` to `out` indices. */
typedef struct {
    int64_t in, out;
    const int64_t *i0, *i1; /* (out,) the two input taps of each output index */
    const void *w0, *w1;    /* (out,) their weights, of the images' element type */
    const int64_t *lo, *hi; /* (in,) the outputs [lo, hi) reading each input index */
} fc_linear_axis;

/* Nearest-neighbour upsampling of x (n, d, h, w, c) by (sd, sh, sw). */
typedef struct {
    int64_t n, d, h, w, c;
    int64_t sd, sh, sw;
} fc_nearest_geom;

#define FC_RESIZE_DECLARE(dt, T)                                                            \
    /* y rows [row_begin, row_end) of the N * OH output rows; row: W * C scratch values. */ \
    void fc_bilinear_forward_##dt(int isa, T *y, T *row, const T *x, int64_t c,             \
                                  const fc_linear_axis *rows, const fc_linear_axis *cols,   \
                                  int64_t row_begin, int64_t row_end);                      \
    /* dx rows [row_begin, row_end) of the N * H input rows, gathered from dy;              \
     * row: OW * C scratch values. */                                                       \
    void fc_bilinear_backward_##dt(int isa, T *dx, T *row, const T *dy, int64_t c,          \
                                   const fc_linear_axis *rows, const fc_linear_axis *cols,  \
                                   int64_t row_begin, int64_t row_end);                     \
    /* y rows [row_begin, row_end) of the N * (D * sd) * (H * sh) output rows. */           \
    void fc_nearest_forward_##dt(int isa, T *y, const T *x, const fc_nearest_geom *g,       \
                                 int64_t row_begin, int64_t row_end);                       \
    /* dx rows [row_begin, row_end) of the N * D * H input rows, each the sum of its        \
     * sd * sh * sw output elements per element. */                                        \
    void fc_nearest_backward_##dt(int isa, T *dx, const T *dy, const fc_nearest_geom *g,    \
                                  int64_t row_begin, int64_t row_end);

FC_RESIZE_DECLARE(f32, float)
FC_RESIZE_DECLARE(f64, double)
#endif

/* resize.h - bilinear resizing of images, forward and gradient (see resize.c).
 *
 * Images are x (N, H, W, C) and y (N, OH, OW, C), C-contiguous. Each axis of
 * the resize is described by its taps, computed by fastconv.ops: output
 * index o reads the input indices i0[o] and i1[o] (equal at the last input)
 * with weights 1 - f[o] and f[o], and input index i is read by the outputs
 * [lo[i], hi[i]) (the taps never decrease, so these are ranges). Pixel
 * (oh, ow) of y is then
 *   (1 - fh) * ((1 - fw) * x[h0, w0] + fw * x[h0, w1])
 *     + fh * ((1 - fw) * x[h1, w0] + fw * x[h1, w1]),
 * the weights rounded to the element type first.
 */
#ifndef FC_RESIZE_H
#define FC_RESIZE_H
#include "fc_common.h"

/* One axis of a linear resize from `in` to `out` indices. */
typedef struct {
    int64_t in, out;
    const int64_t *i0, *i1; /* (out,) the two input taps of each output index */
    const double *f;        /* (out,) the weight of tap i1 (tap i0 has 1 - f) */
    const int64_t *lo, *hi; /* (in,) the outputs [lo, hi) reading each input index */
} fc_linear_axis;

#define FC_RESIZE_DECLARE(dt, T)                                                            \
    /* y rows [row_begin, row_end) of the N * OH output rows. */                            \
    void fc_bilinear_forward_##dt(int isa, T *y, const T *x, int64_t c,                     \
                                  const fc_linear_axis *rows, const fc_linear_axis *cols,   \
                                  int64_t row_begin, int64_t row_end);                      \
    /* dx rows [row_begin, row_end) of the N * H input rows, gathered from dy. */           \
    void fc_bilinear_backward_##dt(int isa, T *dx, const T *dy, int64_t c,                  \
                                   const fc_linear_axis *rows, const fc_linear_axis *cols,  \
                                   int64_t row_begin, int64_t row_end);

FC_RESIZE_DECLARE(f32, float)
FC_RESIZE_DECLARE(f64, double)
#endif

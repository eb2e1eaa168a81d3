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

/* dw of images [0, g->n) in n_chunks chunks by whole blocks of dw instead
 * of by chunks: share `part` of `parts` of the blocks, each chunk's sum of a
 * block added to dw in chunk order, the bits of
 * fc_conv2d_backward_weight over each chunk then fc_sum_parts. Applies when
 * fc_conv2d_weight_blocks (the number of blocks) is not 0; scratch holds as
 * many elements as dw. */
int64_t fc_conv2d_weight_blocks_f32(int isa, const fc_conv_geom *g);
int64_t fc_conv2d_weight_blocks_f64(int isa, const fc_conv_geom *g);
void fc_conv2d_backward_weight_blocks_f32(int isa, const fc_conv_geom *g, const float *x,
                                          const float *dy, float *dw, float *scratch,
                                          int64_t n_chunks, int64_t part, int64_t parts);
void fc_conv2d_backward_weight_blocks_f64(int isa, const fc_conv_geom *g, const double *x,
                                          const double *dy, double *dw, double *scratch,
                                          int64_t n_chunks, int64_t part, int64_t parts);

/* dx[k] = y[k] > 0 ? dy[k] : 0 for k in [begin, end): the ReLU gradient
 * given its output y (dx may alias dy). */
void fc_relu_backward_f32(int isa, const float *dy, const float *y, float *dx, int64_t begin,
                          int64_t end);
void fc_relu_backward_f64(int isa, const double *dy, const double *y, double *dx,
                          int64_t begin, int64_t end);

/* Whether a[0 .. len) holds no infinity and no NaN. */
int fc_all_finite_f32(const float *a, int64_t len);
int fc_all_finite_f64(const double *a, int64_t len);

/* Whether a[0 .. len) holds a -0. */
int fc_has_negative_zero_f32(const float *a, int64_t len);
int fc_has_negative_zero_f64(const double *a, int64_t len);

/* out[k] = parts[0, k] + parts[1, k] + ... in that order, k in [begin, end);
 * parts (n_parts, len). Results are the same however [0, len) is split into
 * ranges, provided every range starts at a multiple of FC_SUM_BLOCK and ends
 * at one or at len. */
#define FC_SUM_BLOCK 16
void fc_sum_parts_f32(const float *parts, int64_t n_parts, int64_t len, float *out,
                      int64_t begin, int64_t end);
void fc_sum_parts_f64(const double *parts, int64_t n_parts, int64_t len, double *out,
                      int64_t begin, int64_t end);

/* The input gradient of a strided convolution by stride phases. The input
 * positions s * a + r (one residue r per axis) receive only the taps t with
 * (r + pad - t * dil) divisible by s: a unit-stride convolution of dy with
 * those taps, flipped, which runs on the blocked forward kernel and writes
 * its pixels of dx in place (the geometry's output strides). A phase no tap
 * reaches is filled (with the bias, or zeros). */
typedef struct {
    fc_conv_geom g;   /* the phase's convolution: dy -> its pixels of dx */
    int64_t w_offset; /* its kernel (KD', KH', KW', C_out, C_in) in the plan's buffer */
    int64_t y_offset; /* its first pixel in dx */
    int empty;        /* no tap reaches these pixels */
} fc_data_phase;

/* Phases of g's input gradient into `phases` (at most max_phases) and their
 * kernels from w (KD, KH, KW, C_in, C_out) into wbuf (as many elements as
 * w); returns the number of phases, or -1 if there are more than
 * max_phases (then use fc_conv2d_backward_data). */
int64_t fc_data_phases_plan_f32(const fc_conv_geom *g, const float *w, float *wbuf,
                                fc_data_phase *phases, int64_t max_phases);
int64_t fc_data_phases_plan_f64(const fc_conv_geom *g, const double *w, double *wbuf,
                                fc_data_phase *phases, int64_t max_phases);

/* Share `part` of `parts` of every phase's rows, for images [0, n) of dy and
 * dx (the plan's geometries' image counts are replaced by n): dx = input
 * gradient, plus b (C_in,) when not NULL. */
void fc_conv2d_backward_data_phases_f32(int isa, const fc_data_phase *phases, int64_t n_phases,
                                        int64_t n, const float *dy, const float *wbuf,
                                        const float *b, float *dx, int64_t part, int64_t parts);
void fc_conv2d_backward_data_phases_f64(int isa, const fc_data_phase *phases, int64_t n_phases,
                                        int64_t n, const double *dy, const double *wbuf,
                                        const double *b, double *dx, int64_t part,
                                        int64_t parts);
#endif

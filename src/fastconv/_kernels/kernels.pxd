# Declarations of the C kernels in src_c/ and the OpenMP shim, shared by the
# Cython modules of this package.
from cython cimport floating
from libc.stdint cimport int32_t, int64_t


cdef extern from "fc_omp.h" nogil:
    int FC_OPENMP_ENABLED
    int fc_last_team_size
    void fc_record_team_size()
    void fc_omp_barrier()
    void fc_omp_release_threads()


cdef extern from "fc_common.h" nogil:
    int fc_cpu_supports(int isa)

    ctypedef struct fc_conv_geom:
        int64_t n, h, w, c_in
        int64_t kh, kw, c_out
        int64_t oh, ow
        int64_t stride_h, stride_w
        int64_t dil_h, dil_w
        int64_t pad_top, pad_left
        int relu
        int64_t d, kd, od, stride_d, dil_d, pad_front
        int64_t y_sn, y_sd, y_sh, y_sw
    void fc_dense_output(fc_conv_geom *g)

    ctypedef struct fc_pool_geom:
        int64_t n, h, w, c
        int64_t kh, kw
        int64_t oh, ow
        int64_t stride_h, stride_w
        int64_t pad_top, pad_left
        int64_t index_w


cdef extern from "conv2d.h" nogil:
    void fc_conv2d_forward_f32(int isa, const fc_conv_geom *g, const float *x,
                               const float *w, const float *b, float *y,
                               int64_t row_begin, int64_t row_end)
    void fc_conv2d_forward_f64(int isa, const fc_conv_geom *g, const double *x,
                               const double *w, const double *b, double *y,
                               int64_t row_begin, int64_t row_end)
    void fc_conv2d_backward_data_f32(int isa, const fc_conv_geom *g, const float *dy,
                                     const float *wt, float *dx,
                                     int64_t row_begin, int64_t row_end)
    void fc_conv2d_backward_data_f64(int isa, const fc_conv_geom *g, const double *dy,
                                     const double *wt, double *dx,
                                     int64_t row_begin, int64_t row_end)
    void fc_conv2d_backward_weight_f32(int isa, const fc_conv_geom *g, const float *x,
                                       const float *dy, float *dw, float *db,
                                       int64_t n_begin, int64_t n_end, int accumulate)
    void fc_conv2d_backward_weight_f64(int isa, const fc_conv_geom *g, const double *x,
                                       const double *dy, double *dw, double *db,
                                       int64_t n_begin, int64_t n_end, int accumulate)
    int64_t fc_conv2d_weight_blocks_f32(int isa, const fc_conv_geom *g)
    int64_t fc_conv2d_weight_blocks_f64(int isa, const fc_conv_geom *g)
    void fc_conv2d_backward_weight_blocks_f32(int isa, const fc_conv_geom *g, const float *x,
                                              const float *dy, float *dw, float *scratch,
                                              int64_t n_chunks, int64_t part, int64_t parts)
    void fc_conv2d_backward_weight_blocks_f64(int isa, const fc_conv_geom *g, const double *x,
                                              const double *dy, double *dw, double *scratch,
                                              int64_t n_chunks, int64_t part, int64_t parts)
    void fc_relu_backward_f32(int isa, const float *dy, const float *y, float *dx,
                              int64_t begin, int64_t end)
    void fc_relu_backward_f64(int isa, const double *dy, const double *y, double *dx,
                              int64_t begin, int64_t end)
    ctypedef struct fc_data_phase:
        fc_conv_geom g
        int64_t w_offset, y_offset
        int empty
    int64_t fc_data_phases_plan_f32(const fc_conv_geom *g, const float *w, float *wbuf,
                                    fc_data_phase *phases, int64_t max_phases)
    int64_t fc_data_phases_plan_f64(const fc_conv_geom *g, const double *w, double *wbuf,
                                    fc_data_phase *phases, int64_t max_phases)
    void fc_conv2d_backward_data_phases_f32(int isa, const fc_data_phase *phases,
                                            int64_t n_phases, int64_t n, const float *dy,
                                            const float *wbuf, const float *b, float *dx,
                                            int64_t part, int64_t parts)
    void fc_conv2d_backward_data_phases_f64(int isa, const fc_data_phase *phases,
                                            int64_t n_phases, int64_t n, const double *dy,
                                            const double *wbuf, const double *b, double *dx,
                                            int64_t part, int64_t parts)
    int FC_SUM_BLOCK
    bint fc_all_finite_f32(const float *a, int64_t len)
    bint fc_all_finite_f64(const double *a, int64_t len)
    bint fc_has_negative_zero_f32(const float *a, int64_t len)
    bint fc_has_negative_zero_f64(const double *a, int64_t len)
    void fc_sum_parts_f32(const float *parts, int64_t n_parts, int64_t length,
                          float *out, int64_t begin, int64_t end)
    void fc_sum_parts_f64(const double *parts, int64_t n_parts, int64_t length,
                          double *out, int64_t begin, int64_t end)


cdef extern from "depthwise.h" nogil:
    void fc_depthwise_forward_f32(int isa, const fc_conv_geom *g, const float *x,
                                  const float *w, const float *b, float *y,
                                  int64_t row_begin, int64_t row_end)
    void fc_depthwise_forward_f64(int isa, const fc_conv_geom *g, const double *x,
                                  const double *w, const double *b, double *y,
                                  int64_t row_begin, int64_t row_end)
    void fc_depthwise_backward_data_f32(int isa, const fc_conv_geom *g, const float *dy,
                                        const float *w, float *dx,
                                        int64_t row_begin, int64_t row_end)
    void fc_depthwise_backward_data_f64(int isa, const fc_conv_geom *g, const double *dy,
                                        const double *w, double *dx,
                                        int64_t row_begin, int64_t row_end)
    void fc_depthwise_backward_weight_f32(int isa, const fc_conv_geom *g, const float *x,
                                          const float *dy, float *dw, float *db,
                                          int64_t n_begin, int64_t n_end)
    void fc_depthwise_backward_weight_f64(int isa, const fc_conv_geom *g, const double *x,
                                          const double *dy, double *dw, double *db,
                                          int64_t n_begin, int64_t n_end)


cdef extern from "optim.h" nogil:
    void fc_sgd_update_f32(int isa, float *w, const float *g, float *m, float lr, float mu,
                           int nesterov, int64_t begin, int64_t end)
    void fc_sgd_update_f64(int isa, double *w, const double *g, double *m, double lr,
                           double mu, int nesterov, int64_t begin, int64_t end)
    void fc_rmsprop_update_f32(int isa, float *w, const float *g, float *v, float *a,
                               float *mom, float lr, float rho, float one_minus_rho, float eps,
                               float momentum, int64_t begin, int64_t end)
    void fc_rmsprop_update_f64(int isa, double *w, const double *g, double *v, double *a,
                               double *mom, double lr, double rho, double one_minus_rho,
                               double eps, double momentum, int64_t begin, int64_t end)
    void fc_adam_update_f32(int isa, float *w, const float *g, float *m, float *v,
                            float *v_hat, float alpha, float one_minus_beta_1,
                            float one_minus_beta_2, float eps, int64_t begin, int64_t end)
    void fc_adam_update_f64(int isa, double *w, const double *g, double *m, double *v,
                            double *v_hat, double alpha, double one_minus_beta_1,
                            double one_minus_beta_2, double eps, int64_t begin, int64_t end)
    void fc_weight_decay_f32(int isa, float *w, float wd, float lr, int64_t begin, int64_t end)
    void fc_adagrad_update_f32(int isa, float *w, const float *g, float *acc, float lr, float eps,
                               int64_t begin, int64_t end)
    void fc_adadelta_update_f32(int isa, float *w, const float *g, float *ag, float *adv, float lr,
                                float rho, float one_minus_rho, float eps, int64_t begin, int64_t end)
    void fc_adamax_update_f32(int isa, float *w, const float *g, float *m, float *u, float lr,
                              float one_minus_beta_1, float beta_2, float one_minus_beta_1_power,
                              float eps, int64_t begin, int64_t end)
    void fc_nadam_update_f32(int isa, float *w, const float *g, float *m, float *v, float lr,
                             float one_minus_beta_1, float one_minus_beta_2, float u_next,
                             float c_next, float c_g, float c_now, float c_v, float eps,
                             int64_t begin, int64_t end)
    void fc_lion_update_f32(int isa, float *w, const float *g, float *m, float lr, float beta_1,
                            float one_minus_beta_1, float beta_2, float one_minus_beta_2,
                            int64_t begin, int64_t end)
    void fc_weight_decay_f64(int isa, double *w, double wd, double lr, int64_t begin, int64_t end)
    void fc_adagrad_update_f64(int isa, double *w, const double *g, double *acc, double lr, double eps,
                               int64_t begin, int64_t end)
    void fc_adadelta_update_f64(int isa, double *w, const double *g, double *ag, double *adv, double lr,
                                double rho, double one_minus_rho, double eps, int64_t begin, int64_t end)
    void fc_adamax_update_f64(int isa, double *w, const double *g, double *m, double *u, double lr,
                              double one_minus_beta_1, double beta_2, double one_minus_beta_1_power,
                              double eps, int64_t begin, int64_t end)
    void fc_nadam_update_f64(int isa, double *w, const double *g, double *m, double *v, double lr,
                             double one_minus_beta_1, double one_minus_beta_2, double u_next,
                             double c_next, double c_g, double c_now, double c_v, double eps,
                             int64_t begin, int64_t end)
    void fc_lion_update_f64(int isa, double *w, const double *g, double *m, double lr, double beta_1,
                            double one_minus_beta_1, double beta_2, double one_minus_beta_2,
                            int64_t begin, int64_t end)


cdef extern from "pool2d.h" nogil:
    void fc_max_pool2d_forward_f32(int isa, const fc_pool_geom *g, const float *x,
                                   float *y, int32_t *argmax,
                                   int64_t row_begin, int64_t row_end)
    void fc_max_pool2d_forward_f64(int isa, const fc_pool_geom *g, const double *x,
                                   double *y, int32_t *argmax,
                                   int64_t row_begin, int64_t row_end)
    void fc_max_pool2d_backward_f32(int isa, const fc_pool_geom *g, const float *dy,
                                    const float *relu_y, const int32_t *argmax, float *dx,
                                    int64_t n_begin, int64_t n_end)
    void fc_max_pool2d_backward_f64(int isa, const fc_pool_geom *g, const double *dy,
                                    const double *relu_y, const int32_t *argmax, double *dx,
                                    int64_t n_begin, int64_t n_end)
    int fc_max_pool2d_backward_disjoint_f32(int isa, const fc_pool_geom *g, const float *dy,
                                            const float *relu_y, const int32_t *argmax,
                                            float *dx, int64_t n_begin, int64_t n_end)
    int fc_max_pool2d_backward_disjoint_f64(int isa, const fc_pool_geom *g, const double *dy,
                                            const double *relu_y, const int32_t *argmax,
                                            double *dx, int64_t n_begin, int64_t n_end)
    void fc_avg_pool2d_forward_f32(int isa, const fc_pool_geom *g, const float *x,
                                   float *y, int64_t row_begin, int64_t row_end)
    void fc_avg_pool2d_forward_f64(int isa, const fc_pool_geom *g, const double *x,
                                   double *y, int64_t row_begin, int64_t row_end)
    void fc_avg_pool2d_backward_f32(int isa, const fc_pool_geom *g, const float *dy,
                                    float *dx, int64_t row_begin, int64_t row_end)
    void fc_avg_pool2d_backward_f64(int isa, const fc_pool_geom *g, const double *dy,
                                    double *dx, int64_t row_begin, int64_t row_end)


cdef inline fc_conv_geom conv_geometry(g):
    """The C struct of a fastconv._validation.ConvGeometry (no epilogue)."""
    cdef fc_conv_geom c
    c.n, c.h, c.w, c.c_in = g.n, g.h, g.w, g.c_in
    c.kh, c.kw, c.c_out = g.kh, g.kw, g.c_out
    c.oh, c.ow = g.oh, g.ow
    c.stride_h, c.stride_w = g.stride_h, g.stride_w
    c.dil_h, c.dil_w = g.dil_h, g.dil_w
    c.pad_top, c.pad_left = g.pad_top, g.pad_left
    c.relu = 0
    c.d, c.kd, c.od = g.d, g.kd, g.od
    c.stride_d, c.dil_d, c.pad_front = g.stride_d, g.dil_d, g.pad_front
    fc_dense_output(&c)
    return c


cdef inline fc_pool_geom pool_geometry(g):
    """The C struct of a fastconv._validation.PoolGeometry."""
    cdef fc_pool_geom c
    c.n, c.h, c.w, c.c = g.n, g.h, g.w, g.c
    c.kh, c.kw = g.kh, g.kw
    c.oh, c.ow = g.oh, g.ow
    c.stride_h, c.stride_w = g.stride_h, g.stride_w
    c.pad_top, c.pad_left = g.pad_top, g.pad_left
    c.index_w = g.w
    return c


cdef inline bint crop_to_windows(fc_conv_geom *g, fc_pool_geom *pg) noexcept nogil:
    """Shrinks the output of the convolution g, and with it the input of its
    max pooling pg, to the rows and columns some pooling window reads (the
    last ones drop out when the windows do not reach the far edge: 11 rows
    pooled by 2 use 10). The windows and the argmax (still counted in the
    full output's width) stay the same. Returns whether anything dropped."""
    cdef int64_t rows = min(g.oh, (pg.oh - 1) * pg.stride_h - pg.pad_top + pg.kh)
    cdef int64_t cols = min(g.ow, (pg.ow - 1) * pg.stride_w - pg.pad_left + pg.kw)
    if rows == g.oh and cols == g.ow:
        return False
    pg.index_w = g.ow
    g.oh = pg.h = rows
    g.ow = pg.w = cols
    fc_dense_output(g)
    return True


cdef inline fc_conv_geom data_gradient_geometry(fc_conv_geom g) noexcept nogil:
    """Geometry of dx (N, D, H, W, C_in) = conv(dy (N, OD, OH, OW, C_out), flipped w)
    for a unit-stride convolution: dx[ih] sums w[i] * dy[ih + pad_top - i * dil]
    over the taps i, which is tap KH - 1 - i of a forward pass with padding
    (KH - 1) * dil - pad_top (and likewise along the width and depth)."""
    cdef fc_conv_geom t
    t.n, t.h, t.w, t.c_in = g.n, g.oh, g.ow, g.c_out
    t.kh, t.kw, t.c_out = g.kh, g.kw, g.c_in
    t.oh, t.ow = g.h, g.w
    t.stride_h = t.stride_w = 1
    t.dil_h, t.dil_w = g.dil_h, g.dil_w
    t.pad_top = (g.kh - 1) * g.dil_h - g.pad_top
    t.pad_left = (g.kw - 1) * g.dil_w - g.pad_left
    t.relu = 0
    t.d, t.kd, t.od = g.od, g.kd, g.d
    t.stride_d, t.dil_d = 1, g.dil_d
    t.pad_front = (g.kd - 1) * g.dil_d - g.pad_front
    fc_dense_output(&t)
    return t


cdef inline void sum_parts_share(const floating *parts, int64_t n_parts, int64_t length,
                                 floating *out, int t, int n_threads) noexcept nogil:
    """Thread t's share of out = the fixed-order sum of the n_parts rows of
    parts (n_parts, length): per-chunk weight gradients, added in chunk order
    so the result does not depend on the thread count. Shares are split at
    multiples of FC_SUM_BLOCK (see conv2d.h)."""
    cdef int64_t blocks = (length + FC_SUM_BLOCK - 1) // FC_SUM_BLOCK
    cdef int64_t begin = min(length, blocks * t // n_threads * FC_SUM_BLOCK)
    cdef int64_t end = min(length, blocks * (t + 1) // n_threads * FC_SUM_BLOCK)
    if floating is float:
        fc_sum_parts_f32(parts, n_parts, length, out, begin, end)
    else:
        fc_sum_parts_f64(parts, n_parts, length, out, begin, end)


# Stride phases of a strided input gradient at most (else the per-pixel
# gather of fc_conv2d_backward_data: strides far above the kernel leave most
# phases empty). Callers hold plans of this many entries.
cdef enum:
    MAX_DATA_PHASES = 64


cdef inline int64_t plan_data_phases(const fc_conv_geom *g, const floating[:, :, :, ::1] w,
                                     floating[::1] kernels, fc_data_phase *plan,
                                     int64_t max_phases) noexcept nogil:
    """fc_data_phases_plan for w (KD * KH, KW, C_in, C_out): the phases into
    plan, their kernels into ``kernels`` (w's size); -1 if more than
    max_phases."""
    if floating is float:
        return fc_data_phases_plan_f32(g, &w[0, 0, 0, 0], &kernels[0], plan, max_phases)
    else:
        return fc_data_phases_plan_f64(g, &w[0, 0, 0, 0], &kernels[0], plan, max_phases)

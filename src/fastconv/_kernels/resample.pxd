# Declarations of the C kernels of the resampling families in src_c/
# (global_pool.h, resize.h, margins.h), shared by global_pool.pyx, resize.pyx
# and margins.pyx.
from libc.stdint cimport int32_t, int64_t


cdef extern from "fc_stream.h" nogil:
    int64_t FC_STREAM_MIN_BYTES


cdef extern from "global_pool.h" nogil:
    void fc_global_avg_pool_forward_f32(int isa, float *y, const float *x, int64_t p,
                                        int64_t c, int64_t block, int64_t item_begin,
                                        int64_t item_end)
    void fc_global_avg_pool_forward_f64(int isa, double *y, const double *x, int64_t p,
                                        int64_t c, int64_t block, int64_t item_begin,
                                        int64_t item_end)
    void fc_global_avg_pool_backward_f32(int isa, float *dx, const float *dy, int64_t p,
                                         int64_t c, int64_t row_begin, int64_t row_end)
    void fc_global_avg_pool_backward_f64(int isa, double *dx, const double *dy, int64_t p,
                                         int64_t c, int64_t row_begin, int64_t row_end)
    void fc_global_max_pool_forward_f32(int isa, float *y, int32_t *argmax, const float *x,
                                        int64_t p, int64_t c, int64_t block,
                                        int64_t item_begin, int64_t item_end)
    void fc_global_max_pool_forward_f64(int isa, double *y, int32_t *argmax,
                                        const double *x, int64_t p, int64_t c, int64_t block,
                                        int64_t item_begin, int64_t item_end)
    void fc_global_max_pool_backward_f32(int isa, float *dx, const float *dy,
                                         const int32_t *argmax, int64_t p, int64_t c,
                                         int64_t row_begin, int64_t row_end)
    void fc_global_max_pool_backward_f64(int isa, double *dx, const double *dy,
                                         const int32_t *argmax, int64_t p, int64_t c,
                                         int64_t row_begin, int64_t row_end)


cdef extern from "resize.h" nogil:
    ctypedef struct fc_linear_axis:
        int64_t in_ "in"
        int64_t out
        const int64_t *i0
        const int64_t *i1
        const void *w0
        const void *w1
        const int64_t *lo
        const int64_t *hi

    ctypedef struct fc_nearest_geom:
        int64_t n, d, h, w, c
        int64_t sd, sh, sw

    void fc_bilinear_forward_f32(int isa, float *y, float *row, const float *x, int64_t c,
                                 const fc_linear_axis *rows, const fc_linear_axis *cols,
                                 int64_t row_begin, int64_t row_end)
    void fc_bilinear_forward_f64(int isa, double *y, double *row, const double *x, int64_t c,
                                 const fc_linear_axis *rows, const fc_linear_axis *cols,
                                 int64_t row_begin, int64_t row_end)
    void fc_bilinear_backward_f32(int isa, float *dx, float *row, const float *dy, int64_t c,
                                  const fc_linear_axis *rows, const fc_linear_axis *cols,
                                  int64_t row_begin, int64_t row_end)
    void fc_bilinear_backward_f64(int isa, double *dx, double *row, const double *dy,
                                  int64_t c, const fc_linear_axis *rows,
                                  const fc_linear_axis *cols, int64_t row_begin,
                                  int64_t row_end)
    void fc_nearest_forward_f32(int isa, float *y, const float *x, const fc_nearest_geom *g,
                                int64_t row_begin, int64_t row_end)
    void fc_nearest_forward_f64(int isa, double *y, const double *x, const fc_nearest_geom *g,
                                int64_t row_begin, int64_t row_end)
    void fc_nearest_backward_f32(int isa, float *dx, const float *dy, const fc_nearest_geom *g,
                                 int64_t row_begin, int64_t row_end)
    void fc_nearest_backward_f64(int isa, double *dx, const double *dy,
                                 const fc_nearest_geom *g, int64_t row_begin, int64_t row_end)


cdef extern from "margins.h" nogil:
    ctypedef struct fc_shift_geom:
        int64_t n, d, h, w
        int64_t sd, sh, sw
        int64_t od, oh, ow
        int64_t pixel
        int stream

    void fc_shift_rows(void *dst, const void *src, const fc_shift_geom *g, int64_t row_begin,
                       int64_t row_end)

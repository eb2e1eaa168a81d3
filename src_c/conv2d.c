/* conv2d.c - direct 2-D convolution kernels: the micro-kernels of
 * conv2d_impl.h compiled per dtype and instruction set, behind one entry
 * point per (op, dtype) that takes the instruction set to use. */
#include "conv2d.h"

#define FC_TEMPLATE "conv2d_impl.h"
#include "fc_dispatch.h"

#define FC_DEFINE_ENTRIES(dt, T)                                                         \
    void fc_conv2d_forward_##dt(int isa, const fc_conv_geom *g, const T *x, const T *w,  \
                                const T *b, T *y, int64_t row_begin, int64_t row_end)    \
    {                                                                                    \
        FC_DISPATCH(conv2d_forward, dt, isa, (g, x, w, b, y, row_begin, row_end));       \
    }                                                                                    \
    void fc_conv2d_backward_data_##dt(int isa, const fc_conv_geom *g, const T *dy,      \
                                      const T *wt, T *dx, int64_t row_begin,            \
                                      int64_t row_end)                                  \
    {                                                                                    \
        FC_DISPATCH(conv2d_backward_data, dt, isa, (g, dy, wt, dx, row_begin, row_end)); \
    }                                                                                    \
    void fc_relu_backward_##dt(int isa, const T *dy, const T *y, T *dx, int64_t begin,  \
                               int64_t end)                                             \
    {                                                                                    \
        FC_DISPATCH(relu_backward, dt, isa, (dy, y, dx, begin, end));                    \
    }                                                                                    \
    void fc_conv2d_backward_weight_##dt(int isa, const fc_conv_geom *g, const T *x,     \
                                        const T *dy, T *dw, T *db, int64_t n_begin,     \
                                        int64_t n_end, int accumulate)                  \
    {                                                                                    \
        FC_DISPATCH(conv2d_backward_weight, dt, isa,                                     \
                    (g, x, dy, dw, db, n_begin, n_end, accumulate));                     \
    }

FC_DEFINE_ENTRIES(f32, float)
FC_DEFINE_ENTRIES(f64, double)

/* out[k] = sum over r of parts[r, k], r in increasing order, for k in
 * [begin, end): the fixed-order reduction of per-chunk weight gradients that
 * keeps them identical whatever the thread count. parts (n_parts, len).
 * Elements go FC_SUM_BLOCK at a time through explicit 16-byte vectors, the
 * last len % FC_SUM_BLOCK one by one; with begin (and end, unless it is len)
 * multiples of FC_SUM_BLOCK, an element's instructions depend on its index
 * alone, not on how the range was shared out, so even NaN results keep their
 * sign and payload. */
typedef float fc_sum_f32 __attribute__((vector_size(16), aligned(4)));
typedef double fc_sum_f64 __attribute__((vector_size(16), aligned(8)));
#define FC_DEFINE_SUM(dt, T)                                                          \
    void fc_sum_parts_##dt(const T *parts, int64_t n_parts, int64_t len, T *out,      \
                           int64_t begin, int64_t end)                                \
    {                                                                                 \
        const int64_t lanes = (int64_t)(sizeof(fc_sum_##dt) / sizeof(T));             \
        int64_t k = begin;                                                            \
        for (; k + FC_SUM_BLOCK <= end; k += FC_SUM_BLOCK)                            \
            for (int64_t l = k; l < k + FC_SUM_BLOCK; l += lanes) {                   \
                fc_sum_##dt acc = *(const fc_sum_##dt *)(parts + l);                  \
                for (int64_t r = 1; r < n_parts; ++r)                                 \
                    acc += *(const fc_sum_##dt *)(parts + r * len + l);               \
                *(fc_sum_##dt *)(out + l) = acc;                                      \
            }                                                                         \
        for (; k < end; ++k) {                                                        \
            T acc = parts[k];                                                         \
            for (int64_t r = 1; r < n_parts; ++r)                                     \
                acc += parts[r * len + k];                                            \
            out[k] = acc;                                                             \
        }                                                                             \
    }

FC_DEFINE_SUM(f32, float)
FC_DEFINE_SUM(f64, double)

/* batchnorm.c - batch normalization kernels: the micro-kernels of
 * batchnorm_impl.h compiled per dtype and instruction set, behind one entry
 * point per (kernel, dtype), and the fixed-order combination of the
 * partial sums. Built with -ffp-contract=off (setup.py): no fused
 * multiply-adds, so every instruction set rounds the same way. */
#include "batchnorm.h"
#include "fc_stream.h"

#define FC_TEMPLATE "batchnorm_impl.h"
#include "fc_dispatch.h"

#define FC_BATCHNORM_DEFINE(dt, T)                                                         \
    void fc_bn_sums_rows_##dt(int isa, double *s1, double *s2, const T *dy, const T *x,    \
                              const T *center, int64_t rows, int64_t c, int64_t chunk_rows, \
                              int64_t chunk_begin, int64_t chunk_end)                      \
    {                                                                                      \
        FC_DISPATCH(bn_sums_rows, dt, isa,                                                 \
                    (s1, s2, dy, x, center, rows, c, chunk_rows, chunk_begin, chunk_end)); \
    }                                                                                      \
    void fc_bn_sums_runs_##dt(int isa, double *s1, double *s2, const T *dy, const T *x,    \
                              const T *center, int64_t c, int64_t inner, int64_t piece,     \
                              int64_t item_begin, int64_t item_end)                        \
    {                                                                                      \
        FC_DISPATCH(bn_sums_runs, dt, isa,                                                 \
                    (s1, s2, dy, x, center, c, inner, piece, item_begin, item_end));       \
    }                                                                                      \
    void fc_bn_apply_rows_##dt(int isa, T *out, const T *u, const T *a, const T *v,        \
                               const T *p, const T *q, int64_t c, int64_t row_begin,        \
                               int64_t row_end, int stream)                                \
    {                                                                                      \
        FC_DISPATCH(bn_apply_rows, dt, isa,                                                \
                    (out, u, a, v, p, q, c, row_begin, row_end, stream));                  \
    }                                                                                      \
    void fc_bn_apply_runs_##dt(int isa, T *out, const T *u, const T *a, const T *v,        \
                               const T *p, const T *q, int64_t c, int64_t inner,            \
                               int64_t run_begin, int64_t run_end, int stream)             \
    {                                                                                      \
        FC_DISPATCH(bn_apply_runs, dt, isa,                                                \
                    (out, u, a, v, p, q, c, inner, run_begin, run_end, stream));           \
    }

FC_BATCHNORM_DEFINE(f32, float)
FC_BATCHNORM_DEFINE(f64, double)

void fc_bn_combine(double *t1, double *t2, const double *s1, const double *s2, int64_t a,
                   int64_t c, int64_t b)
{
    for (int64_t k = 0; k < c; ++k)
        t1[k] = t2[k] = 0.0;
    for (int64_t i = 0; i < a; ++i)
        for (int64_t k = 0; k < c; ++k) {
            const double *u1 = s1 + (i * c + k) * b, *u2 = s2 + (i * c + k) * b;
            for (int64_t j = 0; j < b; ++j) {
                t1[k] += u1[j];
                t2[k] += u2[j];
            }
        }
}

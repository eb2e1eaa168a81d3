/* dense.c - the dense layer's products: the micro-kernels of dense_impl.h
 * compiled per dtype and instruction set, behind one entry point per
 * (op, dtype). */
#include "dense.h"

#define FC_TEMPLATE "dense_impl.h"
#include "fc_dispatch.h"

int fc_dense_lanes(int isa, int itemsize)
{
    int bytes = 16;
#if FC_X86
    if (isa == FC_ISA_AVX512)
        bytes = 64;
    else if (isa == FC_ISA_AVX2)
        bytes = 32;
#else
    (void)isa;
#endif
    return bytes / itemsize;
}

#define FC_DENSE_DEFINE(dt, T)                                                             \
    void fc_dense_rows_##dt(int isa, T *out, const T *a, const T *b, const T *bias,        \
                            int64_t k, int64_t u, int64_t ub, int64_t row_begin,           \
                            int64_t row_end)                                               \
    {                                                                                      \
        FC_DISPATCH(dense_rows, dt, isa, (out, a, b, bias, k, u, ub, row_begin, row_end)); \
    }                                                                                      \
    void fc_dense_weight_grad_##dt(int isa, T *dw, const T *x, const T *dz,                \
                                   const int64_t *bounds, int64_t chunks, int64_t k,       \
                                   int64_t u, int64_t ub, int64_t k_begin, int64_t k_end)  \
    {                                                                                      \
        FC_DISPATCH(dense_weight_grad, dt, isa,                                            \
                    (dw, x, dz, bounds, chunks, k, u, ub, k_begin, k_end));                \
    }

FC_DENSE_DEFINE(f32, float)
FC_DENSE_DEFINE(f64, double)

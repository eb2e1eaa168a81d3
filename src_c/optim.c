/* optim.c - the optimizers' update rules of optim_impl.h compiled per dtype
 * and instruction set, behind one entry point per (rule, dtype). Built with
 * -ffp-contract=off (no fused multiply-adds, so the results are NumPy's bit
 * for bit, NaN payloads aside) and -fno-math-errno (so the square roots vectorise). */
#include <math.h>

#include "optim.h"

#define FC_SQRT(v) _Generic((v), float: sqrtf, default: sqrt)(v)
#define FC_TEMPLATE "optim_impl.h"
#include "fc_dispatch.h"

#define FC_OPTIM_DEFINE(dt, T)                                                              \
    void fc_sgd_update_##dt(int isa, T *w, const T *g, T *m, T lr, T mu, int nesterov,      \
                            int64_t begin, int64_t end)                                     \
    {                                                                                       \
        FC_DISPATCH(sgd_update, dt, isa, (w, g, m, lr, mu, nesterov, begin, end));          \
    }                                                                                       \
    void fc_rmsprop_update_##dt(int isa, T *w, const T *g, T *v, T *a, T *mom, T lr, T rho, \
                                T one_minus_rho, T eps, T momentum, int64_t begin,          \
                                int64_t end)                                                \
    {                                                                                       \
        FC_DISPATCH(rmsprop_update, dt, isa,                                                \
                    (w, g, v, a, mom, lr, rho, one_minus_rho, eps, momentum, begin, end));  \
    }                                                                                       \
    void fc_adam_update_##dt(int isa, T *w, const T *g, T *m, T *v, T *v_hat, T alpha,      \
                             T one_minus_beta_1, T one_minus_beta_2, T eps, int64_t begin,  \
                             int64_t end)                                                   \
    {                                                                                       \
        FC_DISPATCH(adam_update, dt, isa, (w, g, m, v, v_hat, alpha, one_minus_beta_1,      \
                                           one_minus_beta_2, eps, begin, end));             \
    }

FC_OPTIM_DEFINE(f32, float)
FC_OPTIM_DEFINE(f64, double)

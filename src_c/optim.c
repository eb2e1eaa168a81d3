/* optim.c - the optimizers' update rules of optim_impl.h compiled per dtype
 * and instruction set, behind one entry point per (rule, dtype). Built with
 * -ffp-contract=off (no fused multiply-adds, so the results are NumPy's bit
 * for bit, NaN payloads aside) and -fno-math-errno (so the square roots vectorise). */
#include <math.h>

#include "optim.h"

#define FC_SQRT(v) _Generic((v), float: sqrtf, default: sqrt)(v)
#define FC_ABS(v) _Generic((v), float: fabsf, default: fabs)(v)
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
    }                                                                                       \
    void fc_weight_decay_##dt(int isa, T *w, T wd, T lr, int64_t begin, int64_t end)        \
    {                                                                                       \
        FC_DISPATCH(weight_decay, dt, isa, (w, wd, lr, begin, end));                        \
    }                                                                                       \
    void fc_adagrad_update_##dt(int isa, T *w, const T *g, T *acc, T lr, T eps,             \
                                int64_t begin, int64_t end)                                 \
    {                                                                                       \
        FC_DISPATCH(adagrad_update, dt, isa, (w, g, acc, lr, eps, begin, end));             \
    }                                                                                       \
    void fc_adadelta_update_##dt(int isa, T *w, const T *g, T *ag, T *adv, T lr, T rho,     \
                                 T one_minus_rho, T eps, int64_t begin, int64_t end)        \
    {                                                                                       \
        FC_DISPATCH(adadelta_update, dt, isa,                                               \
                    (w, g, ag, adv, lr, rho, one_minus_rho, eps, begin, end));              \
    }                                                                                       \
    void fc_adamax_update_##dt(int isa, T *w, const T *g, T *m, T *u, T lr,                 \
                               T one_minus_beta_1, T beta_2, T one_minus_beta_1_power,      \
                               T eps, int64_t begin, int64_t end)                           \
    {                                                                                       \
        FC_DISPATCH(adamax_update, dt, isa, (w, g, m, u, lr, one_minus_beta_1, beta_2,      \
                                             one_minus_beta_1_power, eps, begin, end));     \
    }                                                                                       \
    void fc_nadam_update_##dt(int isa, T *w, const T *g, T *m, T *v, T lr,                  \
                              T one_minus_beta_1, T one_minus_beta_2, T u_next, T c_next,   \
                              T c_g, T c_now, T c_v, T eps, int64_t begin, int64_t end)     \
    {                                                                                       \
        FC_DISPATCH(nadam_update, dt, isa, (w, g, m, v, lr, one_minus_beta_1,               \
                                            one_minus_beta_2, u_next, c_next, c_g, c_now,   \
                                            c_v, eps, begin, end));                         \
    }                                                                                       \
    void fc_lion_update_##dt(int isa, T *w, const T *g, T *m, T lr, T beta_1,               \
                             T one_minus_beta_1, T beta_2, T one_minus_beta_2,              \
                             int64_t begin, int64_t end)                                    \
    {                                                                                       \
        FC_DISPATCH(lion_update, dt, isa, (w, g, m, lr, beta_1, one_minus_beta_1, beta_2,   \
                                           one_minus_beta_2, begin, end));                  \
    }

FC_OPTIM_DEFINE(f32, float)
FC_OPTIM_DEFINE(f64, double)

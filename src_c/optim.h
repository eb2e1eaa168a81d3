/* optim.h - the optimizers' update rules over flat arrays (see optim.c). */
#ifndef FC_OPTIM_H
#define FC_OPTIM_H
#include "fc_common.h"

/* Each updates elements [begin, end) in place; NULL state arrays turn the
 * corresponding option off (see optim_impl.h for the rules). */
#define FC_OPTIM_DECLARE(dt, T)                                                             \
    void fc_sgd_update_##dt(int isa, T *w, const T *g, T *m, T lr, T mu, int nesterov,      \
                            int64_t begin, int64_t end);                                    \
    void fc_rmsprop_update_##dt(int isa, T *w, const T *g, T *v, T *a, T *mom, T lr, T rho, \
                                T one_minus_rho, T eps, T momentum, int64_t begin,          \
                                int64_t end);                                               \
    void fc_adam_update_##dt(int isa, T *w, const T *g, T *m, T *v, T *v_hat, T alpha,      \
                             T one_minus_beta_1, T one_minus_beta_2, T eps, int64_t begin,  \
                             int64_t end);

FC_OPTIM_DECLARE(f32, float)
FC_OPTIM_DECLARE(f64, double)
#undef FC_OPTIM_DECLARE

#endif

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
                             int64_t end);                                                \
    void fc_weight_decay_##dt(int isa, T *w, T wd, T lr, int64_t begin, int64_t end);       \
    void fc_adagrad_update_##dt(int isa, T *w, const T *g, T *acc, T lr, T eps,             \
                                int64_t begin, int64_t end);                                \
    void fc_adadelta_update_##dt(int isa, T *w, const T *g, T *ag, T *adv, T lr, T rho,     \
                                 T one_minus_rho, T eps, int64_t begin, int64_t end);       \
    void fc_adamax_update_##dt(int isa, T *w, const T *g, T *m, T *u, T lr,                 \
                               T one_minus_beta_1, T beta_2, T one_minus_beta_1_power,      \
                               T eps, int64_t begin, int64_t end);                          \
    void fc_nadam_update_##dt(int isa, T *w, const T *g, T *m, T *v, T lr,                  \
                              T one_minus_beta_1, T one_minus_beta_2, T u_next, T c_next,   \
                              T c_g, T c_now, T c_v, T eps, int64_t begin, int64_t end);    \
    void fc_lion_update_##dt(int isa, T *w, const T *g, T *m, T lr, T beta_1,               \
                             T one_minus_beta_1, T beta_2, T one_minus_beta_2,              \
                             int64_t begin, int64_t end);

FC_OPTIM_DECLARE(f32, float)
FC_OPTIM_DECLARE(f64, double)
#undef FC_OPTIM_DECLARE

#endif

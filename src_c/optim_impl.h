/* optim_impl.h - the optimizers' element-wise update rules, one
 * instantiation per (dtype, instruction set); see fc_dispatch.h.
 *
 * Each rule is fastconv.optimizers' NumPy statement of it (Keras 3's rule),
 * with the same operations in the same order and the scalars in the element
 * type. This file is compiled without floating-point contraction, so no
 * multiply-add is fused and the results are bitwise NumPy's (a NaN's sign
 * and payload aside: which operand of an instruction it comes from is the
 * compiler's choice, vector and scalar loops alike); the loops run
 * over elements [begin, end) of flat arrays, one pass instead of NumPy's one
 * pass per operation. Each variant has its own loop, free of branches, for
 * the compiler to vectorise.
 */

/* SGD: w -= lr * g; with momentum mu: m = m * mu - lr * g, then
 * w += mu * m - lr * g (Nesterov) or w += m. m is NULL without momentum. */
FC_TARGET static void FC_FN(sgd_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                        FC_T *FC_RESTRICT m, FC_T lr, FC_T mu, int nesterov,
                                        int64_t begin, int64_t end)
{
    if (!m) {
        for (int64_t k = begin; k < end; ++k)
            w[k] -= lr * g[k];
    } else if (nesterov) {
        for (int64_t k = begin; k < end; ++k) {
            m[k] = m[k] * mu - lr * g[k];
            w[k] += mu * m[k] - lr * g[k];
        }
    } else {
        for (int64_t k = begin; k < end; ++k) {
            m[k] = m[k] * mu - lr * g[k];
            w[k] += m[k];
        }
    }
}

/* RMSprop: v = v * rho + (1 - rho) * g^2; step = lr * g / sqrt(den) with
 * den = v + eps, or (v - a^2) + eps when centered (a = a * rho + (1 - rho)
 * * g); then w -= step, or mom = mom * momentum + step and w -= mom.
 * a and mom are NULL when not used. */
FC_TARGET static void FC_FN(rmsprop_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                            FC_T *FC_RESTRICT v, FC_T *FC_RESTRICT a,
                                            FC_T *FC_RESTRICT mom, FC_T lr, FC_T rho,
                                            FC_T one_minus_rho, FC_T eps, FC_T momentum,
                                            int64_t begin, int64_t end)
{
    if (!a && !mom) { /* the default configuration */
        for (int64_t k = begin; k < end; ++k) {
            v[k] = v[k] * rho + one_minus_rho * (g[k] * g[k]);
            w[k] -= lr * g[k] / FC_SQRT(v[k] + eps);
        }
        return;
    }
    for (int64_t k = begin; k < end; ++k) {
        v[k] = v[k] * rho + one_minus_rho * (g[k] * g[k]);
        FC_T den;
        if (a) {
            a[k] = a[k] * rho + one_minus_rho * g[k];
            den = v[k] - a[k] * a[k] + eps;
        } else {
            den = v[k] + eps;
        }
        const FC_T step = lr * g[k] / FC_SQRT(den);
        if (mom) {
            mom[k] = mom[k] * momentum + step;
            w[k] -= mom[k];
        } else {
            w[k] -= step;
        }
    }
}

/* Adam: m += (g - m) * (1 - beta_1); v += (g^2 - v) * (1 - beta_2); with
 * AMSGrad v_hat = max(v_hat, v) (NaN winning, as numpy.maximum) stands for v;
 * w -= m * alpha / (sqrt(v) + eps). v_hat is NULL without AMSGrad. */
FC_TARGET static void FC_FN(adam_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                         FC_T *FC_RESTRICT m, FC_T *FC_RESTRICT v,
                                         FC_T *FC_RESTRICT v_hat, FC_T alpha,
                                         FC_T one_minus_beta_1, FC_T one_minus_beta_2,
                                         FC_T eps, int64_t begin, int64_t end)
{
    if (!v_hat) {
        for (int64_t k = begin; k < end; ++k) {
            m[k] += (g[k] - m[k]) * one_minus_beta_1;
            v[k] += (g[k] * g[k] - v[k]) * one_minus_beta_2;
            w[k] -= m[k] * alpha / (FC_SQRT(v[k]) + eps);
        }
        return;
    }
    for (int64_t k = begin; k < end; ++k) {
        m[k] += (g[k] - m[k]) * one_minus_beta_1;
        v[k] += (g[k] * g[k] - v[k]) * one_minus_beta_2;
        const FC_T h = v_hat[k], n = v[k];
        v_hat[k] = h != h ? h : (n != n ? n : (h >= n ? h : n));
        w[k] -= m[k] * alpha / (FC_SQRT(v_hat[k]) + eps);
    }
}

/* Decoupled weight decay (the base optimizer's, applied before the rule):
 * w -= w * wd * lr. */
FC_TARGET static void FC_FN(weight_decay)(FC_T *FC_RESTRICT w, FC_T wd, FC_T lr, int64_t begin,
                                          int64_t end)
{
    for (int64_t k = begin; k < end; ++k)
        w[k] -= w[k] * wd * lr;
}

/* Adagrad: acc += g^2; w -= lr * g / sqrt(acc + eps). */
FC_TARGET static void FC_FN(adagrad_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                            FC_T *FC_RESTRICT acc, FC_T lr, FC_T eps,
                                            int64_t begin, int64_t end)
{
    for (int64_t k = begin; k < end; ++k) {
        acc[k] += g[k] * g[k];
        w[k] -= lr * g[k] / FC_SQRT(acc[k] + eps);
    }
}

/* Adadelta: ag = ag * rho + (1 - rho) * g^2;
 * d = -(sqrt(adv + eps) * g / sqrt(ag + eps)); adv = adv * rho + (1 - rho) * d^2;
 * w += lr * d. */
FC_TARGET static void FC_FN(adadelta_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                             FC_T *FC_RESTRICT ag, FC_T *FC_RESTRICT adv,
                                             FC_T lr, FC_T rho, FC_T one_minus_rho, FC_T eps,
                                             int64_t begin, int64_t end)
{
    for (int64_t k = begin; k < end; ++k) {
        ag[k] = ag[k] * rho + one_minus_rho * (g[k] * g[k]);
        const FC_T d = -(FC_SQRT(adv[k] + eps) * g[k] / FC_SQRT(ag[k] + eps));
        adv[k] = adv[k] * rho + one_minus_rho * (d * d);
        w[k] += lr * d;
    }
}

/* Adamax: m += (g - m) * (1 - beta_1); u = max(beta_2 * u, |g|) (NaN winning,
 * as numpy.maximum); w -= lr * m / (one_minus_beta_1_power * (u + eps)). */
FC_TARGET static void FC_FN(adamax_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                           FC_T *FC_RESTRICT m, FC_T *FC_RESTRICT u, FC_T lr,
                                           FC_T one_minus_beta_1, FC_T beta_2,
                                           FC_T one_minus_beta_1_power, FC_T eps,
                                           int64_t begin, int64_t end)
{
    for (int64_t k = begin; k < end; ++k) {
        m[k] += (g[k] - m[k]) * one_minus_beta_1;
        const FC_T a = beta_2 * u[k], b = FC_ABS(g[k]);
        u[k] = a != a ? a : (b != b ? b : (a >= b ? a : b));
        w[k] -= lr * m[k] / (one_minus_beta_1_power * (u[k] + eps));
    }
}

/* Nadam: m += (g - m) * (1 - beta_1); v += (g^2 - v) * (1 - beta_2);
 * m_hat = u_next * m / c_next + c_g * g / c_now;  v_hat = v / c_v;
 * w -= m_hat * lr / (sqrt(v_hat) + eps), with the step's scalars
 * c_next = 1 - u_product * u_next, c_g = 1 - u_now, c_now = 1 - u_product,
 * c_v = 1 - beta_2^t. */
FC_TARGET static void FC_FN(nadam_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                          FC_T *FC_RESTRICT m, FC_T *FC_RESTRICT v, FC_T lr,
                                          FC_T one_minus_beta_1, FC_T one_minus_beta_2,
                                          FC_T u_next, FC_T c_next, FC_T c_g, FC_T c_now,
                                          FC_T c_v, FC_T eps, int64_t begin, int64_t end)
{
    for (int64_t k = begin; k < end; ++k) {
        m[k] += (g[k] - m[k]) * one_minus_beta_1;
        v[k] += (g[k] * g[k] - v[k]) * one_minus_beta_2;
        const FC_T m_hat = u_next * m[k] / c_next + c_g * g[k] / c_now;
        const FC_T v_hat = v[k] / c_v;
        w[k] -= m_hat * lr / (FC_SQRT(v_hat) + eps);
    }
}

/* Lion: w -= lr * sign(m * beta_1 + g * (1 - beta_1)) (sign as numpy.sign:
 * +0 for either zero, NaN for NaN); m = m * beta_2 + g * (1 - beta_2). */
FC_TARGET static void FC_FN(lion_update)(FC_T *FC_RESTRICT w, const FC_T *FC_RESTRICT g,
                                         FC_T *FC_RESTRICT m, FC_T lr, FC_T beta_1,
                                         FC_T one_minus_beta_1, FC_T beta_2,
                                         FC_T one_minus_beta_2, int64_t begin, int64_t end)
{
    for (int64_t k = begin; k < end; ++k) {
        const FC_T c = m[k] * beta_1 + g[k] * one_minus_beta_1;
        const FC_T s = c > 0 ? (FC_T)1 : (c < 0 ? (FC_T)-1 : (c == c ? (FC_T)0 : c));
        w[k] -= lr * s;
        m[k] = m[k] * beta_2 + g[k] * one_minus_beta_2;
    }
}

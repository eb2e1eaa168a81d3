# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""OpenMP loops of the optimizers' update rules (src_c/optim.c).

One call updates every parameter of a model: their elements are shared out
between the threads (each parameter split in contiguous, equal parts) in a
single parallel region, instead of NumPy's one pass per operation per
parameter on one thread. Small models (below PARALLEL_MIN_ELEMENTS
elements in all) run on one thread, where waking the others would cost more
than it saves. Every element is updated by one thread with the same
operations whatever the thread count, so the results do not depend on it.

The caller (fastconv.optimizers) passes lists of C-contiguous, aligned arrays
of one dtype, each parameter with its gradient and state arrays of its size,
no two of them overlapping. With ``decay`` (a list of flags, one a
parameter), the flagged parameters first get the base optimizer's decoupled
weight decay, ``w -= w * wd * lr``, in the same pass over their elements.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from fastconv._kernels.kernels cimport (
    fc_last_team_size, fc_record_team_size,
    fc_sgd_update_f32, fc_sgd_update_f64,
    fc_rmsprop_update_f32, fc_rmsprop_update_f64,
    fc_adam_update_f32, fc_adam_update_f64,
    fc_weight_decay_f32, fc_weight_decay_f64,
    fc_adagrad_update_f32, fc_adagrad_update_f64,
    fc_adadelta_update_f32, fc_adadelta_update_f64,
    fc_adamax_update_f32, fc_adamax_update_f64,
    fc_nadam_update_f32, fc_nadam_update_f64,
    fc_lion_update_f32, fc_lion_update_f64,
)

cnp.import_array()

# Total elements below which an update runs on one thread.
PARALLEL_MIN_ELEMENTS = 1 << 15

# Scalars a rule may take.
DEF MAX_SCALARS = 10


def last_team_size() -> int:
    """Threads in the team of this module's most recent parallel loop."""
    return fc_last_team_size


cdef struct _Item:
    void *w
    void *g
    void *s1
    void *s2
    void *s3
    int64_t n
    bint decay


cdef void *_data(object array):
    return NULL if array is None else cnp.PyArray_DATA(<cnp.ndarray>array)


cdef _Item *_items(list w, list g, list s1, list s2, list s3, list decay,
                   int64_t *total) except NULL:
    """The parameters' pointers and sizes; the caller frees the array."""
    cdef Py_ssize_t k, count = len(w)
    cdef _Item *items = <_Item *>malloc(max(count, 1) * sizeof(_Item))
    if items == NULL:
        raise MemoryError()
    total[0] = 0
    for k in range(count):
        items[k].w = _data(w[k])
        items[k].g = _data(g[k])
        items[k].s1 = _data(s1[k]) if s1 is not None else NULL
        items[k].s2 = _data(s2[k]) if s2 is not None else NULL
        items[k].s3 = _data(s3[k]) if s3 is not None else NULL
        items[k].n = (<cnp.ndarray>w[k]).size
        items[k].decay = bool(decay[k]) if decay is not None else False
        total[0] += items[k].n
    return items


cdef int _threads(int64_t total, int n_threads):
    return 1 if total < PARALLEL_MIN_ELEMENTS else n_threads


cdef enum Rule:
    SGD, RMSPROP, ADAM, ADAGRAD, ADADELTA, ADAMAX, NADAM, LION


cdef void _decay(bint f32, int isa, _Item *it, double wd, double lr, int64_t begin,
                 int64_t end) noexcept nogil:
    if f32:
        fc_weight_decay_f32(isa, <float *>it.w, <float>wd, <float>lr, begin, end)
    else:
        fc_weight_decay_f64(isa, <double *>it.w, wd, lr, begin, end)


cdef void _apply(Rule rule, bint f32, int isa, _Item *it, double *c, int flag, int64_t begin,
                 int64_t end) noexcept nogil:
    """Elements [begin, end) of one parameter by ``rule``; c: its scalars,
    flag: SGD's nesterov."""
    if rule == SGD:
        if f32:
            fc_sgd_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                              <float>c[0], <float>c[1], flag, begin, end)
        else:
            fc_sgd_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                              c[0], c[1], flag, begin, end)
    elif rule == RMSPROP:
        if f32:
            fc_rmsprop_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                                  <float *>it.s2, <float *>it.s3, <float>c[0], <float>c[1],
                                  <float>c[2], <float>c[3], <float>c[4], begin, end)
        else:
            fc_rmsprop_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                                  <double *>it.s2, <double *>it.s3, c[0], c[1], c[2], c[3],
                                  c[4], begin, end)
    elif rule == ADAM:
        if f32:
            fc_adam_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                               <float *>it.s2, <float *>it.s3, <float>c[0], <float>c[1],
                               <float>c[2], <float>c[3], begin, end)
        else:
            fc_adam_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                               <double *>it.s2, <double *>it.s3, c[0], c[1], c[2], c[3],
                               begin, end)
    elif rule == ADAGRAD:
        if f32:
            fc_adagrad_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                                  <float>c[0], <float>c[1], begin, end)
        else:
            fc_adagrad_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                                  c[0], c[1], begin, end)
    elif rule == ADADELTA:
        if f32:
            fc_adadelta_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                                   <float *>it.s2, <float>c[0], <float>c[1], <float>c[2],
                                   <float>c[3], begin, end)
        else:
            fc_adadelta_update_f64(isa, <double *>it.w, <const double *>it.g,
                                   <double *>it.s1, <double *>it.s2, c[0], c[1], c[2], c[3],
                                   begin, end)
    elif rule == ADAMAX:
        if f32:
            fc_adamax_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                                 <float *>it.s2, <float>c[0], <float>c[1], <float>c[2],
                                 <float>c[3], <float>c[4], begin, end)
        else:
            fc_adamax_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                                 <double *>it.s2, c[0], c[1], c[2], c[3], c[4], begin, end)
    elif rule == NADAM:
        if f32:
            fc_nadam_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                                <float *>it.s2, <float>c[0], <float>c[1], <float>c[2],
                                <float>c[3], <float>c[4], <float>c[5], <float>c[6],
                                <float>c[7], <float>c[8], begin, end)
        else:
            fc_nadam_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                                <double *>it.s2, c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                                c[7], c[8], begin, end)
    else:
        if f32:
            fc_lion_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                               <float>c[0], <float>c[1], <float>c[2], <float>c[3],
                               <float>c[4], begin, end)
        else:
            fc_lion_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                               c[0], c[1], c[2], c[3], c[4], begin, end)


cdef _update(Rule rule, list w, list g, list s1, list s2, list s3, tuple scalars, int flag,
             list decay, double wd, double wd_lr, bint f32, int isa, int n_threads):
    """Every parameter by ``rule``, in one parallel region: each thread
    takes the same share of every parameter (weight decay first, if flagged)."""
    cdef double c[MAX_SCALARS]
    cdef Py_ssize_t k, count = len(w)
    cdef int64_t total, begin, end
    cdef int t, threads
    for k in range(MAX_SCALARS):
        c[k] = scalars[k] if k < len(scalars) else 0.0
    cdef _Item *items = _items(w, g, s1, s2, s3, decay, &total)
    threads = _threads(total, n_threads)
    try:
        with nogil:
            for t in prange(threads, schedule="static", num_threads=threads):
                fc_record_team_size()
                for k in range(count):
                    begin = items[k].n * t // threads
                    end = items[k].n * (t + 1) // threads
                    if items[k].decay:
                        _decay(f32, isa, &items[k], wd, wd_lr, begin, end)
                    _apply(rule, f32, isa, &items[k], c, flag, begin, end)
    finally:
        free(items)


def sgd_update(list w, list g, list m, double lr, double mu, bint nesterov, bint f32,
               int isa, int n_threads, list decay=None, double wd=0.0, double wd_lr=0.0):
    """w -= lr * g, or with momentum (m: the momentum arrays, or None)."""
    _update(SGD, w, g, m, None, None, (lr, mu), nesterov, decay, wd, wd_lr, f32, isa,
            n_threads)


def rmsprop_update(list w, list g, list v, list a, list mom, double lr, double rho,
                   double one_minus_rho, double eps, double momentum, bint f32, int isa,
                   int n_threads, list decay=None, double wd=0.0, double wd_lr=0.0):
    """RMSprop's rule (a: the centered averages, mom: the momentum arrays, or None)."""
    _update(RMSPROP, w, g, v, a, mom, (lr, rho, one_minus_rho, eps, momentum), 0, decay, wd,
            wd_lr, f32, isa, n_threads)


def adam_update(list w, list g, list m, list v, list v_hat, double alpha,
                double one_minus_beta_1, double one_minus_beta_2, double eps, bint f32,
                int isa, int n_threads, list decay=None, double wd=0.0, double wd_lr=0.0):
    """Adam's rule (v_hat: AMSGrad's running maxima, or None)."""
    _update(ADAM, w, g, m, v, v_hat, (alpha, one_minus_beta_1, one_minus_beta_2, eps), 0,
            decay, wd, wd_lr, f32, isa, n_threads)


def adagrad_update(list w, list g, list acc, double lr, double eps, bint f32, int isa,
                   int n_threads, list decay=None, double wd=0.0, double wd_lr=0.0):
    """Adagrad's rule (acc: the accumulators)."""
    _update(ADAGRAD, w, g, acc, None, None, (lr, eps), 0, decay, wd, wd_lr, f32, isa,
            n_threads)


def adadelta_update(list w, list g, list ag, list adv, double lr, double rho,
                    double one_minus_rho, double eps, bint f32, int isa, int n_threads,
                    list decay=None, double wd=0.0, double wd_lr=0.0):
    """Adadelta's rule (ag, adv: the accumulated squared gradients and steps)."""
    _update(ADADELTA, w, g, ag, adv, None, (lr, rho, one_minus_rho, eps), 0, decay, wd,
            wd_lr, f32, isa, n_threads)


def adamax_update(list w, list g, list m, list u, double lr, double one_minus_beta_1,
                  double beta_2, double one_minus_beta_1_power, double eps, bint f32, int isa,
                  int n_threads, list decay=None, double wd=0.0, double wd_lr=0.0):
    """Adamax's rule (m: first moments, u: infinity norms)."""
    _update(ADAMAX, w, g, m, u, None, (lr, one_minus_beta_1, beta_2, one_minus_beta_1_power,
                                       eps), 0, decay, wd, wd_lr, f32, isa, n_threads)


def nadam_update(list w, list g, list m, list v, double lr, double one_minus_beta_1,
                 double one_minus_beta_2, double u_next, double c_next, double c_g,
                 double c_now, double c_v, double eps, bint f32, int isa, int n_threads,
                 list decay=None, double wd=0.0, double wd_lr=0.0):
    """Nadam's rule with this step's scalars (see optim_impl.h)."""
    _update(NADAM, w, g, m, v, None, (lr, one_minus_beta_1, one_minus_beta_2, u_next, c_next,
                                      c_g, c_now, c_v, eps), 0, decay, wd, wd_lr, f32, isa,
            n_threads)


def lion_update(list w, list g, list m, double lr, double beta_1, double one_minus_beta_1,
                double beta_2, double one_minus_beta_2, bint f32, int isa, int n_threads,
                list decay=None, double wd=0.0, double wd_lr=0.0):
    """Lion's rule (m: the momentum arrays)."""
    _update(LION, w, g, m, None, None, (lr, beta_1, one_minus_beta_1, beta_2,
                                        one_minus_beta_2), 0, decay, wd, wd_lr, f32, isa,
            n_threads)

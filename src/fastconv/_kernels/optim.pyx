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
no two of them overlapping.
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
)

cnp.import_array()

# Total elements below which an update runs on one thread.
PARALLEL_MIN_ELEMENTS = 1 << 15


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


cdef void *_data(object array):
    return NULL if array is None else cnp.PyArray_DATA(<cnp.ndarray>array)


cdef _Item *_items(list w, list g, list s1, list s2, list s3, int64_t *total) except NULL:
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
        total[0] += items[k].n
    return items


cdef int _threads(int64_t total, int n_threads):
    return 1 if total < PARALLEL_MIN_ELEMENTS else n_threads


cdef enum Rule:
    SGD, RMSPROP, ADAM


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
    else:
        if f32:
            fc_adam_update_f32(isa, <float *>it.w, <const float *>it.g, <float *>it.s1,
                               <float *>it.s2, <float *>it.s3, <float>c[0], <float>c[1],
                               <float>c[2], <float>c[3], begin, end)
        else:
            fc_adam_update_f64(isa, <double *>it.w, <const double *>it.g, <double *>it.s1,
                               <double *>it.s2, <double *>it.s3, c[0], c[1], c[2], c[3],
                               begin, end)


cdef _update(Rule rule, list w, list g, list s1, list s2, list s3, tuple scalars, int flag,
             bint f32, int isa, int n_threads):
    """Every parameter by ``rule``, in one parallel region: each thread
    takes the same share of every parameter."""
    cdef double c[5]
    cdef Py_ssize_t k, count = len(w)
    cdef int64_t total
    cdef int t, threads
    for k in range(5):
        c[k] = scalars[k] if k < len(scalars) else 0.0
    cdef _Item *items = _items(w, g, s1, s2, s3, &total)
    threads = _threads(total, n_threads)
    try:
        with nogil:
            for t in prange(threads, schedule="static", num_threads=threads):
                fc_record_team_size()
                for k in range(count):
                    _apply(rule, f32, isa, &items[k], c, flag, items[k].n * t // threads,
                           items[k].n * (t + 1) // threads)
    finally:
        free(items)


def sgd_update(list w, list g, list m, double lr, double mu, bint nesterov, bint f32,
               int isa, int n_threads):
    """w -= lr * g, or with momentum (m: the momentum arrays, or None)."""
    _update(SGD, w, g, m, None, None, (lr, mu), nesterov, f32, isa, n_threads)


def rmsprop_update(list w, list g, list v, list a, list mom, double lr, double rho,
                   double one_minus_rho, double eps, double momentum, bint f32, int isa,
                   int n_threads):
    """RMSprop's rule (a: the centered averages, mom: the momentum arrays, or None)."""
    _update(RMSPROP, w, g, v, a, mom, (lr, rho, one_minus_rho, eps, momentum), 0, f32, isa,
            n_threads)


def adam_update(list w, list g, list m, list v, list v_hat, double alpha,
                double one_minus_beta_1, double one_minus_beta_2, double eps, bint f32,
                int isa, int n_threads):
    """Adam's rule (v_hat: AMSGrad's running maxima, or None)."""
    _update(ADAM, w, g, m, v, v_hat, (alpha, one_minus_beta_1, one_minus_beta_2, eps), 0, f32,
            isa, n_threads)

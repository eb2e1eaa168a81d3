# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A sequence of float32 kernel calls run in one OpenMP parallel region: the
compiled part of an inference pass (fastconv.graph.inference).

Each operation reads and writes tensors by number; the tensors are arrays
bound once (buffers the caller owns, weights) or before each run (arrays
that Python steps computed). The team of threads stays in the region for
the whole sequence: each operation splits its independent work items
(output rows, images, dense rows) into contiguous blocks over its own
number of threads, the others wait at the barrier that ends it. So a run
costs one fork and join, not one per kernel, and no Python between the
kernels.

The operations call the very C kernels of the per-op modules (conv.pyx,
pool.pyx, conv_pool.pyx, dense.pyx) on the same geometry, and those
kernels' results do not depend on how their items are split: a program
gives the bits of the same ops called one by one.
"""
from cython.parallel cimport parallel, threadid
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

cimport numpy as cnp

from fastconv._kernels.kernels cimport (
    conv_geometry, crop_to_windows, fc_conv_geom, fc_last_team_size, fc_omp_barrier, fc_pool_geom,
    fc_record_team_size, pool_geometry, fc_avg_pool2d_forward_f32, fc_conv2d_forward_f32,
    fc_max_pool2d_forward_f32,
)

cnp.import_array()


cdef extern from "fc_omp.h" nogil:
    int omp_get_num_threads()


cdef extern from "dense.h" nogil:
    int fc_dense_lanes(int isa, int itemsize)
    void fc_dense_rows_f32(int isa, float *out, const float *a, const float *b,
                           const float *bias, int64_t k, int64_t u, int64_t ub,
                           int64_t row_begin, int64_t row_end)


cdef extern from "global_pool.h" nogil:
    void fc_global_avg_pool_forward_f32(int isa, float *y, const float *x, int64_t p,
                                        int64_t c, int64_t block, int64_t item_begin,
                                        int64_t item_end)
    void fc_global_max_pool_forward_f32(int isa, float *y, int32_t *argmax, const float *x,
                                        int64_t p, int64_t c, int64_t block,
                                        int64_t item_begin, int64_t item_end)


cdef enum:
    OP_CONV = 0
    OP_MAX_POOL = 1
    OP_CONV_MAX_POOL = 2
    OP_DENSE = 3
    OP_PAD_COLUMNS = 4
    OP_GLOBAL_AVG_POOL = 5
    OP_GLOBAL_MAX_POOL = 6
    OP_AVG_POOL = 7


cdef struct fc_program_op:
    int kind
    int threads          # how many of the team share the work items
    int64_t items        # output rows (conv, pool), images (fused), rows (dense)
    fc_conv_geom g
    fc_pool_geom pg
    int x, w, b, y       # tensor numbers (-1: none)
    int argmax, scratch  # tensor numbers of the op's workspace
    int64_t k, u, ub     # dense: inner size, output columns, padded columns;
                         # global pooling: positions, channels, channels per item
    bint relu            # dense: rectify the output (conv: in g)
    int64_t x_image, plane, pooled  # fused: one image's input, conv plane, pooled output


def last_team_size() -> int:
    """Threads in the team of this module's most recent run."""
    return fc_last_team_size


def lanes(int isa) -> int:
    """float32 elements in one vector of ``isa`` (the dense kernel's columns)."""
    return fc_dense_lanes(isa, 4)


cdef class Program:
    """Operations over numbered tensors (see the module docstring).

    ``Program(sizes, team, isa)``: ``sizes[i]`` is the number of elements
    tensor i holds (float32; int32 for argmax workspaces). ``add_*`` append
    operations; ``bind(i, array)`` points tensor i at an array of at least
    that size; ``run()`` executes them all."""

    cdef fc_program_op *ops
    cdef int n_ops
    cdef void **data
    cdef int64_t *sizes
    cdef int *int32
    cdef int n_tensors
    cdef int team
    cdef int isa
    cdef list held  # the arrays bound, kept alive while their memory is used

    def __cinit__(self, sizes, int team, int isa):
        cdef int i
        self.n_tensors = len(sizes)
        self.ops = NULL
        self.n_ops = 0
        self.data = <void **>realloc(NULL, max(1, self.n_tensors) * sizeof(void *))
        self.sizes = <int64_t *>realloc(NULL, max(1, self.n_tensors) * sizeof(int64_t))
        self.int32 = <int *>realloc(NULL, max(1, self.n_tensors) * sizeof(int))
        if self.data == NULL or self.sizes == NULL or self.int32 == NULL:
            raise MemoryError()
        for i in range(self.n_tensors):
            self.data[i] = NULL
            self.sizes[i] = sizes[i]
            self.int32[i] = 0
        self.team = max(1, team)
        self.isa = isa
        self.held = [None] * self.n_tensors

    def __dealloc__(self):
        free(self.ops)
        free(self.data)
        free(self.sizes)
        free(self.int32)

    cdef fc_program_op *_append(self, int kind, int threads, int64_t items) except NULL:
        cdef fc_program_op *grown = <fc_program_op *>realloc(
            self.ops, (self.n_ops + 1) * sizeof(fc_program_op))
        if grown == NULL:
            raise MemoryError()
        self.ops = grown
        cdef fc_program_op *op = &self.ops[self.n_ops]
        self.n_ops += 1
        op.kind = kind
        op.threads = max(1, min(threads, self.team, items))
        op.items = items
        op.x = op.w = op.b = op.y = op.argmax = op.scratch = -1
        op.relu = 0
        return op

    def add_conv(self, geom, bint relu, int x, int w, int b, int y, int threads):
        """y = conv(x, w) + b (b: -1 for none), rectified when ``relu``; geom
        a ConvGeometry of the 2-D kernel (a Conv1D as a height-1 image)."""
        cdef fc_conv_geom g = conv_geometry(geom)
        g.relu = relu
        cdef fc_program_op *op = self._append(OP_CONV, threads, g.n * g.od * g.oh)
        op.g = g
        op.x, op.w, op.b, op.y = x, w, b, y

    def add_max_pool(self, geom, int x, int y, int argmax, int threads):
        """y = max pooling of x; argmax an int32 workspace of y's size."""
        cdef fc_pool_geom pg = pool_geometry(geom)
        cdef fc_program_op *op = self._append(OP_MAX_POOL, threads, pg.n * pg.oh)
        op.pg = pg
        op.x, op.y, op.argmax = x, y, argmax
        self.int32[argmax] = 1

    def add_avg_pool(self, geom, int x, int y, int threads):
        """y = average pooling of x (over each window's elements inside it)."""
        cdef fc_pool_geom pg = pool_geometry(geom)
        cdef fc_program_op *op = self._append(OP_AVG_POOL, threads, pg.n * pg.oh)
        op.pg = pg
        op.x, op.y = x, y

    def add_conv_max_pool(self, conv_geom, pool_geom, int x, int w, int b, int y, int argmax,
                          int scratch, int threads):
        """y = max pooling of relu(conv(x, w) + b), one image at a time through
        a plane of ``scratch`` per thread (threads * OH * OW * C_out)."""
        cdef fc_conv_geom g = conv_geometry(conv_geom)
        cdef fc_pool_geom pg = pool_geometry(pool_geom)
        cdef fc_program_op *op = self._append(OP_CONV_MAX_POOL, threads, g.n)
        g.relu = 1
        g.n = 1
        pg.n = 1
        crop_to_windows(&g, &pg)  # only what the windows read, as conv_pool.pyx
        op.x_image = g.h * g.w * g.c_in
        op.plane = g.oh * g.ow * g.c_out
        op.pooled = pg.oh * pg.ow * pg.c
        op.g, op.pg = g, pg
        op.x, op.w, op.b, op.y, op.argmax, op.scratch = x, w, b, y, argmax, scratch
        self.int32[argmax] = 1

    def add_dense(self, int64_t rows, int64_t k, int64_t u, int64_t ub, bint relu, int x, int w,
                  int b, int y, int threads):
        """y (rows, u) = x (rows, k) w (k, ub) [+ b (ub,)], rectified when
        ``relu`` as np.maximum(y, 0) does it (-0 becomes +0, NaN passes);
        w and b padded with zero columns to ub, a multiple of ``lanes(isa)``."""
        cdef fc_program_op *op = self._append(OP_DENSE, threads, rows)
        op.k, op.u, op.ub, op.relu = k, u, ub, relu
        op.x, op.w, op.b, op.y = x, w, b, y

    def add_pad_columns(self, int64_t rows, int64_t u, int64_t ub, int x, int y):
        """The first u of the ub columns of y (rows, ub) = x (rows, u): a
        weight copied into its padded buffer (whose other columns stay zero)."""
        cdef fc_program_op *op = self._append(OP_PAD_COLUMNS, 1, rows)
        op.u, op.ub = u, ub
        op.x, op.y = x, y

    def add_global_pool(self, bint maximum, int64_t n, int64_t positions, int64_t channels,
                        int64_t block, int x, int y, int argmax, int threads):
        """y (n, channels) = the mean, or with ``maximum`` the maximum (its
        position in the int32 workspace ``argmax``), of x (n, positions,
        channels) over the positions; work items of ``block`` channels of an
        image (global_pool.h), whose split does not change the bits."""
        cdef int64_t items = n * ((channels + block - 1) // block)
        cdef fc_program_op *op = self._append(
            OP_GLOBAL_MAX_POOL if maximum else OP_GLOBAL_AVG_POOL, threads, items)
        op.k, op.u, op.ub = positions, channels, block
        op.x, op.y = x, y
        if maximum:
            op.argmax = argmax
            self.int32[argmax] = 1

    def bind(self, int i, cnp.ndarray a):
        """Tensor i reads and writes ``a`` (C-contiguous, float32, or int32 for
        an argmax workspace, at least the tensor's size) from now on."""
        if not 0 <= i < self.n_tensors:
            raise ValueError(f"Invalid value for argument `i`: expected a tensor number in "
                             f"[0, {self.n_tensors}), received i={i}.")
        wanted = cnp.NPY_INT32 if self.int32[i] else cnp.NPY_FLOAT32
        if cnp.PyArray_TYPE(a) != wanted or not cnp.PyArray_IS_C_CONTIGUOUS(a) or (
                cnp.PyArray_SIZE(a) < self.sizes[i]):
            raise ValueError(
                f"Invalid value for argument `a` of tensor {i}: expected a C-contiguous "
                f"{'int32' if self.int32[i] else 'float32'} array of at least "
                f"{self.sizes[i]} elements, received {(<object>a).dtype} {(<object>a).shape} "
                f"(C-contiguous: {bool((<object>a).flags.c_contiguous)}).")
        self.data[i] = cnp.PyArray_DATA(a)
        self.held[i] = a

    def run(self):
        """Execute the operations in order (every tensor must be bound)."""
        cdef int i, t
        for i in range(self.n_tensors):
            if self.data[i] == NULL and self.sizes[i] > 0:
                raise ValueError(f"Tensor {i} of the program is not bound to an array.")
        cdef int share, team
        with nogil, parallel(num_threads=self.team):
            t = threadid()
            # OpenMP may give a smaller team than asked for: each thread then
            # takes every team-th share, so every share still runs once.
            team = omp_get_num_threads()
            fc_record_team_size()
            for i in range(self.n_ops):
                share = t
                while share < self.ops[i].threads:
                    run_share(&self.ops[i], self.data, self.isa, share)
                    share = share + team
                fc_omp_barrier()


cdef inline const float *tensor(void **data, int i) noexcept nogil:
    return NULL if i < 0 else <const float *>data[i]


cdef void run_share(const fc_program_op *op, void **data, int isa, int t) noexcept nogil:
    """Block t of the op.threads blocks of the operation's work items."""
    cdef int64_t begin = op.items * t // op.threads
    cdef int64_t end = op.items * (t + 1) // op.threads
    cdef int64_t i
    cdef const float *x = tensor(data, op.x)
    cdef float *y = <float *>data[op.y]
    cdef float *plane
    cdef int32_t *argmax
    if op.kind == OP_CONV:
        fc_conv2d_forward_f32(isa, &op.g, x, tensor(data, op.w), tensor(data, op.b), y,
                              begin, end)
    elif op.kind == OP_MAX_POOL:
        fc_max_pool2d_forward_f32(isa, &op.pg, x, y, <int32_t *>data[op.argmax], begin, end)
    elif op.kind == OP_AVG_POOL:
        fc_avg_pool2d_forward_f32(isa, &op.pg, x, y, begin, end)
    elif op.kind == OP_CONV_MAX_POOL:
        plane = <float *>data[op.scratch] + t * op.plane
        argmax = <int32_t *>data[op.argmax]
        for i in range(begin, end):
            fc_conv2d_forward_f32(isa, &op.g, x + i * op.x_image, tensor(data, op.w),
                                  tensor(data, op.b), plane, 0, op.g.oh)
            fc_max_pool2d_forward_f32(isa, &op.pg, plane, y + i * op.pooled,
                                      argmax + i * op.pooled, 0, op.pg.oh)
    elif op.kind == OP_DENSE:
        fc_dense_rows_f32(isa, y, x, tensor(data, op.w), tensor(data, op.b), op.k, op.u,
                          op.ub, begin, end)
        if op.relu:
            for i in range(begin * op.u, end * op.u):
                if y[i] <= 0:  # -0 too: a product that underflows sums to -0
                    y[i] = 0
    elif op.kind == OP_GLOBAL_AVG_POOL:
        fc_global_avg_pool_forward_f32(isa, y, x, op.k, op.u, op.ub, begin, end)
    elif op.kind == OP_GLOBAL_MAX_POOL:
        fc_global_max_pool_forward_f32(isa, y, <int32_t *>data[op.argmax], x, op.k, op.u,
                                       op.ub, begin, end)
    elif op.kind == OP_PAD_COLUMNS:
        for i in range(begin, end):
            memcpy(y + i * op.ub, x + i * op.u, op.u * sizeof(float))

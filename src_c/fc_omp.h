/* fc_omp.h - the OpenMP shim: the kernels compile with and without OpenMP.
 * Without it every parallel loop runs on the calling thread. */
#ifndef FC_OMP_H
#define FC_OMP_H
#ifdef _OPENMP
#include <omp.h>
#define FC_OPENMP_ENABLED 1
#else
#define FC_OPENMP_ENABLED 0
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif

/* Size of the team that ran the most recent parallel loop of this module,
 * recorded by its first thread; lets the tests see how many threads a kernel
 * really used. */
static int fc_last_team_size = 0;

/* A barrier of the enclosing parallel region (nothing without OpenMP). */
static inline void fc_omp_barrier(void)
{
#ifdef _OPENMP
    _Pragma("omp barrier")
#endif
}

/* Ends the calling thread's idle OpenMP worker threads (libgomp keeps them
 * for the next parallel region). Called before fork(): the child inherits
 * the pool's bookkeeping but not its threads, and its first multi-threaded
 * region would wait for them forever. Without a pool, the child and the
 * parent each start fresh workers at their next region. */
static inline void fc_omp_release_threads(void)
{
#ifdef _OPENMP
    omp_pause_resource_all(omp_pause_soft);
#endif
}

static inline void fc_record_team_size(void)
{
    if (omp_get_thread_num() == 0)
        fc_last_team_size = omp_get_num_threads();
}
#endif

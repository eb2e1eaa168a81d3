/* fc_dispatch.h - instantiate a micro-kernel template once per dtype and
 * instruction set, and name the results.
 *
 * Inside a template, FC_T is the element type, FC_IT the signed integer of
 * its width (the lanes of vector comparison masks), FC_FN(f) the name of f for
 * this instantiation, FC_TARGET the function attribute selecting the
 * instruction set and FC_VEC_BYTES its natural vector width.
 *
 * A file including a template T this way:
 *     #define FC_TEMPLATE "T_impl.h"
 *     #include "fc_dispatch.h"
 * gets static functions f_f32_generic, f_f32_avx2, f_f32_avx512 and the same
 * for f64, for every function f the template defines with FC_FN(f). The
 * x86 variants are compiled with GCC/Clang target attributes, so the
 * package builds with the compiler's baseline flags and the wider vectors
 * are used only where fc_cpu_supports() says the CPU has them.
 */
#define FC_CAT3_(a, b, c) a##_##b##_##c
#define FC_CAT3(a, b, c) FC_CAT3_(a, b, c)
#define FC_FN(f) FC_CAT3(f, FC_DT, FC_ISA_NAME)

/* FC_VEC_BYTES: the vector width the micro-kernels' explicit vectors use. */
#define FC_TARGET
#define FC_ISA_NAME generic
#define FC_VEC_BYTES 16
#define FC_T float
#define FC_IT int32_t
#define FC_DT f32
#include FC_TEMPLATE
#undef FC_T
#undef FC_IT
#undef FC_DT
#define FC_T double
#define FC_IT int64_t
#define FC_DT f64
#include FC_TEMPLATE
#undef FC_T
#undef FC_IT
#undef FC_DT
#undef FC_ISA_NAME
#undef FC_TARGET
#undef FC_VEC_BYTES

#if FC_X86
#define FC_TARGET __attribute__((target("avx2,fma")))
#define FC_ISA_NAME avx2
#define FC_VEC_BYTES 32
#define FC_T float
#define FC_IT int32_t
#define FC_DT f32
#include FC_TEMPLATE
#undef FC_T
#undef FC_IT
#undef FC_DT
#define FC_T double
#define FC_IT int64_t
#define FC_DT f64
#include FC_TEMPLATE
#undef FC_T
#undef FC_IT
#undef FC_DT
#undef FC_ISA_NAME
#undef FC_TARGET
#undef FC_VEC_BYTES

#if defined(__clang__)
#define FC_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#else /* GCC would otherwise prefer 256-bit vectors for the loops it vectorises */
#define FC_TARGET \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,prefer-vector-width=512")))
#endif
#define FC_ISA_NAME avx512
#define FC_VEC_BYTES 64
#define FC_T float
#define FC_IT int32_t
#define FC_DT f32
#include FC_TEMPLATE
#undef FC_T
#undef FC_IT
#undef FC_DT
#define FC_T double
#define FC_IT int64_t
#define FC_DT f64
#include FC_TEMPLATE
#undef FC_T
#undef FC_IT
#undef FC_DT
#undef FC_ISA_NAME
#undef FC_TARGET
#undef FC_VEC_BYTES
#endif

/* FC_DISPATCH(f, dt, isa, args): call the variant of f for dtype dt (f32 or
 * f64) and instruction set isa, falling back to the portable one;
 * FC_DISPATCH_RETURN returns what it returns. */
#if FC_X86
#define FC_DISPATCH(f, dt, isa, args)                                      \
    do {                                                                   \
        if ((isa) == FC_ISA_AVX512)                                        \
            FC_CAT3(f, dt, avx512) args;                                   \
        else if ((isa) == FC_ISA_AVX2)                                     \
            FC_CAT3(f, dt, avx2) args;                                     \
        else                                                               \
            FC_CAT3(f, dt, generic) args;                                  \
    } while (0)
#define FC_DISPATCH_RETURN(f, dt, isa, args)                               \
    do {                                                                   \
        if ((isa) == FC_ISA_AVX512)                                        \
            return FC_CAT3(f, dt, avx512) args;                            \
        if ((isa) == FC_ISA_AVX2)                                          \
            return FC_CAT3(f, dt, avx2) args;                              \
        return FC_CAT3(f, dt, generic) args;                               \
    } while (0)
#else
#define FC_DISPATCH(f, dt, isa, args) FC_CAT3(f, dt, generic) args
#define FC_DISPATCH_RETURN(f, dt, isa, args) return FC_CAT3(f, dt, generic) args
#endif

/* fc_common.h - types shared by every fastconv C kernel.
 *
 * How the layers stack up:
 *   fastconv.ops (Python: validates arguments once, computes the geometry)
 *     -> fastconv/_kernels/<op>.pyx (Cython: releases the GIL, owns the OpenMP
 *        loop, splits the work into contiguous blocks of independent items)
 *       -> fc_*_<dtype>(isa, ...) here (C: picks the micro-kernel compiled for
 *          the CPU's instruction set and runs one block of work)
 *
 * Layouts: activations NHWC (N, H, W, C), kernels HWIO (KH, KW, C_in, C_out),
 * all C-contiguous. The C code trusts its inputs: sizes are consistent and
 * pointers are valid, because fastconv.ops checked them.
 */
#ifndef FC_COMMON_H
#define FC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#define FC_X86 1
#else
#define FC_X86 0
#endif

#define FC_RESTRICT __restrict__

/* Instruction-set levels a micro-kernel may be compiled for. */
enum fc_isa {
    FC_ISA_GENERIC = 0, /* portable C, whatever the compiler's baseline */
    FC_ISA_AVX2 = 1,    /* AVX2 + FMA (8 floats a vector) */
    FC_ISA_AVX512 = 2   /* AVX-512 F/VL/BW/DQ (16 floats a vector) */
};

/* 1 when this CPU (and the OS) can run code of level `isa`. */
int fc_cpu_supports(int isa);

/* Geometry of one convolution, of rank up to 3.
 * x (n, d, h, w, c_in), w (kd, kh, kw, c_in, c_out), y (n, od, oh, ow, c_out).
 * Output pixel (od, oh, ow), tap (k, i, j) reads input pixel
 * (od * stride_d - pad_front + k * dil_d, oh * stride_h - pad_top + i * dil_h,
 *  ow * stride_w - pad_left + j * dil_w);
 * positions outside the image are zeros. A 2-D convolution has
 * d = kd = od = 1 (and stride_d = dil_d = 1, pad_front = 0); a 1-D one also
 * h = kh = oh = 1. */
typedef struct {
    int64_t n, h, w, c_in;
    int64_t kh, kw, c_out;
    int64_t oh, ow;
    int64_t stride_h, stride_w;
    int64_t dil_h, dil_w;
    int64_t pad_top, pad_left;
    int relu; /* forward epilogue: y = max(y, 0) after the bias (0: none) */
    int64_t d, kd, od, stride_d, dil_d, pad_front;
    /* Where the forward pass writes output pixel (n, od, oh, ow): element
     * n * y_sn + od * y_sd + oh * y_sh + ow * y_sw of y (its channels
     * contiguous from there). Dense y: y_sw = c_out, y_sh = ow * c_out, ...;
     * other strides let a pass write every s-th pixel of a larger array. */
    int64_t y_sn, y_sd, y_sh, y_sw;
} fc_conv_geom;

/* Sets the output strides of a dense y (n, od, oh, ow, c_out). */
static inline void fc_dense_output(fc_conv_geom *g)
{
    g->y_sw = g->c_out;
    g->y_sh = g->ow * g->y_sw;
    g->y_sd = g->oh * g->y_sh;
    g->y_sn = g->od * g->y_sd;
}

/* Element offset in the forward pass's y of output pixel (n, od, oh, ow). */
static inline int64_t fc_y_offset(const fc_conv_geom *g, int64_t n, int64_t od, int64_t oh,
                                  int64_t ow)
{
    return n * g->y_sn + od * g->y_sd + oh * g->y_sh + ow * g->y_sw;
}

/* Element offset / c_in of input pixel (n, id, ih, iw). */
static inline int64_t fc_in_pixel(const fc_conv_geom *g, int64_t n, int64_t id, int64_t ih,
                                  int64_t iw)
{
    return ((n * g->d + id) * g->h + ih) * g->w + iw;
}

/* Element offset / c_out of output pixel (n, od, oh, ow). */
static inline int64_t fc_out_pixel_index(const fc_conv_geom *g, int64_t n, int64_t od,
                                         int64_t oh, int64_t ow)
{
    return ((n * g->od + od) * g->oh + oh) * g->ow + ow;
}

/* The output row after (n, od, oh) in (n, od, oh) order. */
static inline void fc_next_row(const fc_conv_geom *g, int64_t *n, int64_t *od, int64_t *oh)
{
    if (++*oh == g->oh) {
        *oh = 0;
        if (++*od == g->od) {
            *od = 0;
            ++*n;
        }
    }
}

/* Geometry of one pooling: x (n, h, w, c), y (n, oh, ow, c), window (kh, kw).
 * Window (oh, ow) covers rows oh * stride_h - pad_top + [0, kh) and columns
 * ow * stride_w - pad_left + [0, kw); only positions inside the image take
 * part (every window holds at least one, which fastconv.ops guarantees).
 * Max pooling's argmax holds ih * index_w + iw. index_w is w, except where x
 * is the top-left h x w corner of a wider convolution output, stored dense:
 * the part its windows read, all a fused convolution computes, while argmax
 * still counts in the full output's width. Only max_pool2d_forward and
 * max_pool2d_backward_disjoint take such an x. */
typedef struct {
    int64_t n, h, w, c;
    int64_t kh, kw;
    int64_t oh, ow;
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_left;
    int64_t index_w;
} fc_pool_geom;

/* One output pixel (n, od, oh, ow) of a convolution and the taps that read
 * inside the image: depth taps [kd_lo, kd_hi), rows [kh_lo, kh_hi), columns
 * [kw_lo, kw_hi). */
typedef struct {
    int64_t n, oh, ow;
    int64_t kh_lo, kh_hi, kw_lo, kw_hi;
    int64_t od, kd_lo, kd_hi;
} fc_out_pixel;

/* 1 when pixels a and b read the same taps. */
static inline int fc_same_taps(const fc_out_pixel *a, const fc_out_pixel *b)
{
    return a->kh_lo == b->kh_lo && a->kh_hi == b->kh_hi && a->kw_lo == b->kw_lo &&
           a->kw_hi == b->kw_hi && a->kd_lo == b->kd_lo && a->kd_hi == b->kd_hi;
}

/* Inclusive-exclusive range [lo, hi) of taps t in [0, k) for which
 * base + t * step lands in [0, size). step >= 1. */
static inline void fc_tap_range(int64_t base, int64_t step, int64_t k, int64_t size,
                                int64_t *lo, int64_t *hi)
{
    int64_t a, b;
    if (step == 1) { /* the common case, without the divisions */
        a = base >= 0 ? 0 : -base;
        b = size - base <= 0 ? 0 : size - base;
    } else {
        a = base >= 0 ? 0 : (-base + step - 1) / step;
        b = size - base <= 0 ? 0 : (size - base + step - 1) / step;
    }
    *lo = a;
    *hi = b < k ? b : k;
    if (*hi < *lo)
        *hi = *lo;
}

/* Output pixels whose taps all read inside the image: rows [oh_a, oh_b),
 * columns [ow_a, ow_b) (an empty rectangle when oh_a == oh_b). */
typedef struct {
    int64_t oh_a, oh_b, ow_a, ow_b;
} fc_interior;

/* Columns [*lo, *hi) of row oh outside the interior part of [ow_lo, ow_hi)
 * (segment 0 left of it, segment 1 right of it; the whole range, as
 * segment 0, in rows the interior does not cross). */
static inline void fc_border_segment(const fc_interior *in, int64_t oh, int seg, int64_t ow_lo,
                                     int64_t ow_hi, int64_t *lo, int64_t *hi)
{
    if (oh < in->oh_a || oh >= in->oh_b) {
        *lo = seg ? ow_hi : ow_lo;
        *hi = ow_hi;
    } else if (seg == 0) {
        *lo = ow_lo;
        *hi = ow_hi < in->ow_a ? ow_hi : in->ow_a;
    } else {
        *lo = ow_lo > in->ow_b ? ow_lo : in->ow_b;
        *hi = ow_hi;
    }
}

#endif /* FC_COMMON_H */

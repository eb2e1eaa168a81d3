/* conv2d.c - direct 2-D convolution kernels: the micro-kernels of
 * conv2d_impl.h compiled per dtype and instruction set, behind one entry
 * point per (op, dtype) that takes the instruction set to use. */
#include "conv2d.h"

#include <string.h>

#define FC_TEMPLATE "conv2d_impl.h"
#include "fc_dispatch.h"

#define FC_DEFINE_ENTRIES(dt, T)                                                         \
    void fc_conv2d_forward_##dt(int isa, const fc_conv_geom *g, const T *x, const T *w,  \
                                const T *b, T *y, int64_t row_begin, int64_t row_end)    \
    {                                                                                    \
        FC_DISPATCH(conv2d_forward, dt, isa, (g, x, w, b, y, row_begin, row_end));       \
    }                                                                                    \
    void fc_conv2d_backward_data_##dt(int isa, const fc_conv_geom *g, const T *dy,      \
                                      const T *wt, T *dx, int64_t row_begin,            \
                                      int64_t row_end)                                  \
    {                                                                                    \
        FC_DISPATCH(conv2d_backward_data, dt, isa, (g, dy, wt, dx, row_begin, row_end)); \
    }                                                                                    \
    void fc_relu_backward_##dt(int isa, const T *dy, const T *y, T *dx, int64_t begin,  \
                               int64_t end)                                             \
    {                                                                                    \
        FC_DISPATCH(relu_backward, dt, isa, (dy, y, dx, begin, end));                    \
    }                                                                                    \
    void fc_conv2d_backward_weight_##dt(int isa, const fc_conv_geom *g, const T *x,     \
                                        const T *dy, T *dw, T *db, int64_t n_begin,     \
                                        int64_t n_end, int accumulate)                  \
    {                                                                                    \
        FC_DISPATCH(conv2d_backward_weight, dt, isa,                                     \
                    (g, x, dy, dw, db, n_begin, n_end, accumulate));                     \
    }                                                                                    \
    int64_t fc_conv2d_weight_blocks_##dt(int isa, const fc_conv_geom *g)                 \
    {                                                                                    \
        FC_DISPATCH_RETURN(dw_block_count, dt, isa, (g));                                \
    }                                                                                    \
    void fc_conv2d_backward_weight_blocks_##dt(int isa, const fc_conv_geom *g,          \
                                               const T *x, const T *dy, T *dw,          \
                                               T *scratch, int64_t n_chunks,            \
                                               int64_t part, int64_t parts)             \
    {                                                                                    \
        FC_DISPATCH(conv2d_backward_weight_blocks, dt, isa,                              \
                    (g, x, dy, dw, scratch, n_chunks, part, parts));                     \
    }

FC_DEFINE_ENTRIES(f32, float)
FC_DEFINE_ENTRIES(f64, double)

/* out[k] = sum over r of parts[r, k], r in increasing order, for k in
 * [begin, end): the fixed-order reduction of per-chunk weight gradients that
 * keeps them identical whatever the thread count. parts (n_parts, len).
 * Elements go FC_SUM_BLOCK at a time through explicit 16-byte vectors, the
 * last len % FC_SUM_BLOCK one by one; with begin (and end, unless it is len)
 * multiples of FC_SUM_BLOCK, an element's instructions depend on its index
 * alone, not on how the range was shared out, so even NaN results keep their
 * sign and payload. */
typedef float fc_sum_f32 __attribute__((vector_size(16), aligned(4)));
typedef double fc_sum_f64 __attribute__((vector_size(16), aligned(8)));
#define FC_DEFINE_SUM(dt, T)                                                          \
    void fc_sum_parts_##dt(const T *parts, int64_t n_parts, int64_t len, T *out,      \
                           int64_t begin, int64_t end)                                \
    {                                                                                 \
        const int64_t lanes = (int64_t)(sizeof(fc_sum_##dt) / sizeof(T));             \
        int64_t k = begin;                                                            \
        for (; k + FC_SUM_BLOCK <= end; k += FC_SUM_BLOCK)                            \
            for (int64_t l = k; l < k + FC_SUM_BLOCK; l += lanes) {                   \
                fc_sum_##dt acc = *(const fc_sum_##dt *)(parts + l);                  \
                for (int64_t r = 1; r < n_parts; ++r)                                 \
                    acc += *(const fc_sum_##dt *)(parts + r * len + l);               \
                *(fc_sum_##dt *)(out + l) = acc;                                      \
            }                                                                         \
        for (; k < end; ++k) {                                                        \
            T acc = parts[k];                                                         \
            for (int64_t r = 1; r < n_parts; ++r)                                     \
                acc += parts[r * len + k];                                            \
            out[k] = acc;                                                             \
        }                                                                             \
    }

FC_DEFINE_SUM(f32, float)
FC_DEFINE_SUM(f64, double)

/* x * 0 is a zero for every finite x and NaN for infinities and NaN; NaN
 * stays in a lane's sum once there. 16-byte vectors: this runs on short
 * spans (a kernel, an image's last rows), any CPU has them. */
#define FC_DEFINE_ALL_FINITE(dt, T)                                                   \
    int fc_all_finite_##dt(const T *a, int64_t len)                                   \
    {                                                                                 \
        const int lanes = (int)(sizeof(fc_sum_##dt) / sizeof(T));                     \
        fc_sum_##dt acc = {0}, acc1 = {0};                                            \
        T rest = 0;                                                                   \
        int64_t k = 0;                                                                \
        for (; k + 2 * lanes <= len; k += 2 * lanes) {                                \
            acc += *(const fc_sum_##dt *)(a + k) * (T)0;                              \
            acc1 += *(const fc_sum_##dt *)(a + k + lanes) * (T)0;                     \
        }                                                                             \
        acc += acc1;                                                                  \
        for (; k + lanes <= len; k += lanes)                                          \
            acc += *(const fc_sum_##dt *)(a + k) * (T)0;                              \
        for (; k < len; ++k)                                                          \
            rest += a[k] * (T)0;                                                      \
        for (int l = 0; l < lanes; ++l)                                               \
            rest += acc[l];                                                           \
        return rest == rest;                                                          \
    }

FC_DEFINE_ALL_FINITE(f32, float)
FC_DEFINE_ALL_FINITE(f64, double)

/* -0 is the one element whose bits are the sign bit alone: compared as
 * integers, 16 bytes at a time. */
typedef uint32_t fc_bits_f32 __attribute__((vector_size(16), aligned(4)));
typedef uint64_t fc_bits_f64 __attribute__((vector_size(16), aligned(8)));
#define FC_DEFINE_HAS_NEGATIVE_ZERO(dt, T, U)                                         \
    int fc_has_negative_zero_##dt(const T *a, int64_t len)                            \
    {                                                                                 \
        const int lanes = (int)(sizeof(fc_bits_##dt) / sizeof(T));                    \
        const U sign = (U)1 << (8 * sizeof(U) - 1);                                   \
        const fc_bits_##dt signs = (fc_bits_##dt){0} + sign;                          \
        fc_bits_##dt found = {0};                                                     \
        int64_t k = 0;                                                                \
        for (; k + lanes <= len; k += lanes)                                          \
            found |= (fc_bits_##dt)(*(const fc_bits_##dt *)(a + k) == signs);         \
        int any = 0;                                                                  \
        for (int l = 0; l < lanes; ++l)                                               \
            any |= found[l] != 0;                                                     \
        for (; k < len; ++k) {                                                        \
            U bits;                                                                   \
            memcpy(&bits, a + k, sizeof bits);                                        \
            any |= bits == sign;                                                      \
        }                                                                             \
        return any;                                                                   \
    }

FC_DEFINE_HAS_NEGATIVE_ZERO(f32, float, uint32_t)
FC_DEFINE_HAS_NEGATIVE_ZERO(f64, double, uint64_t)

/* Along one axis (input size, taps k, dilation, stride s, padding before),
 * residue r: the taps reaching positions s * a + r in ascending order
 * (their count in *count, the first in *first, `step` apart), the
 * phase's tap spacing on dy, its padding and its length; 0 if none. */
static int fc_phase_axis(int64_t size, int64_t k, int64_t dil, int64_t s, int64_t pad, int64_t r,
                         int64_t *first, int64_t *count, int64_t *step, int64_t *spacing,
                         int64_t *phase_pad, int64_t *length)
{
    int64_t last = -1;
    *first = -1;
    *count = 0;
    for (int64_t t = 0; t < k; ++t)
        if ((((r + pad - t * dil) % s) + s) % s == 0) {
            if (*first < 0)
                *first = t;
            else if (*count == 1)
                *step = t - *first;
            last = t;
            ++*count;
        }
    if (*count == 1)
        *step = 1;
    *length = r < size ? (size - r + s - 1) / s : 0;
    if (!*count || *length < 1)
        return 0;
    /* Consecutive taps are `step` apart, so their dy offsets step * dil / s
     * (a single tap's spacing is never used; 1 keeps it a valid dilation). */
    *spacing = *count > 1 ? *step * dil / s : 1;
    const int64_t nearest = (r + pad - last * dil) / s; /* exact */
    *phase_pad = -nearest;
    return 1;
}

#define FC_DEFINE_PHASES(dt, T)                                                              \
    int64_t fc_data_phases_plan_##dt(const fc_conv_geom *g, const T *w, T *wbuf,             \
                                     fc_data_phase *phases, int64_t max_phases)             \
    {                                                                                        \
        const int64_t sd = g->stride_d, sh = g->stride_h, sw = g->stride_w;                 \
        const int64_t rd_n = sd < g->d ? sd : g->d, rh_n = sh < g->h ? sh : g->h;           \
        const int64_t rw_n = sw < g->w ? sw : g->w;                                         \
        if (rd_n * rh_n * rw_n > max_phases)                                                 \
            return -1;                                                                       \
        const int64_t cin = g->c_in, cout = g->c_out;                                       \
        int64_t n_phases = 0, w_used = 0;                                                    \
        for (int64_t rd = 0; rd < rd_n; ++rd)                                                \
            for (int64_t rh = 0; rh < rh_n; ++rh)                                            \
                for (int64_t rw = 0; rw < rw_n; ++rw) {                                      \
                    int64_t f[3], c[3], st[3] = {1, 1, 1}, sp[3], pp[3], len[3];             \
                    const int ok =                                                           \
                        fc_phase_axis(g->d, g->kd, g->dil_d, sd, g->pad_front, rd, &f[0],   \
                                      &c[0], &st[0], &sp[0], &pp[0], &len[0]) &              \
                        fc_phase_axis(g->h, g->kh, g->dil_h, sh, g->pad_top, rh, &f[1],     \
                                      &c[1], &st[1], &sp[1], &pp[1], &len[1]) &              \
                        fc_phase_axis(g->w, g->kw, g->dil_w, sw, g->pad_left, rw, &f[2],    \
                                      &c[2], &st[2], &sp[2], &pp[2], &len[2]);               \
                    fc_data_phase *ph = &phases[n_phases++];                                 \
                    fc_conv_geom *q = &ph->g;                                                \
                    *q = (fc_conv_geom){0};                                                  \
                    /* The pixels of dx this phase owns, and where they lie. */             \
                    q->n = g->n;                                                             \
                    q->od = (g->d - rd + sd - 1) / sd;                                       \
                    q->oh = (g->h - rh + sh - 1) / sh;                                       \
                    q->ow = (g->w - rw + sw - 1) / sw;                                       \
                    q->c_out = cin;                                                          \
                    q->y_sw = sw * cin;                                                      \
                    q->y_sh = sh * g->w * cin;                                               \
                    q->y_sd = sd * g->h * g->w * cin;                                        \
                    q->y_sn = g->d * g->h * g->w * cin;                                      \
                    ph->y_offset = ((rd * g->h + rh) * g->w + rw) * cin;                     \
                    ph->empty = !ok;                                                         \
                    ph->w_offset = w_used;                                                   \
                    q->relu = 0;                                                             \
                    if (!ok)                                                                 \
                        continue;                                                            \
                    /* Its convolution of dy (the strided convolution's output). */        \
                    q->d = g->od, q->h = g->oh, q->w = g->ow, q->c_in = cout;                \
                    q->kd = c[0], q->kh = c[1], q->kw = c[2];                                \
                    q->stride_d = q->stride_h = q->stride_w = 1;                             \
                    q->dil_d = sp[0], q->dil_h = sp[1], q->dil_w = sp[2];                    \
                    q->pad_front = pp[0], q->pad_top = pp[1], q->pad_left = pp[2];           \
                    /* Its kernel: the taps flipped, (C_in, C_out) transposed. */          \
                    T *dst = wbuf + w_used;                                                  \
                    for (int64_t a = 0; a < c[0]; ++a)                                       \
                        for (int64_t b = 0; b < c[1]; ++b)                                   \
                            for (int64_t e = 0; e < c[2]; ++e) {                             \
                                const int64_t td = f[0] + (c[0] - 1 - a) * st[0];            \
                                const int64_t th = f[1] + (c[1] - 1 - b) * st[1];            \
                                const int64_t tw = f[2] + (c[2] - 1 - e) * st[2];            \
                                const T *src = w + ((td * g->kh + th) * g->kw + tw) * cin * cout; \
                                for (int64_t co = 0; co < cout; ++co)                        \
                                    for (int64_t ci = 0; ci < cin; ++ci)                     \
                                        *dst++ = src[ci * cout + co];                        \
                            }                                                                \
                    w_used += c[0] * c[1] * c[2] * cin * cout;                               \
                }                                                                            \
        return n_phases;                                                                     \
    }                                                                                        \
    void fc_conv2d_backward_data_phases_##dt(int isa, const fc_data_phase *phases,            \
                                             int64_t n_phases, int64_t n, const T *dy,       \
                                             const T *wbuf, const T *b, T *dx, int64_t part, \
                                             int64_t parts)                                  \
    {                                                                                        \
        for (int64_t p = 0; p < n_phases; ++p) {                                             \
            fc_conv_geom q = phases[p].g;                                                    \
            q.n = n;                                                                         \
            const int64_t rows = n * q.od * q.oh;                                            \
            const int64_t lo = rows * part / parts, hi = rows * (part + 1) / parts;          \
            T *y = dx + phases[p].y_offset;                                                  \
            if (!phases[p].empty) {                                                          \
                fc_conv2d_forward_##dt(isa, &q, dy, wbuf + phases[p].w_offset, b, y, lo, hi); \
                continue;                                                                    \
            }                                                                                \
            for (int64_t r = lo; r < hi; ++r) {                                              \
                const int64_t ni = r / (q.od * q.oh), od = r / q.oh % q.od, oh = r % q.oh;   \
                for (int64_t ow = 0; ow < q.ow; ++ow) {                                      \
                    T *yp = y + fc_y_offset(&q, ni, od, oh, ow);                             \
                    for (int64_t c = 0; c < q.c_out; ++c)                                    \
                        yp[c] = b ? b[c] : (T)0;                                             \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }

FC_DEFINE_PHASES(f32, float)
FC_DEFINE_PHASES(f64, double)

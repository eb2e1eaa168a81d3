/* conv2d_impl.h - direct convolution micro-kernels, one instantiation per
 * (dtype, instruction set). Included by conv2d.c through fc_dispatch.h, which
 * sets FC_T (element type), FC_FN(f) (this instantiation's name of f),
 * FC_TARGET (the instruction-set attribute) and FC_VEC_BYTES (its vector
 * width).
 *
 * Forward: output pixels that read the same clipped taps are gathered into
 * blocks of FC_PB pixels and computed FC_CB output channels at a time with
 * explicit vectors held in registers (conv_block); layers with fewer output
 * channels than a block, channel tails and all-padding pixels go through
 * the plain per-pixel loop (conv_pixel). The unit-stride data gradient runs
 * on this forward kernel (the Cython wrapper flips and transposes w); the
 * strided one gathers with the kernel transposed to (KH, KW, C_out, C_in).
 * The weight and bias gradients are in conv2d_weight_impl.h, included
 * below.
 *
 * Determinism: which path computes an output depends only on the layer's
 * sizes and the pixel's tap range, never on how rows are shared between
 * threads, and each path sums in a fixed order; so results are bitwise
 * identical for any thread count.
 */

/* acc[i] += a * v[i] for i in [0, len) */
FC_TARGET static inline void FC_FN(axpy)(int64_t len, FC_T a, const FC_T *FC_RESTRICT v,
                                         FC_T *FC_RESTRICT acc)
{
    for (int64_t i = 0; i < len; ++i)
        acc[i] += a * v[i];
}

/* The register-blocked forward kernel computes FC_PB output pixels times
 * FC_CB output channels (two vectors) at once: FC_PB * 2 accumulators stay in
 * registers while each kernel row is loaded once per input channel. */
#define FC_VL ((int64_t)(FC_VEC_BYTES / sizeof(FC_T)))
#define FC_CB (2 * FC_VL)
#define FC_PB (FC_VEC_BYTES == 64 ? 8 : FC_VEC_BYTES == 32 ? 6 : 4)
typedef FC_T FC_FN(vec) __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T))));

/* conv_pixel for a convolution with one output channel (the data gradient of
 * a single-channel input is one): each tap is then a dot product of two
 * contiguous rows, summed in vector lanes, then across the lanes. */
FC_TARGET static void FC_FN(conv_pixel_dot)(const fc_conv_geom *g, const FC_T *x,
                                            const FC_T *w, const FC_T *b, FC_T *y,
                                            const fc_out_pixel *px)
{
    typedef FC_FN(vec) vec;
    const int64_t cin = g->c_in;
    const int64_t id0 = px->od * g->stride_d - g->pad_front;
    const int64_t ih0 = px->oh * g->stride_h - g->pad_top, iw0 = px->ow * g->stride_w - g->pad_left;
    vec lanes = {0};
    FC_T rest = (FC_T)0;
    for (int64_t k = px->kd_lo; k < px->kd_hi; ++k)
        for (int64_t i = px->kh_lo; i < px->kh_hi; ++i)
            for (int64_t j = px->kw_lo; j < px->kw_hi; ++j) {
                const FC_T *xp = x + fc_in_pixel(g, px->n, id0 + k * g->dil_d,
                                                 ih0 + i * g->dil_h, iw0 + j * g->dil_w) * cin;
                const FC_T *wp = w + ((k * g->kh + i) * g->kw + j) * cin;
                int64_t ci = 0;
                for (; ci + FC_VL <= cin; ci += FC_VL)
                    lanes += *(const vec *)(xp + ci) * *(const vec *)(wp + ci);
                for (; ci < cin; ++ci)
                    rest += xp[ci] * wp[ci];
            }
    FC_T sum = b ? b[0] : (FC_T)0;
    for (int l = 0; l < FC_VL; ++l)
        sum += lanes[l];
    y[fc_y_offset(g, px->n, px->od, px->oh, px->ow)] = sum + rest;
}

/* Output pixel px, channels [co_lo, co_hi), over the taps inside the image:
 * the readable statement of the forward pass, used for layers with fewer
 * output channels than a block and for channels left over by the blocks. */
FC_TARGET static void FC_FN(conv_pixel)(const fc_conv_geom *g, const FC_T *x, const FC_T *w,
                                        const FC_T *b, FC_T *y, const fc_out_pixel *px,
                                        int64_t co_lo, int64_t co_hi)
{
    if (g->c_out == 1) {
        FC_FN(conv_pixel_dot)(g, x, w, b, y, px);
        return;
    }
    const int64_t cin = g->c_in, cout = g->c_out, len = co_hi - co_lo;
    FC_T *FC_RESTRICT acc = y + fc_y_offset(g, px->n, px->od, px->oh, px->ow) + co_lo;
    for (int64_t k = 0; k < len; ++k)
        acc[k] = b ? b[co_lo + k] : (FC_T)0;
    const int64_t id0 = px->od * g->stride_d - g->pad_front;
    const int64_t ih0 = px->oh * g->stride_h - g->pad_top, iw0 = px->ow * g->stride_w - g->pad_left;
    for (int64_t t = px->kd_lo; t < px->kd_hi; ++t)
    for (int64_t i = px->kh_lo; i < px->kh_hi; ++i)
        for (int64_t j = px->kw_lo; j < px->kw_hi; ++j) {
            const FC_T *xp = x + fc_in_pixel(g, px->n, id0 + t * g->dil_d, ih0 + i * g->dil_h,
                                             iw0 + j * g->dil_w) * cin;
            const FC_T *wp = w + ((t * g->kh + i) * g->kw + j) * cin * cout + co_lo;
            if (len >= FC_VL) {
                for (int64_t ci = 0; ci < cin; ++ci)
                    FC_FN(axpy)(len, xp[ci], wp + ci * cout, acc);
            } else {
                /* Too few channels to fill a vector: keep each sum in a
                 * register instead. Same terms, same order, same bits. */
                for (int64_t k = 0; k < len; ++k) {
                    FC_T sum = acc[k];
                    for (int64_t ci = 0; ci < cin; ++ci)
                        sum += xp[ci] * wp[ci * cout + k];
                    acc[k] = sum;
                }
            }
        }
}

/* Pixels gathered for the register-blocked kernel: up to FC_PB output pixels
 * that share one clipped tap range. */
typedef struct {
    const FC_T *xs[FC_PB]; /* input pixel under the first tap inside the image */
    FC_T *ys[FC_PB];       /* output pixel */
    fc_out_pixel px[FC_PB];
    int count;
    int keyed;          /* the block holds pixels of tap range `key` (once set) */
    fc_out_pixel key;
} FC_FN(pixel_block);

/* conv_pixel_dot for the FC_PB pixels of a block that read every tap (the
 * bulk of a one-channel data gradient): each kernel row is loaded once for
 * all of them. Each pixel sums the same terms in the same order as
 * conv_pixel_dot (its lanes over the taps, then across the lanes), so the
 * same bits. */
FC_TARGET static void FC_FN(conv_block_dot)(const fc_conv_geom *g,
                                            const FC_FN(pixel_block) *blk, const FC_T *w,
                                            const FC_T *b)
{
    typedef FC_FN(vec) vec;
    const int64_t cin = g->c_in;
    vec lanes[FC_PB];
    FC_T rest[FC_PB];
#pragma GCC unroll 16
    for (int p = 0; p < FC_PB; ++p) {
        lanes[p] = (vec){0};
        rest[p] = (FC_T)0;
    }
    for (int64_t t = 0; t < g->kd; ++t)
    for (int64_t i = 0; i < g->kh; ++i)
        for (int64_t j = 0; j < g->kw; ++j) {
            const int64_t off = ((t * g->dil_d * g->h + i * g->dil_h) * g->w + j * g->dil_w) * cin;
            const FC_T *wp = w + ((t * g->kh + i) * g->kw + j) * cin;
            int64_t ci = 0;
            for (; ci + FC_VL <= cin; ci += FC_VL) {
                const vec wv = *(const vec *)(wp + ci);
#pragma GCC unroll 16
                for (int p = 0; p < FC_PB; ++p)
                    lanes[p] += *(const vec *)(blk->xs[p] + off + ci) * wv;
            }
            for (; ci < cin; ++ci)
                for (int p = 0; p < FC_PB; ++p)
                    rest[p] += blk->xs[p][off + ci] * wp[ci];
        }
    for (int p = 0; p < blk->count; ++p) {
        FC_T sum = b ? b[0] : (FC_T)0;
        for (int l = 0; l < FC_VL; ++l)
            sum += lanes[p][l];
        const FC_T v = sum + rest[p];
        blk->ys[p][0] = g->relu && v < (FC_T)0 ? (FC_T)0 : v; /* as relu_inplace */
    }
}

/* max(v, 0) lane by lane, with NaN and -0 passing through unchanged, exactly
 * as relu_inplace below: lanes holding a negative number are cleared. */
FC_TARGET static inline FC_FN(vec) FC_FN(relu_vec)(FC_FN(vec) v)
{
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    const FC_FN(vec) zero = {0};
    const mask negative = v < zero;
    return (FC_FN(vec))((mask)v & ~negative);
}

/* Store the block's accumulators (only the first `count` pixels are real),
 * with the ReLU epilogue applied in registers when the layer asks for it. */
FC_TARGET static inline void FC_FN(store_block)(const FC_FN(pixel_block) *blk,
                                                FC_FN(vec) acc[FC_PB][2], int relu, int64_t co0)
{
#pragma GCC unroll 16
    for (int p = 0; p < FC_PB; ++p)
        if (p < blk->count) {
            FC_FN(vec) a0 = acc[p][0], a1 = acc[p][1];
            if (relu) {
                a0 = FC_FN(relu_vec)(a0);
                a1 = FC_FN(relu_vec)(a1);
            }
            *(FC_FN(vec) *)(blk->ys[p] + co0) = a0;
            *(FC_FN(vec) *)(blk->ys[p] + co0 + FC_VL) = a1;
        }
}

/* The first np pixels of a block, channels [co0, co0 + FC_CB); only the
 * first `count` pixels are stored (the others repeat a real pixel to keep
 * the block full). np is a constant in each caller (conv_block below), so
 * the pixel loops unroll. */
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(conv_block_np)(
    const fc_conv_geom *g, const FC_FN(pixel_block) *blk, const FC_T *w, const FC_T *b,
    int64_t co0, const int np)
{
    typedef FC_FN(vec) vec;
    const int64_t cin = g->c_in, cout = g->c_out;
    const fc_out_pixel *taps = &blk->px[0];
    vec b0 = {0}, b1 = {0};
    if (b) {
        b0 = *(const vec *)(b + co0);
        b1 = *(const vec *)(b + co0 + FC_VL);
    }
    vec acc[FC_PB][2];
#pragma GCC unroll 16
    for (int p = 0; p < np; ++p) {
        acc[p][0] = b0;
        acc[p][1] = b1;
    }
    for (int64_t t = taps->kd_lo; t < taps->kd_hi; ++t)
    for (int64_t i = taps->kh_lo; i < taps->kh_hi; ++i)
        for (int64_t j = taps->kw_lo; j < taps->kw_hi; ++j) {
            const int64_t off = (((t - taps->kd_lo) * g->dil_d * g->h + (i - taps->kh_lo) * g->dil_h) *
                                     g->w + (j - taps->kw_lo) * g->dil_w) * cin;
            const FC_T *wp = w + ((t * g->kh + i) * g->kw + j) * cin * cout + co0;
            for (int64_t ci = 0; ci < cin; ++ci) {
                const vec w0 = *(const vec *)(wp + ci * cout);
                const vec w1 = *(const vec *)(wp + ci * cout + FC_VL);
#pragma GCC unroll 16
                for (int p = 0; p < np; ++p) {
                    const FC_T xv = blk->xs[p][off + ci];
                    acc[p][0] += xv * w0;
                    acc[p][1] += xv * w1;
                }
            }
        }
    FC_FN(store_block)(blk, acc, g->relu, co0);
}

/* conv_block_np for pixels that read every tap, when the taps x input
 * channels are few (the first layer: KH * KW * C_in <= FC_FLAT_TAPS). The
 * (i, j, ci) loops then run too few times each to pay for themselves; here
 * they are one loop over t = (i * KW + j) * C_in + ci, whose weight row is
 * simply w[t * C_out] and whose input offset x_off[t] the caller computed
 * once. Same terms in the same order as conv_block_np, so the same bits. */
#define FC_FLAT_TAPS 32
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(conv_block_flat_np)(
    const fc_conv_geom *g, const FC_FN(pixel_block) *blk, const FC_T *w, const FC_T *b,
    int64_t co0, const int64_t *x_off, int64_t taps, const int np)
{
    typedef FC_FN(vec) vec;
    const int64_t cout = g->c_out;
    vec b0 = {0}, b1 = {0};
    if (b) {
        b0 = *(const vec *)(b + co0);
        b1 = *(const vec *)(b + co0 + FC_VL);
    }
    vec acc[FC_PB][2];
    const FC_T *xs[FC_PB];
#pragma GCC unroll 16
    for (int p = 0; p < np; ++p) {
        acc[p][0] = b0;
        acc[p][1] = b1;
        xs[p] = blk->xs[p];
    }
    const FC_T *wp = w + co0;
    for (int64_t t = 0; t < taps; ++t, wp += cout) {
        const vec w0 = *(const vec *)wp;
        const vec w1 = *(const vec *)(wp + FC_VL);
        const int64_t off = x_off[t];
#pragma GCC unroll 16
        for (int p = 0; p < np; ++p) {
            const FC_T xv = xs[p][off];
            acc[p][0] += xv * w0;
            acc[p][1] += xv * w1;
        }
    }
    FC_FN(store_block)(blk, acc, g->relu, co0);
}

/* How many of a block's pixels to compute: all FC_PB when it is more than
 * half full, else the fewest of 4, 2, 1 that hold its `count` (a layer's
 * last, partial block; with one image of a small map, a large share of
 * the work). Each pixel's sum is the same whatever the number computed
 * with it, so the same bits. */
#define FC_BLOCK_PIXELS(count, CALL)                                                       \
    do {                                                                                   \
        if ((count) > 4)                                                                   \
            CALL(FC_PB);                                                                   \
        else if ((count) > 2)                                                              \
            CALL(4);                                                                       \
        else if ((count) == 2)                                                             \
            CALL(2);                                                                       \
        else                                                                               \
            CALL(1);                                                                       \
    } while (0)

/* The pixels of a block, channels [co0, co0 + FC_CB). */
FC_TARGET static void FC_FN(conv_block)(const fc_conv_geom *g, const FC_FN(pixel_block) *blk,
                                        const FC_T *w, const FC_T *b, int64_t co0)
{
#define FC_CALL(np) FC_FN(conv_block_np)(g, blk, w, b, co0, np)
    FC_BLOCK_PIXELS(blk->count, FC_CALL);
#undef FC_CALL
}

/* The pixels of a block that read every tap, by the flat tap table. */
FC_TARGET static void FC_FN(conv_block_flat)(const fc_conv_geom *g,
                                             const FC_FN(pixel_block) *blk, const FC_T *w,
                                             const FC_T *b, int64_t co0, const int64_t *x_off,
                                             int64_t taps)
{
#define FC_CALL(np) FC_FN(conv_block_flat_np)(g, blk, w, b, co0, x_off, taps, np)
    FC_BLOCK_PIXELS(blk->count, FC_CALL);
#undef FC_CALL
}

/* np consecutive output pixels that read every tap, channels [co0, co0 +
 * FC_CB), for a layer with conv_block_flat's few taps: pixel p reads
 * x0 + p * x_step and writes y0 + p * y_step (addresses stepped from the
 * first instead of gathered: the first layer's blocks are so short that
 * gathering them cost as much as their arithmetic). Same terms in the same
 * order as conv_block_flat_np, so the same bits. */
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(conv_run_flat_np)(
    const fc_conv_geom *g, const FC_T *x0, int64_t x_step, FC_T *y0, int64_t y_step,
    const FC_T *w, const FC_T *b, const int64_t *x_off, int64_t taps, int64_t co0, const int np)
{
    typedef FC_FN(vec) vec;
    const int64_t cout = g->c_out;
    vec b0 = {0}, b1 = {0};
    if (b) {
        b0 = *(const vec *)(b + co0);
        b1 = *(const vec *)(b + co0 + FC_VL);
    }
    vec acc[FC_PB][2];
#pragma GCC unroll 16
    for (int p = 0; p < np; ++p) {
        acc[p][0] = b0;
        acc[p][1] = b1;
    }
    const FC_T *wp = w + co0;
    for (int64_t t = 0; t < taps; ++t, wp += cout) {
        const vec w0 = *(const vec *)wp;
        const vec w1 = *(const vec *)(wp + FC_VL);
        const FC_T *xt = x0 + x_off[t];
#pragma GCC unroll 16
        for (int p = 0; p < np; ++p) {
            const FC_T xv = xt[p * x_step];
            acc[p][0] += xv * w0;
            acc[p][1] += xv * w1;
        }
    }
#pragma GCC unroll 16
    for (int p = 0; p < np; ++p) {
        vec a0 = acc[p][0], a1 = acc[p][1];
        if (g->relu) {
            a0 = FC_FN(relu_vec)(a0);
            a1 = FC_FN(relu_vec)(a1);
        }
        *(vec *)(y0 + p * y_step + co0) = a0;
        *(vec *)(y0 + p * y_step + co0 + FC_VL) = a1;
    }
}

/* A row's run of `count` consecutive output pixels that read every tap, for
 * a layer with conv_block_flat's few taps and whole channel blocks: blocks
 * of FC_PB pixels, then the rest by 4, 2 and 1 (each pixel's sum is the same
 * whatever the number computed with it). */
FC_TARGET static void FC_FN(conv_run_flat)(const fc_conv_geom *g, const FC_T *x0,
                                           int64_t x_step, FC_T *y0, int64_t y_step,
                                           const FC_T *w, const FC_T *b, const int64_t *x_off,
                                           int64_t taps, int64_t count)
{
#define FC_RUN(np)                                                                         \
    for (; count >= (np); count -= (np), x0 += (np) * x_step, y0 += (np) * y_step)         \
        for (int64_t co0 = 0; co0 < g->c_out; co0 += FC_CB)                                \
            FC_FN(conv_run_flat_np)(g, x0, x_step, y0, y_step, w, b, x_off, taps, co0, np)
    FC_RUN(FC_PB);
    FC_RUN(4);
    FC_RUN(2);
    FC_RUN(1);
#undef FC_RUN
}

/* y[k] = max(y[k], 0) for k in [0, len), letting NaN through as the
 * reference's np.maximum does. */
FC_TARGET static inline void FC_FN(relu_inplace)(FC_T *FC_RESTRICT y, int64_t len)
{
    for (int64_t k = 0; k < len; ++k)
        y[k] = y[k] < (FC_T)0 ? (FC_T)0 : y[k];
}

/* Every output channel of the pixels gathered in blk, with the ReLU epilogue
 * if asked for (in registers for the blocked channels; the channel tail is
 * rectified while its pixels are still in cache); empties it. x_off, when
 * not NULL, is conv_block_flat's table, used when the pixels read every tap. */
FC_TARGET static void FC_FN(conv_flush)(const fc_conv_geom *g, const FC_T *x, const FC_T *w,
                                        const FC_T *b, FC_T *y, FC_FN(pixel_block) *blk,
                                        const int64_t *x_off)
{
    if (!blk->count)
        return;
    for (int p = blk->count; p < FC_PB; ++p) {
        blk->xs[p] = blk->xs[blk->count - 1];
        blk->ys[p] = blk->ys[blk->count - 1];
    }
    const fc_out_pixel *taps = &blk->px[0];
    const int flat = x_off && taps->kh_lo == 0 && taps->kh_hi == g->kh && taps->kw_lo == 0 &&
                     taps->kw_hi == g->kw && taps->kd_lo == 0 && taps->kd_hi == g->kd;
    int64_t co0 = 0;
    for (; co0 + FC_CB <= g->c_out; co0 += FC_CB)
        if (flat)
            FC_FN(conv_block_flat)(g, blk, w, b, co0, x_off, g->kd * g->kh * g->kw * g->c_in);
        else
            FC_FN(conv_block)(g, blk, w, b, co0);
    if (co0 < g->c_out)
        for (int p = 0; p < blk->count; ++p) {
            FC_FN(conv_pixel)(g, x, w, b, y, &blk->px[p], co0, g->c_out);
            if (g->relu)
                FC_FN(relu_inplace)(blk->ys[p] + co0, g->c_out - co0);
        }
    blk->count = 0;
}

/* Open blocks kept while gathering: border pixels of padded convolutions
 * fall into several tap-range classes (K^2 for "same", up to (2K - 1)^2 for
 * the data gradient of a "valid" convolution), and giving each class its own
 * block lets blocks fill across images. More classes than slots only costs
 * speed (the fullest block is flushed early). */
#define FC_SLOTS 32

/* Add pixel px to the open block of its tap range, opening one (and flushing
 * the fullest if all are taken) when there is none; a block is flushed as
 * soon as it is full. */
FC_TARGET static void FC_FN(conv_gather)(const fc_conv_geom *g, const FC_T *x, const FC_T *w,
                                         const FC_T *b, FC_T *y, FC_FN(pixel_block) *slots,
                                         int *last, const fc_out_pixel *px,
                                         const int64_t *flat_off)
{
    int k = *last;
    if (!(slots[k].keyed && fc_same_taps(&slots[k].key, px))) {
        int empty = -1, fullest = 0;
        for (k = 0; k < FC_SLOTS && !(slots[k].keyed && fc_same_taps(&slots[k].key, px)); ++k) {
            if (empty < 0 && !slots[k].count)
                empty = k;
            if (slots[k].count > slots[fullest].count)
                fullest = k;
        }
        if (k == FC_SLOTS) {
            k = empty >= 0 ? empty : fullest;
            FC_FN(conv_flush)(g, x, w, b, y, &slots[k], flat_off);
            slots[k].keyed = 1;
            slots[k].key = *px;
        }
        *last = k;
    }
    FC_FN(pixel_block) *blk = &slots[k];
    const int c = blk->count++;
    const int64_t id = px->od * g->stride_d - g->pad_front + px->kd_lo * g->dil_d;
    const int64_t ih = px->oh * g->stride_h - g->pad_top + px->kh_lo * g->dil_h;
    const int64_t iw = px->ow * g->stride_w - g->pad_left + px->kw_lo * g->dil_w;
    blk->xs[c] = x + fc_in_pixel(g, px->n, id, ih, iw) * g->c_in;
    blk->ys[c] = y + fc_y_offset(g, px->n, px->od, px->oh, px->ow);
    blk->px[c] = *px;
    if (blk->count == FC_PB)
        FC_FN(conv_flush)(g, x, w, b, y, blk, flat_off);
}

/* Forward rows [row_begin, row_end) of the flattened (N * OH) output rows.
 * x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or NULL,
 * y (N, OH, OW, C_out).
 * In rows whose taps all lie inside the image, runs of FC_PB consecutive
 * columns that read every kernel column form blocks directly (the bulk of
 * the work, with no per-pixel bookkeeping). The remaining pixels are
 * gathered into blocks of equal clipped tap range for conv_block; pixels
 * whose taps all fall in the padding, and layers with fewer output channels
 * than a block, go through conv_pixel. */
FC_TARGET static void FC_FN(conv2d_forward)(const fc_conv_geom *g, const FC_T *x,
                                            const FC_T *w, const FC_T *b, FC_T *y,
                                            int64_t row_begin, int64_t row_end)
{
    FC_FN(pixel_block) slots[FC_SLOTS], run;
    int last = 0;
    for (int k = 0; k < FC_SLOTS; ++k)
        slots[k].count = slots[k].keyed = 0;
    /* Columns [ow_a, ow_b) read every kernel column inside the image. */
    int64_t ow_a = 0, ow_b = 0;
    for (int64_t ow = 0; ow < g->ow; ++ow) {
        const int64_t iw0 = ow * g->stride_w - g->pad_left;
        if (iw0 >= 0 && iw0 + (g->kw - 1) * g->dil_w < g->w) {
            if (ow_a == ow_b)
                ow_a = ow;
            ow_b = ow + 1;
        }
    }
    const int64_t run_end = ow_a + (ow_b - ow_a) / FC_PB * FC_PB;
    /* Input offsets of the taps for conv_block_flat, when they are few. */
    int64_t flat_table[FC_FLAT_TAPS];
    const int64_t *flat_off = NULL;
    if (g->kd * g->kh * g->kw * g->c_in <= FC_FLAT_TAPS) {
        int64_t t = 0;
        for (int64_t k = 0; k < g->kd; ++k)
            for (int64_t i = 0; i < g->kh; ++i)
                for (int64_t j = 0; j < g->kw; ++j)
                    for (int64_t ci = 0; ci < g->c_in; ++ci)
                        flat_table[t++] =
                            ((k * g->dil_d * g->h + i * g->dil_h) * g->w + j * g->dil_w) *
                                g->c_in + ci;
        flat_off = flat_table;
    }
    fc_out_pixel px;
    for (int64_t r = row_begin; r < row_end; ++r) {
        px.n = r / (g->od * g->oh);
        px.od = r / g->oh % g->od;
        px.oh = r % g->oh;
        const int64_t id0 = px.od * g->stride_d - g->pad_front;
        const int64_t ih0 = px.oh * g->stride_h - g->pad_top;
        fc_tap_range(id0, g->dil_d, g->kd, g->d, &px.kd_lo, &px.kd_hi);
        fc_tap_range(ih0, g->dil_h, g->kh, g->h, &px.kh_lo, &px.kh_hi);
        const int full_rows = px.kd_lo == 0 && px.kd_hi == g->kd && px.kh_lo == 0 &&
                              px.kh_hi == g->kh && (g->c_out >= FC_CB || g->c_out == 1);
        const int flat_run = full_rows && flat_off && g->c_out % FC_CB == 0;
        if (full_rows && !flat_run)
            for (int p = 0; p < FC_PB; ++p) {
                run.px[p] = px;
                run.px[p].kw_lo = 0;
                run.px[p].kw_hi = g->kw;
            }
        for (px.ow = 0; px.ow < g->ow; ++px.ow) {
            if (flat_run && px.ow == ow_a && ow_a < ow_b) {
                const int64_t iw0 = ow_a * g->stride_w - g->pad_left;
                FC_FN(conv_run_flat)(g, x + fc_in_pixel(g, px.n, id0, ih0, iw0) * g->c_in,
                                     g->stride_w * g->c_in,
                                     y + fc_y_offset(g, px.n, px.od, px.oh, ow_a), g->y_sw,
                                     w, b, flat_off, g->kd * g->kh * g->kw * g->c_in,
                                     ow_b - ow_a);
                px.ow = ow_b;
                if (px.ow >= g->ow)
                    break;
            } else if (full_rows && px.ow == ow_a && ow_a < run_end) {
                for (; px.ow < run_end; px.ow += FC_PB) {
                    run.count = FC_PB;
                    for (int p = 0; p < FC_PB; ++p) {
                        const int64_t iw0 = (px.ow + p) * g->stride_w - g->pad_left;
                        run.xs[p] = x + fc_in_pixel(g, px.n, id0, ih0, iw0) * g->c_in;
                        run.ys[p] = y + fc_y_offset(g, px.n, px.od, px.oh, px.ow + p);
                        run.px[p].ow = px.ow + p;
                    }
                    if (g->c_out == 1)
                        FC_FN(conv_block_dot)(g, &run, w, b);
                    else
                        FC_FN(conv_flush)(g, x, w, b, y, &run, flat_off);
                }
                if (px.ow >= g->ow)
                    break;
            }
            fc_tap_range(px.ow * g->stride_w - g->pad_left, g->dil_w, g->kw, g->w, &px.kw_lo,
                         &px.kw_hi);
            if (g->c_out < FC_CB || px.kd_lo == px.kd_hi || px.kh_lo == px.kh_hi ||
                px.kw_lo == px.kw_hi) {
                FC_FN(conv_pixel)(g, x, w, b, y, &px, 0, g->c_out);
                if (g->relu)
                    FC_FN(relu_inplace)(y + fc_y_offset(g, px.n, px.od, px.oh, px.ow), g->c_out);
            } else
                FC_FN(conv_gather)(g, x, w, b, y, slots, &last, &px, flat_off);
        }
    }
    for (int k = 0; k < FC_SLOTS; ++k)
        FC_FN(conv_flush)(g, x, w, b, y, &slots[k], flat_off);
}

/* Input gradient for rows [row_begin, row_end) of the flattened (N * D * H)
 * input rows: dx[n, id, ih, iw, :] = sum over the taps (k, i, j) and output
 * pixels (od, oh, ow) that read (id, ih, iw) of wt[k, i, j] @ dy[n, od, oh, ow].
 * dy (N, OD, OH, OW, C_out), wt (KD, KH, KW, C_out, C_in), dx (N, D, H, W, C_in). */
FC_TARGET static void FC_FN(conv2d_backward_data)(const fc_conv_geom *g, const FC_T *dy,
                                                  const FC_T *wt, FC_T *dx,
                                                  int64_t row_begin, int64_t row_end)
{
    const int64_t cin = g->c_in, cout = g->c_out;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / (g->d * g->h), id = r / g->h % g->d, ih = r % g->h;
        for (int64_t iw = 0; iw < g->w; ++iw) {
            FC_T *FC_RESTRICT acc = dx + (r * g->w + iw) * cin;
            for (int64_t ci = 0; ci < cin; ++ci)
                acc[ci] = (FC_T)0;
            for (int64_t k = 0; k < g->kd; ++k) {
                /* od * stride_d = id + pad_front - k * dil_d must hold exactly. */
                const int64_t td = id + g->pad_front - k * g->dil_d;
                if (td < 0 || td % g->stride_d != 0 || td / g->stride_d >= g->od)
                    continue;
                const int64_t od = td / g->stride_d;
                for (int64_t i = 0; i < g->kh; ++i) {
                    const int64_t th = ih + g->pad_top - i * g->dil_h;
                    if (th < 0 || th % g->stride_h != 0 || th / g->stride_h >= g->oh)
                        continue;
                    const int64_t oh = th / g->stride_h;
                    for (int64_t j = 0; j < g->kw; ++j) {
                        const int64_t tw = iw + g->pad_left - j * g->dil_w;
                        if (tw < 0 || tw % g->stride_w != 0 || tw / g->stride_w >= g->ow)
                            continue;
                        const int64_t ow = tw / g->stride_w;
                        const FC_T *dyp = dy + fc_out_pixel_index(g, n, od, oh, ow) * cout;
                        const FC_T *wtp = wt + ((k * g->kh + i) * g->kw + j) * cout * cin;
                        for (int64_t co = 0; co < cout; ++co)
                            FC_FN(axpy)(cin, dyp[co], wtp + co * cin, acc);
                    }
                }
            }
        }
    }
}

/* The weight and bias gradients. */
#include "conv2d_weight_impl.h"

/* ReLU gradient of elements [begin, end): dx = dy where the output y > 0,
 * else 0. dy, y, dx of equal size (dx may be dy). */
FC_TARGET static void FC_FN(relu_backward)(const FC_T *dy, const FC_T *y, FC_T *dx,
                                           int64_t begin, int64_t end)
{
    for (int64_t k = begin; k < end; ++k)
        dx[k] = y[k] > (FC_T)0 ? dy[k] : (FC_T)0;
}

#undef FC_VL
#undef FC_CB
#undef FC_PB
#undef FC_CIB
#undef FC_SLOTS
#undef FC_BLOCK_PIXELS
#undef FC_FLAT_TAPS
#undef FC_TAPS
#undef FC_DB_VECS
#undef FC_DW_TILE_BYTES

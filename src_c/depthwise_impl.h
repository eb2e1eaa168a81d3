/* depthwise_impl.h - depthwise convolution micro-kernels, one instantiation
 * per (dtype, instruction set); see fc_dispatch.h for the macros.
 *
 * Output channel co = c * m + j (m = c_out / c_in, the depth multiplier)
 * reads input channel c only, so there is no reduction over channels: every
 * output is a sum over the kernel taps of one input channel, and the work
 * is memory-bound. The loops run over the contiguous channel axis. With
 * m = 1 (the usual case) the forward pass keeps FC_DWV vectors of channels
 * in registers across the taps; other multipliers and channel tails go
 * through the plain loops, which state the algorithm.
 *
 * Determinism: each output element (and each element of dx) is summed by
 * one call in the fixed order bias, then taps (k, i, j); the weight and bias
 * gradients sum images, then pixels, in order. Which loop computes an
 * element depends only on its channel, never on how rows are shared out.
 */

#define FC_DVL ((int64_t)(FC_VEC_BYTES / sizeof(FC_T)))
#define FC_DWV 4
typedef FC_T FC_FN(dvec) __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T))));

/* Taps of output pixel (od, oh, ow) that read inside the image. */
typedef struct {
    int64_t id0, ih0, iw0;
    int64_t kd_lo, kd_hi, kh_lo, kh_hi, kw_lo, kw_hi;
} FC_FN(dw_taps);

FC_TARGET static inline FC_FN(dw_taps) FC_FN(depthwise_taps)(const fc_conv_geom *g, int64_t od,
                                                             int64_t oh, int64_t ow)
{
    FC_FN(dw_taps) t;
    t.id0 = od * g->stride_d - g->pad_front;
    t.ih0 = oh * g->stride_h - g->pad_top;
    t.iw0 = ow * g->stride_w - g->pad_left;
    fc_tap_range(t.id0, g->dil_d, g->kd, g->d, &t.kd_lo, &t.kd_hi);
    fc_tap_range(t.ih0, g->dil_h, g->kh, g->h, &t.kh_lo, &t.kh_hi);
    fc_tap_range(t.iw0, g->dil_w, g->kw, g->w, &t.kw_lo, &t.kw_hi);
    return t;
}

/* One output pixel, channels [co_lo, c_out), the plain loop:
 * y[co] = b[co] + sum over the taps of x[tap, co / m] * w[tap, co]. */
FC_TARGET static void FC_FN(depthwise_pixel_tail)(const fc_conv_geom *g, const FC_T *x,
                                                  const FC_T *w, const FC_T *b, FC_T *yp,
                                                  int64_t n, const FC_FN(dw_taps) *t,
                                                  int64_t co_lo)
{
    const int64_t cin = g->c_in, cout = g->c_out, m = cout / cin;
    for (int64_t co = co_lo; co < cout; ++co) {
        FC_T sum = b ? b[co] : (FC_T)0;
        for (int64_t k = t->kd_lo; k < t->kd_hi; ++k)
            for (int64_t i = t->kh_lo; i < t->kh_hi; ++i)
                for (int64_t j = t->kw_lo; j < t->kw_hi; ++j) {
                    const FC_T *xp = x + fc_in_pixel(g, n, t->id0 + k * g->dil_d,
                                                     t->ih0 + i * g->dil_h,
                                                     t->iw0 + j * g->dil_w) * cin;
                    sum += xp[co / m] * w[((k * g->kh + i) * g->kw + j) * cout + co];
                }
        yp[co] = g->relu && sum < (FC_T)0 ? (FC_T)0 : sum;
    }
}

/* y rows [row_begin, row_end) of the (N * OD * OH) output rows.
 * x (N, D, H, W, C), w (KD * KH * KW, C * m), b (C * m) or NULL,
 * y (N, OD, OH, OW, C * m). */
FC_TARGET static void FC_FN(depthwise_forward)(const fc_conv_geom *g, const FC_T *x,
                                               const FC_T *w, const FC_T *b, FC_T *y,
                                               int64_t row_begin, int64_t row_end)
{
    typedef FC_FN(dvec) vec;
    const int64_t cin = g->c_in, cout = g->c_out;
    const int64_t blocked = cout == cin ? cout - cout % (FC_DWV * FC_DVL) : 0;
    const vec zero = {0};
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / (g->od * g->oh), od = r / g->oh % g->od, oh = r % g->oh;
        for (int64_t ow = 0; ow < g->ow; ++ow) {
            const FC_FN(dw_taps) t = FC_FN(depthwise_taps)(g, od, oh, ow);
            FC_T *yp = y + (r * g->ow + ow) * cout;
            for (int64_t c0 = 0; c0 < blocked; c0 += FC_DWV * FC_DVL) {
                vec acc[FC_DWV];
#pragma GCC unroll 4
                for (int v = 0; v < FC_DWV; ++v)
                    acc[v] = b ? *(const vec *)(b + c0 + v * FC_DVL) : zero;
                for (int64_t k = t.kd_lo; k < t.kd_hi; ++k)
                    for (int64_t i = t.kh_lo; i < t.kh_hi; ++i)
                        for (int64_t j = t.kw_lo; j < t.kw_hi; ++j) {
                            const FC_T *xp = x + fc_in_pixel(g, n, t.id0 + k * g->dil_d,
                                                             t.ih0 + i * g->dil_h,
                                                             t.iw0 + j * g->dil_w) * cin + c0;
                            const FC_T *wp = w + ((k * g->kh + i) * g->kw + j) * cout + c0;
#pragma GCC unroll 4
                            for (int v = 0; v < FC_DWV; ++v)
                                acc[v] += *(const vec *)(xp + v * FC_DVL) *
                                          *(const vec *)(wp + v * FC_DVL);
                        }
#pragma GCC unroll 4
                for (int v = 0; v < FC_DWV; ++v) {
                    if (g->relu) { /* max(v, 0) as the plain loop: negatives cleared */
                        typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
                        const mask negative = acc[v] < zero;
                        acc[v] = (vec)((mask)acc[v] & ~negative);
                    }
                    *(vec *)(yp + c0 + v * FC_DVL) = acc[v];
                }
            }
            FC_FN(depthwise_pixel_tail)(g, x, w, b, yp, n, &t, blocked);
        }
    }
}

/* dx rows [row_begin, row_end) of the (N * D * H) input rows:
 * dx[q, c] = sum over the taps t and output pixels p reading q through t of
 * sum over j < m of dy[p, c * m + j] * w[t, c * m + j].
 * dy (N, OD, OH, OW, C * m), w (KD * KH * KW, C * m), dx (N, D, H, W, C). */
FC_TARGET static void FC_FN(depthwise_backward_data)(const fc_conv_geom *g, const FC_T *dy,
                                                     const FC_T *w, FC_T *dx,
                                                     int64_t row_begin, int64_t row_end)
{
    const int64_t cin = g->c_in, cout = g->c_out, m = cout / cin;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / (g->d * g->h), id = r / g->h % g->d, ih = r % g->h;
        for (int64_t iw = 0; iw < g->w; ++iw) {
            FC_T *FC_RESTRICT acc = dx + (r * g->w + iw) * cin;
            for (int64_t c = 0; c < cin; ++c)
                acc[c] = (FC_T)0;
            for (int64_t k = 0; k < g->kd; ++k) {
                /* od * stride_d = id + pad_front - k * dil_d must hold exactly. */
                const int64_t td = id + g->pad_front - k * g->dil_d;
                if (td < 0 || td % g->stride_d != 0 || td / g->stride_d >= g->od)
                    continue;
                for (int64_t i = 0; i < g->kh; ++i) {
                    const int64_t th = ih + g->pad_top - i * g->dil_h;
                    if (th < 0 || th % g->stride_h != 0 || th / g->stride_h >= g->oh)
                        continue;
                    for (int64_t j = 0; j < g->kw; ++j) {
                        const int64_t tw = iw + g->pad_left - j * g->dil_w;
                        if (tw < 0 || tw % g->stride_w != 0 || tw / g->stride_w >= g->ow)
                            continue;
                        const FC_T *FC_RESTRICT dyp =
                            dy + fc_out_pixel_index(g, n, td / g->stride_d, th / g->stride_h,
                                                    tw / g->stride_w) * cout;
                        const FC_T *FC_RESTRICT wp = w + ((k * g->kh + i) * g->kw + j) * cout;
                        if (m == 1) {
                            for (int64_t c = 0; c < cin; ++c)
                                acc[c] += dyp[c] * wp[c];
                        } else {
                            for (int64_t c = 0; c < cin; ++c) {
                                FC_T sum = acc[c];
                                for (int64_t q = 0; q < m; ++q)
                                    sum += dyp[c * m + q] * wp[c * m + q];
                                acc[c] = sum;
                            }
                        }
                    }
                }
            }
        }
    }
}

/* dw (KD * KH * KW, C * m) and db (C * m), either may be NULL, summed over
 * the images [n_begin, n_end) (written, not added): images in order, then
 * output pixels in order, then taps. x (N, D, H, W, C),
 * dy (N, OD, OH, OW, C * m). */
FC_TARGET static void FC_FN(depthwise_backward_weight)(const fc_conv_geom *g, const FC_T *x,
                                                       const FC_T *dy, FC_T *dw, FC_T *db,
                                                       int64_t n_begin, int64_t n_end)
{
    const int64_t cin = g->c_in, cout = g->c_out, m = cout / cin;
    if (dw)
        for (int64_t e = 0; e < g->kd * g->kh * g->kw * cout; ++e)
            dw[e] = (FC_T)0;
    if (db)
        for (int64_t co = 0; co < cout; ++co)
            db[co] = (FC_T)0;
    for (int64_t n = n_begin; n < n_end; ++n)
        for (int64_t od = 0; od < g->od; ++od)
            for (int64_t oh = 0; oh < g->oh; ++oh)
                for (int64_t ow = 0; ow < g->ow; ++ow) {
                    const FC_T *FC_RESTRICT dyp =
                        dy + fc_out_pixel_index(g, n, od, oh, ow) * cout;
                    if (db)
                        for (int64_t co = 0; co < cout; ++co)
                            db[co] += dyp[co];
                    if (!dw)
                        continue;
                    const FC_FN(dw_taps) t = FC_FN(depthwise_taps)(g, od, oh, ow);
                    for (int64_t k = t.kd_lo; k < t.kd_hi; ++k)
                        for (int64_t i = t.kh_lo; i < t.kh_hi; ++i)
                            for (int64_t j = t.kw_lo; j < t.kw_hi; ++j) {
                                const FC_T *FC_RESTRICT xp =
                                    x + fc_in_pixel(g, n, t.id0 + k * g->dil_d,
                                                    t.ih0 + i * g->dil_h,
                                                    t.iw0 + j * g->dil_w) * cin;
                                FC_T *FC_RESTRICT dwp = dw + ((k * g->kh + i) * g->kw + j) * cout;
                                if (m == 1)
                                    for (int64_t c = 0; c < cin; ++c)
                                        dwp[c] += xp[c] * dyp[c];
                                else
                                    for (int64_t co = 0; co < cout; ++co)
                                        dwp[co] += xp[co / m] * dyp[co];
                            }
                }
}

#undef FC_DVL
#undef FC_DWV

/* pool2d_impl.h - max and average pooling micro-kernels, one instantiation
 * per (dtype, instruction set); see fc_dispatch.h for the macros.
 *
 * The innermost loops run over the contiguous channel axis. Max pooling keeps
 * the first maximum in row-major window order (a later element must be
 * strictly greater to win) and lets NaN win over numbers, so a window holding
 * NaN yields NaN with the index of its first NaN, as numpy.argmax does.
 */

/* Window (oh, ow) clipped to the image: rows [*ih_lo, *ih_hi), columns
 * [*iw_lo, *iw_hi). */
FC_TARGET static inline void FC_FN(pool_window)(const fc_pool_geom *g, int64_t oh,
                                                int64_t ow, int64_t *ih_lo, int64_t *ih_hi,
                                                int64_t *iw_lo, int64_t *iw_hi)
{
    const int64_t ih0 = oh * g->stride_h - g->pad_top, iw0 = ow * g->stride_w - g->pad_left;
    int64_t lo, hi;
    fc_tap_range(ih0, 1, g->kh, g->h, &lo, &hi);
    *ih_lo = ih0 + lo;
    *ih_hi = ih0 + hi;
    fc_tap_range(iw0, 1, g->kw, g->w, &lo, &hi);
    *iw_lo = iw0 + lo;
    *iw_hi = iw0 + hi;
}

/* Explicit vectors for the max-pooling forward pass: FC_PVL channels of the
 * element type, the comparison masks they produce (integers as wide as the
 * element) and the int32 argmax lanes stored. */
#define FC_PVL ((int64_t)(FC_VEC_BYTES / sizeof(FC_T)))
typedef FC_T FC_FN(pvec) __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T))));
typedef int32_t FC_FN(pidx) __attribute__((vector_size(FC_PVL * 4), aligned(4)));

/* Channels [c_lo, c_hi) of one window: the first maximum in row-major window
 * order, NaN winning over numbers. The readable statement of the rule; the
 * vector loop below applies the same comparisons lane by lane. */
FC_TARGET static inline void FC_FN(max_window)(const fc_pool_geom *g, const FC_T *x,
                                               FC_T *FC_RESTRICT yp,
                                               int32_t *FC_RESTRICT ap, int64_t ih_lo,
                                               int64_t ih_hi, int64_t iw_lo, int64_t iw_hi,
                                               int64_t c_lo, int64_t c_hi)
{
    const int64_t c = g->c;
    const FC_T *first = x + (ih_lo * g->w + iw_lo) * c;
    for (int64_t k = c_lo; k < c_hi; ++k) {
        yp[k] = first[k];
        ap[k] = (int32_t)(ih_lo * g->index_w + iw_lo);
    }
    for (int64_t ih = ih_lo; ih < ih_hi; ++ih)
        for (int64_t iw = (ih == ih_lo ? iw_lo + 1 : iw_lo); iw < iw_hi; ++iw) {
            const FC_T *FC_RESTRICT xp = x + (ih * g->w + iw) * c;
            const int32_t idx = (int32_t)(ih * g->index_w + iw);
            for (int64_t k = c_lo; k < c_hi; ++k) {
                const FC_T v = xp[k], best = yp[k];
                const int wins = (v > best) | ((v != v) & (best == best));
                yp[k] = wins ? v : best;
                ap[k] = wins ? idx : ap[k];
            }
        }
}

/* Lanes (all ones) where v takes the place of best, the maximum of the
 * elements before it: v is greater, or NaN while best is a number. v <= best
 * is false where either is NaN: two comparisons, not three. */
#define FC_BEATS(v, best) (~((v) <= (best)) & ((best) == (best)))

/* The maximum and its index of one vector of channels over the window rows
 * [ih_lo, ih_hi) and columns [iw_lo, iw_hi) of xk (an image's first pixel,
 * offset to the vector's channels), in row-major order: a later element
 * wins when it is greater, or NaN over a number. */
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(max_vec_window)(
    const fc_pool_geom *g, const FC_T *xk, int64_t ih_lo, int64_t ih_hi, int64_t iw_lo,
    int64_t iw_hi, FC_T *yp, int32_t *ap)
{
    typedef FC_FN(pvec) vec;
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    const int64_t c = g->c;
    vec best = *(const vec *)(xk + (ih_lo * g->w + iw_lo) * c);
    mask at = (mask){0} + (FC_IT)(ih_lo * g->index_w + iw_lo);
    for (int64_t ih = ih_lo; ih < ih_hi; ++ih)
        for (int64_t iw = iw_lo; iw < iw_hi; ++iw) {
            if (ih == ih_lo && iw == iw_lo)
                continue;
            const vec v = *(const vec *)(xk + (ih * g->w + iw) * c);
            const mask wins = FC_BEATS(v, best);
            best = (vec)(((mask)v & wins) | ((mask)best & ~wins));
            at = (((mask){0} + (FC_IT)(ih * g->index_w + iw)) & wins) | (at & ~wins);
        }
    *(vec *)yp = best;
    *(FC_FN(pidx) *)ap = __builtin_convertvector(at, FC_FN(pidx));
}

/* max_vec_window of the 2x2 window at row ih, column iw, as the maximum of
 * its two rows' maxima: each row keeps its first maximum and the second
 * row's wins only when it beats the first's, so the winner is the first
 * maximum in row-major order, as in the scan, in two dependent steps
 * instead of three. */
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(max_vec_window_2x2)(
    const fc_pool_geom *g, const FC_T *xk, int64_t ih, int64_t iw, FC_T *yp, int32_t *ap)
{
    typedef FC_FN(pvec) vec;
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    const int64_t c = g->c;
    const FC_T *top_row = xk + (ih * g->w + iw) * c, *bottom_row = top_row + g->w * c;
    const vec a = *(const vec *)top_row, b = *(const vec *)(top_row + c);
    const vec d = *(const vec *)bottom_row, e = *(const vec *)(bottom_row + c);
    const mask right_top = FC_BEATS(b, a), right_bottom = FC_BEATS(e, d);
    const vec top = (vec)(((mask)b & right_top) | ((mask)a & ~right_top));
    const vec bottom = (vec)(((mask)e & right_bottom) | ((mask)d & ~right_bottom));
    const mask lower = FC_BEATS(bottom, top);
    *(vec *)yp = (vec)(((mask)bottom & lower) | ((mask)top & ~lower));
    /* Offsets in the window: 0 or 1 in the top row, index_w or index_w + 1
     * in the bottom one (a true lane is -1). */
    const mask column = (lower & right_bottom) | (~lower & right_top);
    const mask at = (mask){0} + (FC_IT)(ih * g->index_w + iw) +
                    (lower & (FC_IT)g->index_w) - column;
    *(FC_FN(pidx) *)ap = __builtin_convertvector(at, FC_FN(pidx));
}

/* Max pooling of rows [row_begin, row_end) of the (N * OH) output rows.
 * x (N, H, W, C), y (N, OH, OW, C), argmax (N, OH, OW, C) int32 holding
 * ih * W + iw of each winner. Each vector of channels keeps its maximum and
 * index in registers across the window and is stored once. */
FC_TARGET static void FC_FN(max_pool2d_forward)(const fc_pool_geom *g, const FC_T *x, FC_T *y,
                                                int32_t *argmax, int64_t row_begin,
                                                int64_t row_end)
{
    const int64_t c = g->c, c_vec = c / FC_PVL * FC_PVL;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / g->oh, oh = r % g->oh;
        const FC_T *xn = x + n * g->h * g->w * c;
        for (int64_t ow = 0; ow < g->ow; ++ow) {
            FC_T *FC_RESTRICT yp = y + (r * g->ow + ow) * c;
            int32_t *FC_RESTRICT ap = argmax + (r * g->ow + ow) * c;
            int64_t ih_lo, ih_hi, iw_lo, iw_hi;
            FC_FN(pool_window)(g, oh, ow, &ih_lo, &ih_hi, &iw_lo, &iw_hi);
            if (ih_hi - ih_lo == 2 && iw_hi - iw_lo == 2)
                for (int64_t k = 0; k < c_vec; k += FC_PVL)
                    FC_FN(max_vec_window_2x2)(g, xn + k, ih_lo, iw_lo, yp + k, ap + k);
            else
                for (int64_t k = 0; k < c_vec; k += FC_PVL)
                    FC_FN(max_vec_window)(g, xn + k, ih_lo, ih_hi, iw_lo, iw_hi, yp + k, ap + k);
            if (c_vec < c)
                FC_FN(max_window)(g, xn, yp, ap, ih_lo, ih_hi, iw_lo, iw_hi, c_vec, c);
        }
    }
}

/* Max pooling gradient of images [n_begin, n_end): dx (N, H, W, C) is zeroed,
 * then each dy (N, OH, OW, C) element is added at its argmax position. With
 * relu_y (N, OH, OW, C), the pooled output of rectified inputs, an element
 * passes only where relu_y > 0: the ReLU's gradient folded in, since each
 * maximum is the rectified value at its argmax. */
FC_TARGET static void FC_FN(max_pool2d_backward)(const fc_pool_geom *g, const FC_T *dy,
                                                 const FC_T *relu_y, const int32_t *argmax,
                                                 FC_T *dx, int64_t n_begin, int64_t n_end)
{
    const int64_t c = g->c, plane = g->h * g->w * c, out = g->oh * g->ow;
    for (int64_t n = n_begin; n < n_end; ++n) {
        FC_T *dxn = dx + n * plane;
        for (int64_t k = 0; k < plane; ++k)
            dxn[k] = (FC_T)0;
        const FC_T *dyn = dy + n * out * c;
        const int32_t *an = argmax + n * out * c;
        if (relu_y) {
            const FC_T *yn = relu_y + n * out * c;
            for (int64_t p = 0; p < out; ++p)
                for (int64_t k = 0; k < c; ++k)
                    dxn[(int64_t)an[p * c + k] * c + k] +=
                        yn[p * c + k] > (FC_T)0 ? dyn[p * c + k] : (FC_T)0;
        } else {
            for (int64_t p = 0; p < out; ++p)
                for (int64_t k = 0; k < c; ++k)
                    dxn[(int64_t)an[p * c + k] * c + k] += dyn[p * c + k];
        }
    }
}

/* One window's gradient, channels [0, c): each position (ih, iw) of rows
 * [ih_lo, ih_hi) and columns [iw_lo, iw_hi) gets dy where argmax chose it
 * (and relu_y > 0), else 0; the chosen lanes are counted into
 * *chosen_lanes (minus one per lane) and *matched. dy, relu_y and argmax
 * point at the window's pooled pixel, dxn at the image's first pixel.
 * Inlined with a constant window size (the usual 2x2), its loops unroll. */
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(unpool_window)(
    const fc_pool_geom *g, const FC_T *dy, const FC_T *relu_y, const int32_t *argmax,
    FC_T *dxn, int64_t ih_lo, int64_t ih_hi, int64_t iw_lo, int64_t iw_hi,
    FC_IT __attribute__((vector_size(FC_VEC_BYTES))) *chosen_lanes, int64_t *matched)
{
    typedef FC_FN(pvec) vec;
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    const int64_t c = g->c, c_vec = c / FC_PVL * FC_PVL;
    const vec zero = {0};
    int64_t k = 0;
    for (; k < c_vec; k += FC_PVL) {
        const mask at = __builtin_convertvector(*(const FC_FN(pidx) *)(argmax + k), mask);
        mask d = (mask)(*(const vec *)(dy + k));
        if (relu_y)
            d &= *(const vec *)(relu_y + k) > zero;
        for (int64_t ih = ih_lo; ih < ih_hi; ++ih)
            for (int64_t iw = iw_lo; iw < iw_hi; ++iw) {
                const mask chosen = at == (mask){0} + (FC_IT)(ih * g->index_w + iw);
                /* + 0: the scatter-add's 0 + dy, which turns -0 into +0 */
                *(vec *)(dxn + (ih * g->w + iw) * c + k) = (vec)(d & chosen) + zero;
                *chosen_lanes += chosen; /* a chosen lane is -1 */
            }
    }
    for (; k < c; ++k)
        for (int64_t ih = ih_lo; ih < ih_hi; ++ih)
            for (int64_t iw = iw_lo; iw < iw_hi; ++iw) {
                const int chosen = argmax[k] == (int32_t)(ih * g->index_w + iw);
                const int pass = chosen && (!relu_y || relu_y[k] > (FC_T)0);
                dxn[(ih * g->w + iw) * c + k] = (pass ? dy[k] : (FC_T)0) + (FC_T)0;
                *matched += chosen;
            }
}

/* Zeros at the positions of images [n_begin, n_end) of dx that no window
 * covers (rows or columns in the gaps of a stride larger than the window,
 * or past the last window); none when the windows tile the image. */
FC_TARGET static void FC_FN(zero_uncovered)(const fc_pool_geom *g, FC_T *dx, int64_t n_begin,
                                            int64_t n_end)
{
    const int64_t c = g->c;
    if (g->pad_top == 0 && g->pad_left == 0 && g->stride_h == g->kh && g->stride_w == g->kw &&
        g->oh * g->kh == g->h && g->ow * g->kw == g->w)
        return;
    for (int64_t n = n_begin; n < n_end; ++n)
        for (int64_t ih = 0; ih < g->h; ++ih) {
            const int64_t th = ih + g->pad_top, oh = th / g->stride_h;
            const int row_covered = oh < g->oh && th - oh * g->stride_h < g->kh;
            /* Column iw is at offset `rem` in the stride of window `ow`,
             * stepped along without a division per pixel. */
            int64_t ow = g->pad_left / g->stride_w, rem = g->pad_left % g->stride_w;
            for (int64_t iw = 0; iw < g->w; ++iw, ++rem) {
                if (rem == g->stride_w) {
                    rem = 0;
                    ++ow;
                }
                if (row_covered && ow < g->ow && rem < g->kw)
                    continue;
                FC_T *FC_RESTRICT dxp = dx + ((n * g->h + ih) * g->w + iw) * c;
                for (int64_t k = 0; k < c; ++k)
                    dxp[k] = (FC_T)0;
            }
        }
}

/* max_pool2d_backward for windows that do not overlap (stride >= pool size
 * on both axes), written window by window: each dx element lies in at most
 * one window, so it is written once, with that window's dy where the window
 * chose it (and, with relu_y, where relu_y > 0), else 0. No zeroing pass,
 * no scattered read-modify-write, and whole vectors of channels at a time.
 * The same values as the scatter-add, provided every argmax lies in its own
 * window; returns 1 if so (every window's index was matched once), else 0,
 * and the caller must then run max_pool2d_backward on these images. */
FC_TARGET static int FC_FN(max_pool2d_backward_disjoint)(const fc_pool_geom *g, const FC_T *dy,
                                                         const FC_T *relu_y,
                                                         const int32_t *argmax, FC_T *dx,
                                                         int64_t n_begin, int64_t n_end)
{
    typedef FC_IT mask __attribute__((vector_size(FC_VEC_BYTES)));
    const int64_t c = g->c;
    mask chosen_lanes = {0}; /* minus the count of chosen lanes, lane by lane */
    int64_t matched = 0;
    FC_FN(zero_uncovered)(g, dx, n_begin, n_end);
    for (int64_t n = n_begin; n < n_end; ++n) {
        FC_T *dxn = dx + n * g->h * g->w * c;
        for (int64_t oh = 0; oh < g->oh; ++oh)
            for (int64_t ow = 0; ow < g->ow; ++ow) {
                const int64_t q = ((n * g->oh + oh) * g->ow + ow) * c;
                const FC_T *ry = relu_y ? relu_y + q : NULL;
                int64_t ih_lo, ih_hi, iw_lo, iw_hi;
                FC_FN(pool_window)(g, oh, ow, &ih_lo, &ih_hi, &iw_lo, &iw_hi);
                if (ih_hi - ih_lo == 2 && iw_hi - iw_lo == 2)
                    FC_FN(unpool_window)(g, dy + q, ry, argmax + q, dxn, ih_lo, ih_lo + 2,
                                         iw_lo, iw_lo + 2, &chosen_lanes, &matched);
                else
                    FC_FN(unpool_window)(g, dy + q, ry, argmax + q, dxn, ih_lo, ih_hi, iw_lo,
                                         iw_hi, &chosen_lanes, &matched);
            }
    }
    for (int l = 0; l < FC_PVL; ++l)
        matched -= chosen_lanes[l];
    return matched == (n_end - n_begin) * g->oh * g->ow * c;
}

/* Average pooling of rows [row_begin, row_end) of the (N * OH) output rows:
 * the mean over the window's elements inside the image.
 * x (N, H, W, C), y (N, OH, OW, C). */
FC_TARGET static void FC_FN(avg_pool2d_forward)(const fc_pool_geom *g, const FC_T *x, FC_T *y,
                                                int64_t row_begin, int64_t row_end)
{
    const int64_t c = g->c;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / g->oh, oh = r % g->oh;
        for (int64_t ow = 0; ow < g->ow; ++ow) {
            FC_T *FC_RESTRICT yp = y + (r * g->ow + ow) * c;
            int64_t ih_lo, ih_hi, iw_lo, iw_hi;
            FC_FN(pool_window)(g, oh, ow, &ih_lo, &ih_hi, &iw_lo, &iw_hi);
            for (int64_t k = 0; k < c; ++k)
                yp[k] = (FC_T)0;
            for (int64_t ih = ih_lo; ih < ih_hi; ++ih)
                for (int64_t iw = iw_lo; iw < iw_hi; ++iw) {
                    const FC_T *FC_RESTRICT xp = x + ((n * g->h + ih) * g->w + iw) * c;
                    for (int64_t k = 0; k < c; ++k)
                        yp[k] += xp[k];
                }
            /* Divide rather than multiply by a reciprocal: the quotient is
             * then correctly rounded, as in the reference. */
            const FC_T count = (FC_T)((ih_hi - ih_lo) * (iw_hi - iw_lo));
            for (int64_t k = 0; k < c; ++k)
                yp[k] /= count;
        }
    }
}

/* Average pooling gradient for rows [row_begin, row_end) of the (N * H)
 * input rows: each dx element gathers dy / count from every window that
 * covers it. dy (N, OH, OW, C), dx (N, H, W, C). */
FC_TARGET static void FC_FN(avg_pool2d_backward)(const fc_pool_geom *g, const FC_T *dy,
                                                 FC_T *dx, int64_t row_begin, int64_t row_end)
{
    const int64_t c = g->c;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / g->h, ih = r % g->h;
        /* Windows oh cover ih when oh * stride_h - pad_top <= ih < that + kh. */
        const int64_t th = ih + g->pad_top;
        int64_t oh_lo = th - g->kh + 1 <= 0 ? 0 : (th - g->kh + g->stride_h) / g->stride_h;
        int64_t oh_hi = th / g->stride_h + 1;
        if (oh_hi > g->oh)
            oh_hi = g->oh;
        for (int64_t iw = 0; iw < g->w; ++iw) {
            FC_T *FC_RESTRICT acc = dx + (r * g->w + iw) * c;
            for (int64_t k = 0; k < c; ++k)
                acc[k] = (FC_T)0;
            const int64_t tw = iw + g->pad_left;
            int64_t ow_lo = tw - g->kw + 1 <= 0 ? 0 : (tw - g->kw + g->stride_w) / g->stride_w;
            int64_t ow_hi = tw / g->stride_w + 1;
            if (ow_hi > g->ow)
                ow_hi = g->ow;
            for (int64_t oh = oh_lo; oh < oh_hi; ++oh)
                for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
                    int64_t ih_lo, ih_hi, iw_lo, iw_hi;
                    FC_FN(pool_window)(g, oh, ow, &ih_lo, &ih_hi, &iw_lo, &iw_hi);
                    const FC_T count = (FC_T)((ih_hi - ih_lo) * (iw_hi - iw_lo));
                    const FC_T *FC_RESTRICT dyp = dy + ((n * g->oh + oh) * g->ow + ow) * c;
                    for (int64_t k = 0; k < c; ++k)
                        acc[k] += dyp[k] / count;
                }
        }
    }
}

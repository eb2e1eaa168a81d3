/* conv2d_impl.h - direct convolution micro-kernels, one instantiation per
 * (dtype, instruction set). Included by conv2d.c with these macros set:
 *   FC_T       element type (float or double)
 *   FC_FN(f)   the name of function f for this instantiation
 *   FC_TARGET  the function attribute selecting the instruction set
 *
 * Every innermost loop runs over a contiguous channel axis with no branch, so
 * the compiler vectorises it for the target's vector width: output channels
 * in the forward pass and the weight gradient, input channels in the data
 * gradient (which reads the kernel transposed to (KH, KW, C_out, C_in)).
 * Each output element is summed in one fixed order, whatever the thread
 * count, so the results are bitwise reproducible.
 */

/* acc[i] += a * v[i] for i in [0, len) */
FC_TARGET static inline void FC_FN(axpy)(int64_t len, FC_T a, const FC_T *FC_RESTRICT v,
                                         FC_T *FC_RESTRICT acc)
{
    for (int64_t i = 0; i < len; ++i)
        acc[i] += a * v[i];
}

/* Forward rows [row_begin, row_end) of the flattened (N * OH) output rows.
 * x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or NULL,
 * y (N, OH, OW, C_out). */
FC_TARGET static void FC_FN(conv2d_forward)(const fc_conv_geom *g, const FC_T *x,
                                            const FC_T *w, const FC_T *b, FC_T *y,
                                            int64_t row_begin, int64_t row_end)
{
    const int64_t cin = g->c_in, cout = g->c_out;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / g->oh, oh = r % g->oh;
        const int64_t ih0 = oh * g->stride_h - g->pad_top;
        int64_t kh_lo, kh_hi;
        fc_tap_range(ih0, g->dil_h, g->kh, g->h, &kh_lo, &kh_hi);
        for (int64_t ow = 0; ow < g->ow; ++ow) {
            FC_T *FC_RESTRICT acc = y + (r * g->ow + ow) * cout;
            for (int64_t co = 0; co < cout; ++co)
                acc[co] = b ? b[co] : (FC_T)0;
            const int64_t iw0 = ow * g->stride_w - g->pad_left;
            int64_t kw_lo, kw_hi;
            fc_tap_range(iw0, g->dil_w, g->kw, g->w, &kw_lo, &kw_hi);
            for (int64_t i = kh_lo; i < kh_hi; ++i) {
                const int64_t ih = ih0 + i * g->dil_h;
                for (int64_t j = kw_lo; j < kw_hi; ++j) {
                    const int64_t iw = iw0 + j * g->dil_w;
                    const FC_T *xp = x + ((n * g->h + ih) * g->w + iw) * cin;
                    const FC_T *wp = w + (i * g->kw + j) * cin * cout;
                    for (int64_t ci = 0; ci < cin; ++ci)
                        FC_FN(axpy)(cout, xp[ci], wp + ci * cout, acc);
                }
            }
        }
    }
}

/* Input gradient for rows [row_begin, row_end) of the flattened (N * H) input
 * rows: dx[n, ih, iw, :] = sum over the taps (i, j) and output pixels
 * (oh, ow) that read (ih, iw) of wt[i, j] @ dy[n, oh, ow].
 * dy (N, OH, OW, C_out), wt (KH, KW, C_out, C_in), dx (N, H, W, C_in). */
FC_TARGET static void FC_FN(conv2d_backward_data)(const fc_conv_geom *g, const FC_T *dy,
                                                  const FC_T *wt, FC_T *dx,
                                                  int64_t row_begin, int64_t row_end)
{
    const int64_t cin = g->c_in, cout = g->c_out;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / g->h, ih = r % g->h;
        for (int64_t iw = 0; iw < g->w; ++iw) {
            FC_T *FC_RESTRICT acc = dx + (r * g->w + iw) * cin;
            for (int64_t ci = 0; ci < cin; ++ci)
                acc[ci] = (FC_T)0;
            for (int64_t i = 0; i < g->kh; ++i) {
                /* oh * stride_h = ih + pad_top - i * dil_h must hold exactly. */
                const int64_t th = ih + g->pad_top - i * g->dil_h;
                if (th < 0 || th % g->stride_h != 0 || th / g->stride_h >= g->oh)
                    continue;
                const int64_t oh = th / g->stride_h;
                for (int64_t j = 0; j < g->kw; ++j) {
                    const int64_t tw = iw + g->pad_left - j * g->dil_w;
                    if (tw < 0 || tw % g->stride_w != 0 || tw / g->stride_w >= g->ow)
                        continue;
                    const int64_t ow = tw / g->stride_w;
                    const FC_T *dyp = dy + ((n * g->oh + oh) * g->ow + ow) * cout;
                    const FC_T *wtp = wt + (i * g->kw + j) * cout * cin;
                    for (int64_t co = 0; co < cout; ++co)
                        FC_FN(axpy)(cin, dyp[co], wtp + co * cin, acc);
                }
            }
        }
    }
}

/* Weight and bias gradients of the images [n_begin, n_end), written (not
 * added) to dw (KH, KW, C_in, C_out) or NULL and db (C_out,) or NULL.
 * x (N, H, W, C_in), dy (N, OH, OW, C_out). */
FC_TARGET static void FC_FN(conv2d_backward_weight)(const fc_conv_geom *g, const FC_T *x,
                                                    const FC_T *dy, FC_T *dw, FC_T *db,
                                                    int64_t n_begin, int64_t n_end)
{
    const int64_t cin = g->c_in, cout = g->c_out;
    if (dw)
        for (int64_t k = 0; k < g->kh * g->kw * cin * cout; ++k)
            dw[k] = (FC_T)0;
    if (db)
        for (int64_t co = 0; co < cout; ++co)
            db[co] = (FC_T)0;
    for (int64_t n = n_begin; n < n_end; ++n) {
        for (int64_t oh = 0; oh < g->oh; ++oh) {
            const int64_t ih0 = oh * g->stride_h - g->pad_top;
            int64_t kh_lo, kh_hi;
            fc_tap_range(ih0, g->dil_h, g->kh, g->h, &kh_lo, &kh_hi);
            for (int64_t ow = 0; ow < g->ow; ++ow) {
                const FC_T *dyp = dy + ((n * g->oh + oh) * g->ow + ow) * cout;
                if (db)
                    FC_FN(axpy)(cout, (FC_T)1, dyp, db);
                if (!dw)
                    continue;
                const int64_t iw0 = ow * g->stride_w - g->pad_left;
                int64_t kw_lo, kw_hi;
                fc_tap_range(iw0, g->dil_w, g->kw, g->w, &kw_lo, &kw_hi);
                for (int64_t i = kh_lo; i < kh_hi; ++i) {
                    const int64_t ih = ih0 + i * g->dil_h;
                    for (int64_t j = kw_lo; j < kw_hi; ++j) {
                        const int64_t iw = iw0 + j * g->dil_w;
                        const FC_T *xp = x + ((n * g->h + ih) * g->w + iw) * cin;
                        FC_T *dwp = dw + (i * g->kw + j) * cin * cout;
                        for (int64_t ci = 0; ci < cin; ++ci)
                            FC_FN(axpy)(cout, xp[ci], dyp, dwp + ci * cout);
                    }
                }
            }
        }
    }
}

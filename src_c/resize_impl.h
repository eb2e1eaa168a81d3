/* resize_impl.h - bilinear resizing micro-kernels, one instantiation per
 * (dtype, instruction set); see fc_dispatch.h for the macros and resize.h
 * for the layout and the taps.
 *
 * The innermost loops run over the contiguous channel axis. The forward pass
 * writes each output pixel once from its four taps. The gradient is written
 * as a gather, so that threads can split the input rows: each dx pixel sums,
 * in a fixed order, the dy pixels of the outputs that read it, weighted as
 * the forward pass weighted it.
 */

/* The weights of output index o's taps i0[o] and i1[o]. */
FC_TARGET static inline void FC_FN(tap_weights)(const fc_linear_axis *a, int64_t o, FC_T *w0,
                                                FC_T *w1)
{
    *w0 = (FC_T)(1.0 - a->f[o]);
    *w1 = (FC_T)a->f[o];
}

/* The weight with which output index o reads input index i: that of the tap
 * at i, or the sum of both where they coincide (at the last input). */
FC_TARGET static inline FC_T FC_FN(read_weight)(const fc_linear_axis *a, int64_t o, int64_t i)
{
    FC_T w0, w1;
    FC_FN(tap_weights)(a, o, &w0, &w1);
    return (a->i0[o] == i ? w0 : (FC_T)0) + (a->i1[o] == i ? w1 : (FC_T)0);
}

/* Bilinear resize of rows [row_begin, row_end) of the N * OH output rows:
 * y (N, OH, OW, C) from x (N, H, W, C). */
FC_TARGET static void FC_FN(bilinear_forward)(FC_T *y, const FC_T *x, int64_t c,
                                              const fc_linear_axis *rows,
                                              const fc_linear_axis *cols, int64_t row_begin,
                                              int64_t row_end)
{
    const int64_t in_row = cols->in * c, out_row = cols->out * c;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / rows->out, oh = r % rows->out;
        FC_T wh0, wh1;
        FC_FN(tap_weights)(rows, oh, &wh0, &wh1);
        const FC_T *top = x + (n * rows->in + rows->i0[oh]) * in_row;
        const FC_T *bottom = x + (n * rows->in + rows->i1[oh]) * in_row;
        for (int64_t ow = 0; ow < cols->out; ++ow) {
            FC_T ww0, ww1;
            FC_FN(tap_weights)(cols, ow, &ww0, &ww1);
            const FC_T *FC_RESTRICT a = top + cols->i0[ow] * c;
            const FC_T *FC_RESTRICT b = top + cols->i1[ow] * c;
            const FC_T *FC_RESTRICT d = bottom + cols->i0[ow] * c;
            const FC_T *FC_RESTRICT e = bottom + cols->i1[ow] * c;
            FC_T *FC_RESTRICT yp = y + r * out_row + ow * c;
            for (int64_t k = 0; k < c; ++k)
                yp[k] = wh0 * (ww0 * a[k] + ww1 * b[k]) + wh1 * (ww0 * d[k] + ww1 * e[k]);
        }
    }
}

/* Bilinear resize gradient of rows [row_begin, row_end) of the N * H input
 * rows: dx (N, H, W, C) from dy (N, OH, OW, C). Pixel (ih, iw) sums over the
 * output rows oh in [lo[ih], hi[ih]) and, in each, the output columns ow in
 * [lo[iw], hi[iw]), of read_weight(oh, ih) * read_weight(ow, iw) * dy[oh, ow]. */
FC_TARGET static void FC_FN(bilinear_backward)(FC_T *dx, const FC_T *dy, int64_t c,
                                               const fc_linear_axis *rows,
                                               const fc_linear_axis *cols, int64_t row_begin,
                                               int64_t row_end)
{
    const int64_t out_row = cols->out * c;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / rows->in, ih = r % rows->in;
        for (int64_t iw = 0; iw < cols->in; ++iw) {
            FC_T *FC_RESTRICT acc = dx + (r * cols->in + iw) * c;
            for (int64_t k = 0; k < c; ++k)
                acc[k] = (FC_T)0;
            for (int64_t oh = rows->lo[ih]; oh < rows->hi[ih]; ++oh) {
                const FC_T wr = FC_FN(read_weight)(rows, oh, ih);
                const FC_T *dyr = dy + (n * rows->out + oh) * out_row;
                for (int64_t ow = cols->lo[iw]; ow < cols->hi[iw]; ++ow) {
                    const FC_T wgt = wr * FC_FN(read_weight)(cols, ow, iw);
                    const FC_T *FC_RESTRICT dyp = dyr + ow * c;
                    for (int64_t k = 0; k < c; ++k)
                        acc[k] += wgt * dyp[k];
                }
            }
        }
    }
}

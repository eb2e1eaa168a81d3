/* resize_impl.h - upsampling micro-kernels, one instantiation per (dtype,
 * instruction set); see fc_dispatch.h for the macros and resize.h for the
 * layouts and the taps.
 *
 * The inner loops run over whole contiguous rows (W * C values) or over the
 * channels of a pixel. Bilinear forward: each output row blends its two
 * input rows into a scratch row, then each output pixel blends two pixels of
 * it. Its gradient is a gather, so that threads can split the input rows:
 * for each dx row, the dy rows that read it are blended into a scratch row
 * (with the weights the forward pass used), then each dx pixel sums the
 * pixels of that row that read it. Nearest forward writes the output rows
 * in order, each built from its input row or copied (memcpy) from the first
 * row of its block, which this call built and which is still in the cache
 * (streaming stores, fc_stream.h, measured no faster here); its gradient sums
 * each block, element by element, in the order (depth, row, column) offset
 * within the block.
 */

/* ---- bilinear ----------------------------------------------------------- */

/* The weight with which output index o reads input index i: that of its tap
 * at i, or the sum of both where they coincide (at the last input). */
FC_TARGET static inline FC_T FC_FN(read_weight)(const fc_linear_axis *a, int64_t o, int64_t i)
{
    const FC_T *w0 = (const FC_T *)a->w0, *w1 = (const FC_T *)a->w1;
    return (a->i0[o] == i ? w0[o] : (FC_T)0) + (a->i1[o] == i ? w1[o] : (FC_T)0);
}

/* Bilinear resize of rows [row_begin, row_end) of the N * OH output rows:
 * y (N, OH, OW, C) from x (N, H, W, C); row: W * C scratch values. */
FC_TARGET static void FC_FN(bilinear_forward)(FC_T *y, FC_T *FC_RESTRICT row, const FC_T *x,
                                              int64_t c, const fc_linear_axis *rows,
                                              const fc_linear_axis *cols, int64_t row_begin,
                                              int64_t row_end)
{
    const FC_T *wh0 = (const FC_T *)rows->w0, *wh1 = (const FC_T *)rows->w1;
    const FC_T *ww0 = (const FC_T *)cols->w0, *ww1 = (const FC_T *)cols->w1;
    const int64_t in_row = cols->in * c, out_row = cols->out * c;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / rows->out, oh = r % rows->out;
        const FC_T *FC_RESTRICT top = x + (n * rows->in + rows->i0[oh]) * in_row;
        const FC_T *FC_RESTRICT bottom = x + (n * rows->in + rows->i1[oh]) * in_row;
        const FC_T a = wh0[oh], b = wh1[oh];
        for (int64_t j = 0; j < in_row; ++j)
            row[j] = a * top[j] + b * bottom[j];
        FC_T *FC_RESTRICT yr = y + r * out_row;
        if (c == 1) {
            for (int64_t ow = 0; ow < cols->out; ++ow)
                yr[ow] = ww0[ow] * row[cols->i0[ow]] + ww1[ow] * row[cols->i1[ow]];
            continue;
        }
        for (int64_t ow = 0; ow < cols->out; ++ow) {
            const FC_T *FC_RESTRICT left = row + cols->i0[ow] * c;
            const FC_T *FC_RESTRICT right = row + cols->i1[ow] * c;
            const FC_T u = ww0[ow], v = ww1[ow];
            FC_T *FC_RESTRICT yp = yr + ow * c;
            for (int64_t k = 0; k < c; ++k)
                yp[k] = u * left[k] + v * right[k];
        }
    }
}

/* Bilinear resize gradient of rows [row_begin, row_end) of the N * H input
 * rows: dx (N, H, W, C) from dy (N, OH, OW, C); row: OW * C scratch values.
 * dx[ih, iw] = sum over ow in [lo[iw], hi[iw]) of read_weight(ow, iw) *
 * (sum over oh in [lo[ih], hi[ih]) of read_weight(oh, ih) * dy[oh, ow]),
 * each sum in index order. */
FC_TARGET static void FC_FN(bilinear_backward)(FC_T *dx, FC_T *FC_RESTRICT row, const FC_T *dy,
                                               int64_t c, const fc_linear_axis *rows,
                                               const fc_linear_axis *cols, int64_t row_begin,
                                               int64_t row_end)
{
    const int64_t in_row = cols->in * c, out_row = cols->out * c;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t n = r / rows->in, ih = r % rows->in;
        /* Every input index is read by at least one output: the ranges are
         * never empty (the scale is >= 1). */
        for (int64_t oh = rows->lo[ih]; oh < rows->hi[ih]; ++oh) {
            const FC_T wr = FC_FN(read_weight)(rows, oh, ih);
            const FC_T *FC_RESTRICT dyr = dy + (n * rows->out + oh) * out_row;
            if (oh == rows->lo[ih])
                for (int64_t j = 0; j < out_row; ++j)
                    row[j] = wr * dyr[j];
            else
                for (int64_t j = 0; j < out_row; ++j)
                    row[j] += wr * dyr[j];
        }
        FC_T *dxr = dx + r * in_row;
        if (c == 1) {
            for (int64_t iw = 0; iw < cols->in; ++iw) {
                FC_T sum = FC_FN(read_weight)(cols, cols->lo[iw], iw) * row[cols->lo[iw]];
                for (int64_t ow = cols->lo[iw] + 1; ow < cols->hi[iw]; ++ow)
                    sum += FC_FN(read_weight)(cols, ow, iw) * row[ow];
                dxr[iw] = sum;
            }
            continue;
        }
        for (int64_t iw = 0; iw < cols->in; ++iw) {
            FC_T *FC_RESTRICT acc = dxr + iw * c;
            for (int64_t ow = cols->lo[iw]; ow < cols->hi[iw]; ++ow) {
                const FC_T wc = FC_FN(read_weight)(cols, ow, iw);
                const FC_T *FC_RESTRICT src = row + ow * c;
                if (ow == cols->lo[iw])
                    for (int64_t k = 0; k < c; ++k)
                        acc[k] = wc * src[k];
                else
                    for (int64_t k = 0; k < c; ++k)
                        acc[k] += wc * src[k];
            }
        }
    }
}

/* ---- nearest ------------------------------------------------------------ */

/* Nearest upsampling of rows [row_begin, row_end) of the N * OD * OH
 * output rows of y (N, OD, OH, OW, C), written in order. The first row of
 * each input row's block, (od - od % sd, oh - oh % sh), repeats each pixel
 * of the input row sw times; the others are copies of it, when this call
 * wrote it (it is then still in the cache), else built likewise. */
FC_TARGET static void FC_FN(nearest_forward)(FC_T *y, const FC_T *x, const fc_nearest_geom *g,
                                             int64_t row_begin, int64_t row_end)
{
    const int64_t c = g->c, sw = g->sw, in_row = g->w * c, out_row = in_row * sw;
    const int64_t out_h = g->h * g->sh, out_d = g->d * g->sd;
    const size_t row_bytes = (size_t)out_row * sizeof(FC_T);
    /* Output row r is (n, od, oh); stepped along, not divided out per row. */
    int64_t n = row_begin / (out_d * out_h), od = row_begin / out_h % out_d, oh = row_begin % out_h;
    for (int64_t r = row_begin; r < row_end; ++r) {
        FC_T *FC_RESTRICT yr = y + r * out_row;
        const int64_t first = r - (od % g->sd) * out_h - oh % g->sh;
        if (first != r && first >= row_begin) {
            memcpy(yr, y + first * out_row, row_bytes);
        } else {
            const FC_T *FC_RESTRICT xr = x + ((n * g->d + od / g->sd) * g->h + oh / g->sh) * in_row;
            if (c == 1) {
                for (int64_t iw = 0; iw < g->w; ++iw)
                    for (int64_t j = 0; j < sw; ++j)
                        yr[iw * sw + j] = xr[iw];
            } else {
                for (int64_t iw = 0; iw < g->w; ++iw)
                    for (int64_t j = 0; j < sw; ++j)
                        for (int64_t k = 0; k < c; ++k)
                            yr[(iw * sw + j) * c + k] = xr[iw * c + k];
            }
        }
        if (++oh == out_h) {
            oh = 0;
            if (++od == out_d) {
                od = 0;
                ++n;
            }
        }
    }
}

/* Nearest upsampling gradient of rows [row_begin, row_end) of the N * D * H
 * rows of dx (N, D, H, W, C): each element sums the sd * sh * sw elements of
 * dy its block, starting from the first, in (depth, row, column) order. */
FC_TARGET static void FC_FN(nearest_backward)(FC_T *dx, const FC_T *dy, const fc_nearest_geom *g,
                                              int64_t row_begin, int64_t row_end)
{
    const int64_t c = g->c, sw = g->sw, in_row = g->w * c, out_row = in_row * sw;
    const int64_t out_h = g->h * g->sh, out_d = g->d * g->sd;
    int64_t n = row_begin / (g->d * g->h), id = row_begin / g->h % g->d, ih = row_begin % g->h;
    for (int64_t r = row_begin; r < row_end; ++r) {
        FC_T *FC_RESTRICT acc = dx + r * in_row;
        const FC_T *block = dy + ((n * out_d + id * g->sd) * out_h + ih * g->sh) * out_row;
        for (int64_t a = 0; a < g->sd; ++a)
            for (int64_t b = 0; b < g->sh; ++b) {
                const FC_T *FC_RESTRICT dyr = block + (a * out_h + b) * out_row;
                const int start = a == 0 && b == 0;
                if (c == 1) {
                    for (int64_t iw = 0; iw < g->w; ++iw) {
                        FC_T sum = start ? dyr[iw * sw] : acc[iw] + dyr[iw * sw];
                        for (int64_t j = 1; j < sw; ++j)
                            sum += dyr[iw * sw + j];
                        acc[iw] = sum;
                    }
                    continue;
                }
                for (int64_t iw = 0; iw < g->w; ++iw) {
                    FC_T *FC_RESTRICT out = acc + iw * c;
                    const FC_T *FC_RESTRICT in = dyr + iw * sw * c;
                    if (start)
                        for (int64_t k = 0; k < c; ++k)
                            out[k] = in[k];
                    else
                        for (int64_t k = 0; k < c; ++k)
                            out[k] += in[k];
                    for (int64_t j = 1; j < sw; ++j)
                        for (int64_t k = 0; k < c; ++k)
                            out[k] += in[j * c + k];
                }
            }
        if (++ih == g->h) {
            ih = 0;
            if (++id == g->d) {
                id = 0;
                ++n;
            }
        }
    }
}

/* conv2d_weight_impl.h - the weight and bias gradients of a direct
 * convolution, one instantiation per (dtype, instruction set); included by
 * conv2d_impl.h after the forward kernels, whose vector macros (FC_VL,
 * FC_CB) it uses.
 *
 * dw accumulates FC_CIB input channels x FC_CB output channels in registers
 * over the pixels of a range of images (conv_dw_block); kernels with few
 * taps x input channels sum every row of dw in one pass over the interior
 * pixels (conv_dw_taps). Every element sums its terms image after image in
 * a fixed order, so the batch chunks of the caller give the same bits for
 * any thread count, and images may be added in several calls.
 */

/* What conv_dw_block does with the stored values (see there). */
#define FC_DW_WRITE 0
#define FC_DW_CONTINUE 1
#define FC_DW_FOLD 2

/* Input channels per block of the weight-gradient kernel: with two vectors
 * of output channels, FC_CIB * 2 accumulators stay in registers. */
#define FC_CIB (FC_VEC_BYTES == 64 ? 8 : FC_VEC_BYTES == 32 ? 6 : 4)

/* dw[t, i, j, ci0 : ci0 + cib, co0 : co0 + FC_CB] over the output rows
 * [r_begin, r_end) of the flattened (N * OD * OH) rows, their pixels whose
 * tap (t, i, j) lies inside the image (planes [od_lo, od_hi), rows
 * [oh_lo, oh_hi), columns [ow_lo, ow_hi)), excluding the `skip` rectangle
 * (whose pixels conv_dw_taps summed first): sum of x[n, id, ih, iw, ci] *
 * dy[n, od, oh, ow, co], cib <= FC_CIB, pixels in (n, od, oh, ow) order.
 * `add` says what becomes of the stored values: FC_DW_WRITE replaces them,
 * FC_DW_CONTINUE goes on summing from them (a running sum over rows),
 * FC_DW_FOLD adds this sum to them (stored + sum: a fold over chunks). */
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(conv_dw_block_body)(
    const fc_conv_geom *g, const FC_T *x, const FC_T *dy, FC_T *dw, int64_t r_begin,
    int64_t r_end, int64_t t, int64_t od_lo, int64_t od_hi, int64_t i, int64_t j,
    int64_t oh_lo, int64_t oh_hi, int64_t ow_lo, int64_t ow_hi, int64_t ci0, const int cib,
    int64_t co0, const fc_interior *skip, int add)
{
    typedef FC_FN(vec) vec;
    const int64_t cin = g->c_in, cout = g->c_out;
    FC_T *dwp = dw + (((t * g->kh + i) * g->kw + j) * cin + ci0) * cout + co0;
    vec acc[FC_CIB][2];
#pragma GCC unroll 16
    for (int c = 0; c < FC_CIB; ++c)
        if (add == FC_DW_CONTINUE && c < cib) {
            acc[c][0] = *(const vec *)(dwp + c * cout);
            acc[c][1] = *(const vec *)(dwp + c * cout + FC_VL);
        } else {
            acc[c][0] = acc[c][1] = (vec){0};
        }
    /* Without a rectangle to skip, each row is one segment. With one, its
     * rows have no pixels left when the tap's columns lie inside it too. */
    const int segments = skip->oh_a < skip->oh_b ? 2 : 1;
    const int inner_empty = segments == 2 && skip->ow_a <= ow_lo && skip->ow_b >= ow_hi;
    const int64_t x_step = g->stride_w * cin;
    /* The row's (n, od, oh) step along with r: three divisions per row
     * would cost as much as the multiply-adds of a short row. */
    int64_t oh = r_begin % g->oh, od = r_begin / g->oh % g->od, n = r_begin / (g->oh * g->od);
    for (int64_t r = r_begin; r < r_end; ++r, fc_next_row(g, &n, &od, &oh)) {
            if (oh < oh_lo || oh >= oh_hi || od < od_lo || od >= od_hi ||
                (inner_empty && oh >= skip->oh_a && oh < skip->oh_b))
                continue;
            const int64_t id = od * g->stride_d - g->pad_front + t * g->dil_d;
            const int64_t ih = oh * g->stride_h - g->pad_top + i * g->dil_h;
            const FC_T *x_row = x + fc_in_pixel(g, n, id, ih, 0) * cin + ci0;
            const FC_T *dy_row = dy + fc_out_pixel_index(g, n, od, oh, 0) * cout + co0;
            for (int seg = 0; seg < segments; ++seg) {
                int64_t lo = ow_lo, hi = ow_hi;
                if (segments == 2)
                    fc_border_segment(skip, oh, seg, ow_lo, ow_hi, &lo, &hi);
                const FC_T *xp = x_row + (lo * g->stride_w - g->pad_left + j * g->dil_w) * cin;
                const FC_T *dyp = dy_row + lo * cout;
                for (int64_t ow = lo; ow < hi; ++ow, xp += x_step, dyp += cout) {
                    const vec d0 = *(const vec *)dyp, d1 = *(const vec *)(dyp + FC_VL);
#pragma GCC unroll 16
                    for (int c = 0; c < FC_CIB; ++c)
                        if (c < cib) {
                            acc[c][0] += xp[c] * d0;
                            acc[c][1] += xp[c] * d1;
                        }
                }
            }
        }
#pragma GCC unroll 16
    for (int c = 0; c < FC_CIB; ++c)
        if (c < cib && add == FC_DW_FOLD) {
            *(vec *)(dwp + c * cout) = *(const vec *)(dwp + c * cout) + acc[c][0];
            *(vec *)(dwp + c * cout + FC_VL) = *(const vec *)(dwp + c * cout + FC_VL) + acc[c][1];
        } else if (c < cib) {
            *(vec *)(dwp + c * cout) = acc[c][0];
            *(vec *)(dwp + c * cout + FC_VL) = acc[c][1];
        }
}

/* conv_dw_block_body with the block's input-channel count a constant when
 * the block is full, so its per-channel tests leave the pixel loop. */
FC_TARGET static void FC_FN(conv_dw_block)(const fc_conv_geom *g, const FC_T *x,
                                           const FC_T *dy, FC_T *dw, int64_t r_begin,
                                           int64_t r_end, int64_t t, int64_t od_lo,
                                           int64_t od_hi, int64_t i, int64_t j, int64_t oh_lo,
                                           int64_t oh_hi, int64_t ow_lo, int64_t ow_hi,
                                           int64_t ci0, int cib, int64_t co0,
                                           const fc_interior *skip, int add)
{
    if (cib == FC_CIB)
        FC_FN(conv_dw_block_body)(g, x, dy, dw, r_begin, r_end, t, od_lo, od_hi, i, j, oh_lo,
                                  oh_hi, ow_lo, ow_hi, ci0, FC_CIB, co0, skip, add);
    else
        FC_FN(conv_dw_block_body)(g, x, dy, dw, r_begin, r_end, t, od_lo, od_hi, i, j, oh_lo,
                                  oh_hi, ow_lo, ow_hi, ci0, cib, co0, skip, add);
}

/* Kernels with few taps x input channels (KH * KW * C_in <= FC_TAPS, such as
 * a first layer on one-channel images) sum every row of dw in one pass over
 * the interior pixels, loading each dy pixel once instead of once per tap. */
#define FC_TAPS 12

/* dw[:, :, :, co0 : co0 + FC_CB] (all KH * KW * C_in rows) over image n's
 * interior pixels, in (oh, ow) order, added to the stored values when
 * `add`; with db (when the interior is every pixel), db[co0 : co0 + FC_CB]
 * too, the sum of dy over those pixels in the same order, as bias_gradient
 * adds them. */
FC_TARGET static inline __attribute__((always_inline)) void FC_FN(conv_dw_taps_body)(
    const fc_conv_geom *g, const FC_T *x, const FC_T *dy, FC_T *dw, FC_T *db, int64_t n,
    const fc_interior *in, int64_t co0, int add, const int rows, const int with_db)
{
    typedef FC_FN(vec) vec;
    const int64_t cin = g->c_in, cout = g->c_out;
    int64_t offset[FC_TAPS]; /* input offset of row r from the pixel's first tap */
    for (int r = 0; r < rows; ++r) {
        const int64_t ci = r % cin, tap = r / cin;
        offset[r] = ((tap / g->kw) * g->dil_h * g->w + (tap % g->kw) * g->dil_w) * cin + ci;
    }
    vec acc[FC_TAPS][2];
#pragma GCC unroll 16
    for (int r = 0; r < FC_TAPS; ++r)
        if (add && r < rows) {
            acc[r][0] = *(const vec *)(dw + r * cout + co0);
            acc[r][1] = *(const vec *)(dw + r * cout + co0 + FC_VL);
        } else {
            acc[r][0] = acc[r][1] = (vec){0};
        }
    vec bias0 = {0}, bias1 = {0};
    if (with_db && add) {
        bias0 = *(const vec *)(db + co0);
        bias1 = *(const vec *)(db + co0 + FC_VL);
    }
    for (int64_t oh = in->oh_a; oh < in->oh_b; ++oh) {
        const int64_t ih0 = oh * g->stride_h - g->pad_top;
        for (int64_t ow = in->ow_a; ow < in->ow_b; ++ow) {
            const int64_t iw0 = ow * g->stride_w - g->pad_left;
            const FC_T *xp = x + ((n * g->h + ih0) * g->w + iw0) * cin;
            const FC_T *dyp = dy + ((n * g->oh + oh) * g->ow + ow) * cout + co0;
            const vec d0 = *(const vec *)dyp, d1 = *(const vec *)(dyp + FC_VL);
#pragma GCC unroll 16
            for (int r = 0; r < FC_TAPS; ++r)
                if (r < rows) {
                    acc[r][0] += xp[offset[r]] * d0;
                    acc[r][1] += xp[offset[r]] * d1;
                }
            if (with_db) {
                bias0 += d0;
                bias1 += d1;
            }
        }
    }
    if (with_db) {
        *(vec *)(db + co0) = bias0;
        *(vec *)(db + co0 + FC_VL) = bias1;
    }
#pragma GCC unroll 16
    for (int r = 0; r < FC_TAPS; ++r)
        if (r < rows) {
            *(vec *)(dw + r * cout + co0) = acc[r][0];
            *(vec *)(dw + r * cout + co0 + FC_VL) = acc[r][1];
        }
}

/* conv_dw_taps_body with the row count a constant for the usual first layers
 * (3x3 and 2x2 kernels on one channel), so its per-row tests leave the
 * pixel loop; db as there, or NULL. */
FC_TARGET static void FC_FN(conv_dw_taps)(const fc_conv_geom *g, const FC_T *x, const FC_T *dy,
                                          FC_T *dw, FC_T *db, int64_t n, const fc_interior *in,
                                          int64_t co0, int add)
{
    const int rows = (int)(g->kh * g->kw * g->c_in);
#define FC_TAPS_CALL(r, d) FC_FN(conv_dw_taps_body)(g, x, dy, dw, db, n, in, co0, add, r, d)
    if (rows == 9)
        db ? FC_TAPS_CALL(9, 1) : FC_TAPS_CALL(9, 0);
    else if (rows == 4)
        db ? FC_TAPS_CALL(4, 1) : FC_TAPS_CALL(4, 0);
    else
        db ? FC_TAPS_CALL(rows, 1) : FC_TAPS_CALL(rows, 0);
#undef FC_TAPS_CALL
}

/* Output rows and columns where every tap reads inside the image (empty
 * unless the kernel has few rows for conv_dw_taps and whole channel blocks). */
FC_TARGET static fc_interior FC_FN(dw_interior)(const fc_conv_geom *g)
{
    fc_interior in = {0, 0, 0, 0};
    /* (A depth axis, rank 3, always takes conv_dw_range.) */
    if (g->kh * g->kw * g->c_in > FC_TAPS || g->c_out < FC_CB || g->kd != 1 || g->d != 1 ||
        g->od != 1)
        return in;
    int64_t lo, hi;
    for (int64_t oh = 0; oh < g->oh; ++oh) {
        fc_tap_range(oh * g->stride_h - g->pad_top, g->dil_h, g->kh, g->h, &lo, &hi);
        if (lo == 0 && hi == g->kh) {
            if (in.oh_a == in.oh_b)
                in.oh_a = oh;
            in.oh_b = oh + 1;
        }
    }
    for (int64_t ow = 0; ow < g->ow; ++ow) {
        fc_tap_range(ow * g->stride_w - g->pad_left, g->dil_w, g->kw, g->w, &lo, &hi);
        if (lo == 0 && hi == g->kw) {
            if (in.ow_a == in.ow_b)
                in.ow_a = ow;
            in.ow_b = ow + 1;
        }
    }
    if (in.ow_a == in.ow_b)
        in.oh_b = in.oh_a;
    return in;
}

/* db[co] = sum of dy[q, co] over the output pixels q in [q_begin, q_end), in
 * q order, added to the stored values when `accumulate`. Up to FC_DB_VECS
 * vectors of channels are summed in registers at a time, so each pixel's
 * channels are read together and no sum goes through memory per pixel. */
#define FC_DB_VECS 8
FC_TARGET static void FC_FN(bias_gradient)(const fc_conv_geom *g, const FC_T *dy, FC_T *db,
                                           int64_t q_begin, int64_t q_end, int accumulate)
{
    typedef FC_FN(vec) vec;
    const int64_t cout = g->c_out, c_vec = cout - cout % FC_VL;
    for (int64_t co0 = 0; co0 < c_vec; co0 += FC_DB_VECS * FC_VL) {
        const int nv = (int)((c_vec - co0) / FC_VL < FC_DB_VECS ? (c_vec - co0) / FC_VL
                                                                  : FC_DB_VECS);
        vec acc[FC_DB_VECS] = {{0}};
        if (accumulate)
            for (int v = 0; v < nv; ++v)
                acc[v] = *(const vec *)(db + co0 + v * FC_VL);
        for (int64_t q = q_begin; q < q_end; ++q) {
            const FC_T *dyq = dy + q * cout + co0;
#pragma GCC unroll 8
            for (int v = 0; v < FC_DB_VECS; ++v)
                if (v < nv)
                    acc[v] += *(const vec *)(dyq + v * FC_VL);
        }
#pragma GCC unroll 8
        for (int v = 0; v < FC_DB_VECS; ++v)
            if (v < nv)
                *(vec *)(db + co0 + v * FC_VL) = acc[v];
    }
    for (int64_t co = c_vec; co < cout; ++co) {
        FC_T acc = accumulate ? db[co] : (FC_T)0;
        for (int64_t q = q_begin; q < q_end; ++q)
            acc += dy[q * cout + co];
        db[co] = acc;
    }
}

/* Output rows per tile of the weight gradient (conv_dw_range and
 * conv2d_backward_weight_blocks): the x and dy rows a tile reads stay in a
 * core's L2 cache (about FC_DW_TILE_BYTES of them) while every tap and
 * channel block sums over them. At least one row. */
#define FC_DW_TILE_BYTES (192 * 1024)

FC_TARGET static inline int64_t FC_FN(dw_tile_rows)(const fc_conv_geom *g)
{
    const int64_t row_bytes = (g->stride_h * g->stride_d * g->w * g->c_in + g->ow * g->c_out) *
                              (int64_t)sizeof(FC_T);
    const int64_t tile = FC_DW_TILE_BYTES / (row_bytes > 0 ? row_bytes : 1);
    return tile < 1 ? 1 : tile;
}

/* dw over the images [n_begin, n_end), every tap's pixels outside the
 * `interior` rectangle (all of them when it is empty): the blocked channels
 * through conv_dw_block, added to the stored values when `add_blocks`; the
 * channel tail by the plain loop, added when `add_tails`. The output rows
 * go tile by tile, each tile through every tap and block, each element's
 * running sum kept in dw between tiles: the same additions in the same
 * order as one pass over all rows, so the same bits. */
FC_TARGET static void FC_FN(conv_dw_range)(const fc_conv_geom *g, const FC_T *x,
                                           const FC_T *dy, FC_T *dw, int64_t n_begin,
                                           int64_t n_end, const fc_interior *interior,
                                           int add_blocks, int add_tails)
{
    const int64_t cin = g->c_in, cout = g->c_out;
    const int64_t co_blocked = cout - cout % FC_CB;
    const int64_t tile = FC_FN(dw_tile_rows)(g);
    const int64_t rows_per_image = g->od * g->oh;
    const int64_t r_first = n_begin * rows_per_image, r_last = n_end * rows_per_image;
    if (!add_tails && co_blocked < cout)
        for (int64_t e = 0; e < g->kd * g->kh * g->kw * cin; ++e)
            for (int64_t co = co_blocked; co < cout; ++co)
                dw[e * cout + co] = (FC_T)0;
    /* (With no rows, one empty tile still writes the blocks' zeros.) */
    for (int64_t r0 = r_first; r0 < r_last || r0 == r_first; r0 += tile) {
        const int64_t r1 = r0 + tile < r_last ? r0 + tile : r_last;
        const int add = add_blocks || r0 > r_first ? FC_DW_CONTINUE : FC_DW_WRITE;
        for (int64_t t = 0; t < g->kd; ++t) {
            /* output planes / rows / columns whose tap (t, i, j) reads inside */
            int64_t od_lo, od_hi;
            fc_tap_range(t * g->dil_d - g->pad_front, g->stride_d, g->od, g->d, &od_lo, &od_hi);
            for (int64_t i = 0; i < g->kh; ++i) {
                int64_t oh_lo, oh_hi;
                fc_tap_range(i * g->dil_h - g->pad_top, g->stride_h, g->oh, g->h, &oh_lo,
                             &oh_hi);
                for (int64_t j = 0; j < g->kw; ++j) {
                    int64_t ow_lo, ow_hi;
                    fc_tap_range(j * g->dil_w - g->pad_left, g->stride_w, g->ow, g->w, &ow_lo,
                                 &ow_hi);
                    FC_T *dwp = dw + ((t * g->kh + i) * g->kw + j) * cin * cout;
                    for (int64_t ci0 = 0; ci0 < cin; ci0 += FC_CIB) {
                        const int cib = (int)(cin - ci0 < FC_CIB ? cin - ci0 : FC_CIB);
                        for (int64_t co0 = 0; co0 < co_blocked; co0 += FC_CB)
                            FC_FN(conv_dw_block)(g, x, dy, dw, r0, r1, t, od_lo, od_hi, i, j,
                                                 oh_lo, oh_hi, ow_lo, ow_hi, ci0, cib, co0,
                                                 interior, add);
                    }
                    if (co_blocked == cout)
                        continue;
                    /* The channels the blocks do not cover, by the plain loop. */
                    for (int64_t r = r0; r < r1; ++r) {
                        const int64_t oh = r % g->oh, od = r / g->oh % g->od;
                        const int64_t n = r / rows_per_image;
                        if (oh < oh_lo || oh >= oh_hi || od < od_lo || od >= od_hi)
                            continue;
                        const int64_t id = od * g->stride_d - g->pad_front + t * g->dil_d;
                        const int64_t ih = oh * g->stride_h - g->pad_top + i * g->dil_h;
                        for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
                            const int64_t iw = ow * g->stride_w - g->pad_left + j * g->dil_w;
                            const FC_T *xp = x + fc_in_pixel(g, n, id, ih, iw) * cin;
                            const FC_T *dyp = dy + fc_out_pixel_index(g, n, od, oh, ow) * cout;
                            for (int64_t ci = 0; ci < cin; ++ci)
                                FC_FN(axpy)(cout - co_blocked, xp[ci], dyp + co_blocked,
                                            dwp + ci * cout + co_blocked);
                        }
                    }
                }
            }
        }
        if (r0 >= r_last)
            break;
    }
}

/* Blocks of dw that conv2d_backward_weight_blocks shares out: (tap,
 * input-channel block, output-channel block), output channels fastest; 0
 * when that split does not apply (output channels in no whole number of
 * blocks, or a kernel whose rows conv_dw_taps sums). */
FC_TARGET static int64_t FC_FN(dw_block_count)(const fc_conv_geom *g)
{
    const fc_interior interior = FC_FN(dw_interior)(g);
    if (g->c_out < FC_CB || g->c_out % FC_CB || interior.oh_a < interior.oh_b)
        return 0;
    return g->kd * g->kh * g->kw * ((g->c_in + FC_CIB - 1) / FC_CIB) * (g->c_out / FC_CB);
}

/* Share `part` of `parts` of dw (KD, KH, KW, C_in, C_out) over the images
 * [0, g->n) in n_chunks chunks, chunk c holding images [n * c / n_chunks,
 * n * (c + 1) / n_chunks): the bits conv2d_backward_weight over each chunk,
 * then fc_sum_parts in chunk order, give. A share is a range of whole blocks
 * (dw_block_count of them in all). Chunk by chunk, every block of the share
 * sums its pixels in registers and adds the result to dw at once, so no
 * chunk's partial sums of the whole of dw go through memory, and a chunk's
 * rows stay in cache while the share's blocks go over them. A chunk of more
 * rows than one tile keeps its running sums in `scratch` (as many elements
 * as dw; a share touches its own blocks' elements only) between tiles. */
FC_TARGET static void FC_FN(conv2d_backward_weight_blocks)(const fc_conv_geom *g,
                                                           const FC_T *x, const FC_T *dy,
                                                           FC_T *dw, FC_T *scratch,
                                                           int64_t n_chunks, int64_t part,
                                                           int64_t parts)
{
    const int64_t cin = g->c_in, cout = g->c_out;
    const int64_t ci_blocks = (cin + FC_CIB - 1) / FC_CIB, co_blocks = cout / FC_CB;
    const int64_t blocks = FC_FN(dw_block_count)(g);
    const int64_t b_lo = blocks * part / parts, b_hi = blocks * (part + 1) / parts;
    const fc_interior none = {0, 0, 0, 0};
    const int64_t tile = FC_FN(dw_tile_rows)(g);
    const int64_t rows_per_image = g->od * g->oh;
    for (int64_t c = 0; c < n_chunks && b_lo < b_hi; ++c) {
        const int64_t r_first = g->n * c / n_chunks * rows_per_image;
        const int64_t r_last = g->n * (c + 1) / n_chunks * rows_per_image;
        const int one_tile = r_last - r_first <= tile;
        FC_T *sums = one_tile ? dw : scratch;
        for (int64_t r0 = r_first; r0 < r_last; r0 += tile) {
            const int64_t r1 = r0 + tile < r_last ? r0 + tile : r_last;
            const int mode = one_tile ? (c ? FC_DW_FOLD : FC_DW_WRITE)
                                      : (r0 > r_first ? FC_DW_CONTINUE : FC_DW_WRITE);
            for (int64_t b = b_lo; b < b_hi; ++b) {
                const int64_t co0 = b % co_blocks * FC_CB, ci0 = b / co_blocks % ci_blocks * FC_CIB;
                const int64_t tap = b / (co_blocks * ci_blocks);
                const int64_t t = tap / (g->kh * g->kw), i = tap / g->kw % g->kh, j = tap % g->kw;
                int64_t od_lo, od_hi, oh_lo, oh_hi, ow_lo, ow_hi;
                fc_tap_range(t * g->dil_d - g->pad_front, g->stride_d, g->od, g->d, &od_lo, &od_hi);
                fc_tap_range(i * g->dil_h - g->pad_top, g->stride_h, g->oh, g->h, &oh_lo, &oh_hi);
                fc_tap_range(j * g->dil_w - g->pad_left, g->stride_w, g->ow, g->w, &ow_lo, &ow_hi);
                FC_FN(conv_dw_block)(g, x, dy, sums, r0, r1, t, od_lo, od_hi, i, j, oh_lo, oh_hi,
                                     ow_lo, ow_hi, ci0, (int)(cin - ci0 < FC_CIB ? cin - ci0 : FC_CIB),
                                     co0, &none, mode);
            }
        }
        if (one_tile)
            continue;
        for (int64_t b = b_lo; b < b_hi; ++b) { /* the chunk's sums, folded in */
            const int64_t co0 = b % co_blocks * FC_CB, ci0 = b / co_blocks % ci_blocks * FC_CIB;
            const int64_t ci_end = ci0 + FC_CIB < cin ? ci0 + FC_CIB : cin;
            const int64_t first = (b / (co_blocks * ci_blocks) * cin + ci0) * cout + co0;
            for (int64_t e = first; e < first + (ci_end - ci0) * cout; e += cout)
                for (int64_t co = e; co < e + FC_CB; ++co)
                    dw[co] = c ? dw[co] + scratch[co] : scratch[co];
        }
    }
}

/* Weight and bias gradients summed over the images [n_begin, n_end), written
 * to dw (KH, KW, C_in, C_out) or NULL and db (C_out,) or NULL, or added to
 * them when `accumulate`. x (N, H, W, C_in), dy (N, OH, OW, C_out).
 * Output channels in whole blocks of FC_CB go through conv_dw_block (after
 * conv_dw_taps has summed the interior pixels, for kernels with few rows);
 * the rest through the plain loop. Every element sums its terms image after
 * image in a fixed order (with conv_dw_taps, each image's interior then its
 * border), so summing the images in several calls with `accumulate` gives
 * the same bits as one call over all of them. */
FC_TARGET static void FC_FN(conv2d_backward_weight)(const fc_conv_geom *g, const FC_T *x,
                                                    const FC_T *dy, FC_T *dw, FC_T *db,
                                                    int64_t n_begin, int64_t n_end,
                                                    int accumulate)
{
    const int64_t cout = g->c_out;
    const fc_interior interior = FC_FN(dw_interior)(g);
    /* Every pixel interior and no channel tail: conv_dw_taps sums every
     * pixel, in order, db with it, and nothing is left for conv_dw_range. */
    const int all_interior = dw && n_begin < n_end && interior.oh_a == 0 &&
                             interior.oh_b == g->oh && interior.ow_a == 0 &&
                             interior.ow_b == g->ow && cout % FC_CB == 0;
    if (db && !all_interior)
        FC_FN(bias_gradient)(g, dy, db, n_begin * g->od * g->oh * g->ow,
                             n_end * g->od * g->oh * g->ow, accumulate);
    if (!dw)
        return;
    if (interior.oh_a == interior.oh_b || n_begin == n_end) {
        /* (With no image, conv_dw_range still writes the zeros.) */
        FC_FN(conv_dw_range)(g, x, dy, dw, n_begin, n_end, &interior, accumulate, accumulate);
        return;
    }
    for (int64_t n = n_begin; n < n_end; ++n) {
        const int add = accumulate || n > n_begin;
        for (int64_t co0 = 0; co0 < cout - cout % FC_CB; co0 += FC_CB)
            FC_FN(conv_dw_taps)(g, x, dy, dw, all_interior ? db : NULL, n, &interior, co0, add);
        if (!all_interior)
            FC_FN(conv_dw_range)(g, x, dy, dw, n, n + 1, &interior, 1, add);
    }
}

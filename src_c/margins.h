/* margins.h - zero padding and cropping: one array copied into another,
 * shifted along each spatial axis, zeros where nothing lands (see margins.c).
 *
 * src (n, sd, sh, sw, pixel) and dst (n, d, h, w, pixel), C-contiguous,
 * where a pixel is the `pixel` bytes of one position's channels; ranks 1 and
 * 2 are rank 3 with leading sizes 1. dst[n, i, j, k] = src[n, i - od,
 * j - oh, k - ow] where that is inside src, else zero bytes. Zero padding
 * shifts by the padding before each axis (its gradient by minus it);
 * cropping by minus the cropping (its gradient by plus it).
 */
#ifndef FC_MARGINS_H
#define FC_MARGINS_H
#include "fc_common.h"

typedef struct {
    int64_t n, d, h, w;    /* dst */
    int64_t sd, sh, sw;    /* src spatial sizes */
    int64_t od, oh, ow;    /* shift of src within dst, per axis (negative: src cut) */
    int64_t pixel;         /* bytes of one position's channels */
    int stream;            /* write dst with streaming stores (fc_stream.h) */
} fc_shift_geom;

/* dst rows [row_begin, row_end) of the n * d * h rows. */
void fc_shift_rows(void *dst, const void *src, const fc_shift_geom *g, int64_t row_begin,
                   int64_t row_end);
#endif

/* fc_stream.h - copies and zero fills that bypass the cache, for outputs too
 * large to stay in it.
 *
 * A plain store to memory first reads the cache line it lands in (a read for
 * ownership), so writing an output the size of a large array moves twice its
 * bytes; a non-temporal (streaming) store moves them once, as memcpy does
 * for large copies. It pays off only when the data would leave the cache
 * anyway: kernels stream when their whole output is at least
 * FC_STREAM_MIN_BYTES (a quarter of a 32 MB L3, where this machine class's
 * copies fall to memory speed) and must call fc_stream_fence before they
 * return, so that the streamed bytes are visible to the other threads after
 * the parallel region. x86 with SSE2 only; elsewhere plain memcpy / memset.
 */
#ifndef FC_STREAM_H
#define FC_STREAM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define FC_STREAM_MIN_BYTES ((int64_t)8 << 20)

/* The bytes before dst reaches a cache line boundary (at most n): the
 * streaming stores then write whole lines only (a partly written line
 * costs a memory round trip of its own). */
static inline size_t fc_stream_head(const void *dst, size_t n)
{
    const size_t head = (64 - ((uintptr_t)dst & 63)) & 63;
    return head < n ? head : n;
}

static inline void fc_stream_copy(void *dst, const void *src, size_t n)
{
#if defined(__SSE2__)
    char *d = (char *)dst;
    const char *s = (const char *)src;
    const size_t head = fc_stream_head(d, n);
    memcpy(d, s, head);
    d += head;
    s += head;
    n -= head;
    for (; n >= 64; n -= 64, d += 64, s += 64) {
        const __m128i a = _mm_loadu_si128((const __m128i *)s);
        const __m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
        const __m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
        const __m128i e = _mm_loadu_si128((const __m128i *)(s + 48));
        _mm_stream_si128((__m128i *)d, a);
        _mm_stream_si128((__m128i *)(d + 16), b);
        _mm_stream_si128((__m128i *)(d + 32), c);
        _mm_stream_si128((__m128i *)(d + 48), e);
    }
    memcpy(d, s, n);
#else
    memcpy(dst, src, n);
#endif
}

static inline void fc_stream_zero(void *dst, size_t n)
{
#if defined(__SSE2__)
    char *d = (char *)dst;
    const size_t head = fc_stream_head(d, n);
    memset(d, 0, head);
    d += head;
    n -= head;
    const __m128i z = _mm_setzero_si128();
    for (; n >= 64; n -= 64, d += 64) {
        _mm_stream_si128((__m128i *)d, z);
        _mm_stream_si128((__m128i *)(d + 16), z);
        _mm_stream_si128((__m128i *)(d + 32), z);
        _mm_stream_si128((__m128i *)(d + 48), z);
    }
    memset(d, 0, n);
#else
    memset(dst, 0, n);
#endif
}

/* Orders this thread's streaming stores before its later stores. */
static inline void fc_stream_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}
#endif

// Writing results that only a later pass reads back: non-temporal stores skip reading each destination line from
// memory first (what a plain store does) and leave the caches to the data in use.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include <stdint.h>

#include "lanes.h"

__attribute__((target("avx512f")))
void stream_copy_avx512(float *out, const float *from, size_t n) {
    size_t i = 0;
    // Plain stores up to the destination's first 64-byte boundary, whole lines streamed from there, the rest plain.
    const size_t offset = ((uintptr_t)out & 63) / sizeof(float);
    if (offset) {
        i = 16 - offset < n ? 16 - offset : n;
        const __mmask16 k = first_lanes(i);
        _mm512_mask_storeu_ps(out, k, _mm512_maskz_loadu_ps(k, from));
    }
    for (; i + 16 <= n; i += 16) _mm512_stream_ps(out + i, _mm512_loadu_ps(from + i));
    if (i < n) {
        const __mmask16 k = first_lanes(n - i);
        _mm512_mask_storeu_ps(out + i, k, _mm512_maskz_loadu_ps(k, from + i));
    }
    _mm_sfence();  // the streamed stores are visible before another thread reads them
}

#else

void stream_copy_avx512(float *out, const float *from, size_t n) {
    (void)out; (void)from; (void)n;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}

#endif

// Transposed copies for the small products (`SmallProduct512`): op(B) = Bᵀ read as 16 x 16 blocks and turned with
// register shuffles, instead of one scalar load and store per element down a column.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f")))

/// Transposes the 16 rows in place: afterwards r[i][j] is the former r[j][i].
TARGET static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

TARGET void transpose_pack_avx512(const float *b, size_t ldb, size_t rows, size_t depth, float *packed, size_t stride) {
    for (size_t j0 = 0; j0 < stride; j0 += 16) {
        for (size_t p0 = 0; p0 < depth; p0 += 16) {
            const size_t depths = depth - p0 < 16 ? depth - p0 : 16;
            const __mmask16 k = depths == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << depths) - 1);
            __m512 r[16];
            for (size_t i = 0; i < 16; i++) {
                r[i] = j0 + i < rows ? _mm512_maskz_loadu_ps(k, b + (j0 + i) * ldb + p0) : _mm512_setzero_ps();
            }
            transpose16(r);
            for (size_t q = 0; q < depths; q++) _mm512_storeu_ps(packed + (p0 + q) * stride + j0, r[q]);
        }
    }
}

#else

void transpose_pack_avx512(const float *b, size_t ldb, size_t rows, size_t depth, float *packed, size_t stride) {
    (void)b; (void)ldb; (void)rows; (void)depth; (void)packed; (void)stride;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}

#endif

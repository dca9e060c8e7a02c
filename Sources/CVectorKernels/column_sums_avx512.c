// Column sums of a row-major block on AVX-512 intrinsics: the bias gradient of a linear layer, summed over its
// rows. Swift's loop reloads and stores its running sums every row; here 64 columns' sums stay in registers for
// the whole height. Each column is still summed from zero in row order, so the bits are the portable loop's.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
void column_sums_avx512(const float *x, size_t rows, size_t columns, size_t row_stride, float *out) {
    for (size_t first = 0; first < columns; first += 64) {
        const size_t width = columns - first < 64 ? columns - first : 64;
        // Lanes past the last column are neither read nor written.
        __mmask16 k[4];
        for (int part = 0; part < 4; part++) {
            const size_t start = (size_t)part * 16;
            const size_t lanes = width > start ? (width - start < 16 ? width - start : 16) : 0;
            k[part] = lanes == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
        }
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
        const float *line = x + first;
        for (size_t r = 0; r < rows; r++, line += row_stride) {
            s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(k[0], line));
            s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(k[1], line + 16));
            s2 = _mm512_add_ps(s2, _mm512_maskz_loadu_ps(k[2], line + 32));
            s3 = _mm512_add_ps(s3, _mm512_maskz_loadu_ps(k[3], line + 48));
        }
        _mm512_mask_storeu_ps(out + first, k[0], s0);
        _mm512_mask_storeu_ps(out + first + 16, k[1], s1);
        _mm512_mask_storeu_ps(out + first + 32, k[2], s2);
        _mm512_mask_storeu_ps(out + first + 48, k[3], s3);
    }
}

#else

void column_sums_avx512(const float *x, size_t rows, size_t columns, size_t row_stride, float *out) {
    (void)x; (void)rows; (void)columns; (void)row_stride; (void)out;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}

#endif

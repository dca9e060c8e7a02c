// Attention's softmax backward rows on AVX-512 intrinsics: the portable loop's arithmetic in its order (the row's dot
// product in RowMath.dot's two 8-lane partial sums over blocks of 16, their lanes added in RowMath.horizontalSum's
// order, then the scalar tail), compiled without contraction, so the same bits.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include "lanes.h"

#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq")))

TARGET void softmax_backward_rows_avx512(const float *probabilities, const float *weights, float *gradient, size_t rows,
                                         size_t count, float scale) {
    const __m512 scales = _mm512_set1_ps(scale);
    for (size_t row = 0; row < rows; row++) {
        const float *p = probabilities + row * count, *w = weights + row * count;
        float *d = gradient + row * count;
        __m512 lanes = _mm512_setzero_ps();
        size_t i = 0;
        for (; i + 16 <= count; i += 16) lanes = _mm512_add_ps(lanes, _mm512_mul_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(d + i)));
        float dot = ordered_sum16(lanes);
        for (; i < count; i++) dot += w[i] * d[i];
        const __m512 dots = _mm512_set1_ps(dot);
        for (size_t j = 0; j < count; j += 16) {
            const __mmask16 k = first_lanes(count - j);
            // (w * d - p * dot) * scale
            const __m512 wd = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + j), _mm512_maskz_loadu_ps(k, d + j));
            const __m512 centred = _mm512_sub_ps(wd, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + j), dots));
            _mm512_mask_storeu_ps(d + j, k, _mm512_mul_ps(centred, scales));
        }
    }
}

#else

void softmax_backward_rows_avx512(const float *probabilities, const float *weights, float *gradient, size_t rows,
                                  size_t count, float scale) {
    (void)probabilities; (void)weights; (void)gradient; (void)rows; (void)count; (void)scale;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}

#endif

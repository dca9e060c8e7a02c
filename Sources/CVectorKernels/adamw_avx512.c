// AdamW's per-element update on AVX-512 intrinsics: C, because Swift's SIMD square root is not vectorized.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
void adamw_update_avx512(float *p, const float *g, float *m, float *v, size_t count, float beta1, float beta2,
                         float correction1, float correction2, float learning_rate, float epsilon, float decay, int scaled,
                         float scale) {
    const __m512 s = _mm512_set1_ps(scale), zero = _mm512_setzero_ps();
    const __m512 b1 = _mm512_set1_ps(beta1), b2 = _mm512_set1_ps(beta2);
    const __m512 one_minus_b1 = _mm512_set1_ps(1 - beta1), one_minus_b2 = _mm512_set1_ps(1 - beta2);
    const __m512 c1 = _mm512_set1_ps(correction1), c2 = _mm512_set1_ps(correction2);
    const __m512 lr = _mm512_set1_ps(learning_rate), eps = _mm512_set1_ps(epsilon), d = _mm512_set1_ps(decay);
    for (size_t i = 0; i < count; i += 16) {
        // The last vector reads and writes only the elements that exist.
        const __mmask16 k = count - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        const __m512 loaded = _mm512_maskz_loadu_ps(k, g + i);
        // Clipping's `g * scale + 0` (the + 0 turns a -0 into +0), as `GradientClipping` would have written it.
        const __m512 gi = scaled ? _mm512_add_ps(_mm512_mul_ps(loaded, s), zero) : loaded;
        // m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + ((1 - beta2) * g) * g
        const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(one_minus_b1, gi));
        const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)),
                                        _mm512_mul_ps(_mm512_mul_ps(one_minus_b2, gi), gi));
        // p = p * decay - (lr * (m / c1)) / (sqrt(v / c2) + eps)
        const __m512 step = _mm512_div_ps(_mm512_mul_ps(lr, _mm512_div_ps(mi, c1)),
                                          _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vi, c2)), eps));
        const __m512 pi = _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), d), step);
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(p + i, k, pi);
    }
}

#else

void adamw_update_avx512(float *p, const float *g, float *m, float *v, size_t count, float beta1, float beta2,
                         float correction1, float correction2, float learning_rate, float epsilon, float decay, int scaled,
                         float scale) {
    (void)p; (void)g; (void)m; (void)v; (void)count; (void)beta1; (void)beta2; (void)correction1; (void)correction2;
    (void)learning_rate; (void)epsilon; (void)decay; (void)scaled; (void)scale;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}

#endif

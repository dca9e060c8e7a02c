// PReLU with one shared slope (`sharedSlopePReLU`), forward and backward over one block, on AVX-512 intrinsics. The
// element-wise results are the portable loops' (the same operations per element); the backward pass's slope sum keeps
// their eight lanes over steps of eight elements, a zero added for each positive input, the lanes added in order and
// then the scalar tail, so the bits are theirs too (compiled without contraction). Results are stored plainly: the
// product that reads them next finds much of them in the last-level cache. (Staged in L1 and streamed out with
// non-temporal stores instead, the feed-forward PReLUs of a QD-DETR b32 step took about 3 ms more on the Zen 4 of
// `bench train-step --profile`.)
#include "vector_kernels.h"

#if defined(__x86_64__)
#include "lanes.h"

#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq")))

TARGET void prelu_forward_avx512(const float *x, const float *mask, size_t n, float slope, float *target) {
    const __m512 a = _mm512_set1_ps(slope), zero = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = first_lanes(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        const __mmask16 positive = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        __m512 y = _mm512_mask_mov_ps(_mm512_mul_ps(a, v), positive, v);
        if (mask) y = _mm512_mul_ps(y, _mm512_maskz_loadu_ps(k, mask + i));
        _mm512_mask_storeu_ps(target + i, k, y);
    }
}

TARGET float prelu_backward_avx512(const float *x, const float *gradient, const float *mask, size_t n, float slope,
                                   float *target) {
    const __m512 a = _mm512_set1_ps(slope), zero = _mm512_setzero_ps();
    __m256 lanes = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        __m512 g = _mm512_loadu_ps(gradient + i);
        if (mask) g = _mm512_mul_ps(g, _mm512_loadu_ps(mask + i));
        const __mmask16 positive = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        _mm512_storeu_ps(target + i, _mm512_mask_mov_ps(_mm512_mul_ps(a, g), positive, g));
        const __m512 terms = _mm512_mask_mov_ps(_mm512_mul_ps(g, v), positive, zero);
        lanes = _mm256_add_ps(lanes, _mm512_castps512_ps256(terms));
        lanes = _mm256_add_ps(lanes, _mm512_extractf32x8_ps(terms, 1));
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i), zero8 = _mm256_setzero_ps();
        __m256 g = _mm256_loadu_ps(gradient + i);
        if (mask) g = _mm256_mul_ps(g, _mm256_loadu_ps(mask + i));
        const __mmask8 positive = _mm256_cmp_ps_mask(v, zero8, _CMP_GT_OQ);
        _mm256_storeu_ps(target + i, _mm256_mask_mov_ps(_mm256_mul_ps(_mm512_castps512_ps256(a), g), positive, g));
        lanes = _mm256_add_ps(lanes, _mm256_mask_mov_ps(_mm256_mul_ps(g, v), positive, zero8));
    }
    float values[8];
    _mm256_storeu_ps(values, lanes);
    float total = -0.0f;
    for (int lane = 0; lane < 8; lane++) total += values[lane];
    for (; i < n; i++) {
        const float v = x[i], g = mask ? gradient[i] * mask[i] : gradient[i];
        target[i] = v > 0 ? g : slope * g;
        total += v > 0 ? 0.0f : g * v;
    }
    return total;
}

#else

void prelu_forward_avx512(const float *x, const float *mask, size_t n, float slope, float *out) {
    (void)x; (void)mask; (void)n; (void)slope; (void)out;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}
float prelu_backward_avx512(const float *x, const float *gradient, const float *mask, size_t n, float slope, float *out) {
    (void)x; (void)gradient; (void)mask; (void)n; (void)slope; (void)out;
    __builtin_trap();
}

#endif

// Layer normalisation rows on AVX-512 intrinsics. Swift's portable rows (`LayerNormKernel`, `RowMath`) run on the
// baseline x86-64 vectors; these do the same arithmetic on wider ones. Every sum keeps the portable lanes and order
// (two 8-lane partial sums over blocks of 16 for a row's mean and variance, one 8-lane sum over blocks of 8 in the
// backward pass, the lanes added in RowMath.horizontalSum's order, then the scalar tail), and the file is compiled
// without contraction, so the bits are the portable rows'.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include <math.h>

#include "lanes.h"

#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq")))

/// LayerNormKernel.moments: mean and 1 / sqrt(variance + epsilon) of one row.
TARGET static inline void moments(const float *x, size_t n, float epsilon, float *mean, float *reciprocal_std) {
    __m512 lanes = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) lanes = _mm512_add_ps(lanes, _mm512_loadu_ps(x + i));
    float total = ordered_sum16(lanes);
    for (; i < n; i++) total += x[i];
    const float mu = total / (float)n;
    const __m512 m = _mm512_set1_ps(mu);
    lanes = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        const __m512 centred = _mm512_sub_ps(_mm512_loadu_ps(x + i), m);
        lanes = _mm512_add_ps(lanes, _mm512_mul_ps(centred, centred));
    }
    float squares = ordered_sum16(lanes);
    for (; i < n; i++) {
        const float centred = x[i] - mu;
        squares += centred * centred;
    }
    *mean = mu;
    *reciprocal_std = 1.0f / sqrtf(squares / (float)n + epsilon);
}

TARGET void layer_norm_row_avx512(const float *x, size_t n, float epsilon, const float *gamma, const float *beta,
                                  const float *mask, float *out, float *mean, float *reciprocal_std) {
    float mu, rstd;
    moments(x, n, epsilon, &mu, &rstd);
    *mean = mu;
    *reciprocal_std = rstd;
    const __m512 m = _mm512_set1_ps(mu), r = _mm512_set1_ps(rstd);
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 k = first_lanes(n - j);
        // ((x - mean) * rstd * gamma + beta) * mask, in that order.
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), m), r),
                                 _mm512_maskz_loadu_ps(k, gamma + j));
        y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(k, beta + j));
        if (mask) y = _mm512_mul_ps(y, _mm512_maskz_loadu_ps(k, mask + j));
        _mm512_mask_storeu_ps(out + j, k, y);
    }
}

TARGET float layer_norm_residual_row_avx512(const float *x, const float *sublayer, const float *mask, size_t n,
                                            float epsilon, const float *gamma, const float *beta, float *normalized,
                                            float *out) {
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 k = first_lanes(n - j);
        __m512 added = _mm512_maskz_loadu_ps(k, sublayer + j);
        if (mask) added = _mm512_mul_ps(added, _mm512_maskz_loadu_ps(k, mask + j));
        _mm512_mask_storeu_ps(normalized + j, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + j), added));
    }
    float mu, rstd;
    moments(normalized, n, epsilon, &mu, &rstd);
    const __m512 m = _mm512_set1_ps(mu), r = _mm512_set1_ps(rstd);
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 k = first_lanes(n - j);
        const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, normalized + j), m), r);
        _mm512_mask_storeu_ps(normalized + j, k, xhat);
        _mm512_mask_storeu_ps(out + j, k, _mm512_add_ps(_mm512_mul_ps(xhat, _mm512_maskz_loadu_ps(k, gamma + j)),
                                                         _mm512_maskz_loadu_ps(k, beta + j)));
    }
    return rstd;
}

TARGET void layer_norm_normalize_avx512(const float *x, size_t n, float mean, float reciprocal_std, float *xhat) {
    const __m512 m = _mm512_set1_ps(mean), r = _mm512_set1_ps(reciprocal_std);
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 k = first_lanes(n - j);
        _mm512_mask_storeu_ps(xhat + j, k, _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), m), r));
    }
}

TARGET void layer_norm_row_backward_avx512(const float *xhat, const float *gradient, const float *gamma,
                                           float reciprocal_std, size_t n, float *out, float *sums) {
    __m256 dxhat_lanes = _mm256_setzero_ps(), product_lanes = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 g = _mm256_loadu_ps(gradient + j), x = _mm256_loadu_ps(xhat + j);
        const __m256 dxhat = _mm256_mul_ps(g, _mm256_loadu_ps(gamma + j));
        dxhat_lanes = _mm256_add_ps(dxhat_lanes, dxhat);
        product_lanes = _mm256_add_ps(product_lanes, _mm256_mul_ps(dxhat, x));
        _mm256_storeu_ps(sums + j, _mm256_add_ps(_mm256_loadu_ps(sums + j), _mm256_mul_ps(g, x)));
        _mm256_storeu_ps(sums + n + j, _mm256_add_ps(_mm256_loadu_ps(sums + n + j), g));
    }
    float mean_dxhat = ordered_sum8(dxhat_lanes), mean_dxhat_xhat = ordered_sum8(product_lanes);
    for (; j < n; j++) {
        const float dxhat = gradient[j] * gamma[j];
        mean_dxhat += dxhat;
        mean_dxhat_xhat += dxhat * xhat[j];
        sums[j] += gradient[j] * xhat[j];
        sums[n + j] += gradient[j];
    }
    mean_dxhat /= (float)n;
    mean_dxhat_xhat /= (float)n;
    const __m512 r = _mm512_set1_ps(reciprocal_std), md = _mm512_set1_ps(mean_dxhat), mp = _mm512_set1_ps(mean_dxhat_xhat);
    for (j = 0; j < n; j += 16) {
        const __mmask16 k = first_lanes(n - j);
        // rstd * (gradient * gamma - mean_dxhat - xhat * mean_dxhat_xhat)
        const __m512 dxhat = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, gradient + j), _mm512_maskz_loadu_ps(k, gamma + j));
        const __m512 centred = _mm512_sub_ps(_mm512_sub_ps(dxhat, md), _mm512_mul_ps(_mm512_maskz_loadu_ps(k, xhat + j), mp));
        _mm512_mask_storeu_ps(out + j, k, _mm512_mul_ps(r, centred));
    }
}

TARGET void layer_norm_parameter_sums_avx512(const float *x, float mean, float reciprocal_std, const float *mask,
                                             const float *gradient, size_t n, float *sums) {
    const __m512 m = _mm512_set1_ps(mean), r = _mm512_set1_ps(reciprocal_std);
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 k = first_lanes(n - j);
        __m512 g = _mm512_maskz_loadu_ps(k, gradient + j);
        if (mask) g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, mask + j), g);
        const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), m), r);
        _mm512_mask_storeu_ps(sums + j, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, sums + j), _mm512_mul_ps(g, xhat)));
        _mm512_mask_storeu_ps(sums + n + j, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, sums + n + j), g));
    }
}

TARGET void multiply_avx512(const float *x, const float *y, size_t n, float *out) {
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 k = first_lanes(n - j);
        _mm512_mask_storeu_ps(out + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), _mm512_maskz_loadu_ps(k, y + j)));
    }
}

#else

void layer_norm_row_avx512(const float *x, size_t n, float epsilon, const float *gamma, const float *beta,
                           const float *mask, float *out, float *mean, float *reciprocal_std) {
    (void)x; (void)n; (void)epsilon; (void)gamma; (void)beta; (void)mask; (void)out; (void)mean; (void)reciprocal_std;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}
float layer_norm_residual_row_avx512(const float *x, const float *sublayer, const float *mask, size_t n, float epsilon,
                                     const float *gamma, const float *beta, float *normalized, float *out) {
    (void)x; (void)sublayer; (void)mask; (void)n; (void)epsilon; (void)gamma; (void)beta; (void)normalized; (void)out;
    __builtin_trap();
}
void layer_norm_normalize_avx512(const float *x, size_t n, float mean, float reciprocal_std, float *xhat) {
    (void)x; (void)n; (void)mean; (void)reciprocal_std; (void)xhat;
    __builtin_trap();
}
void layer_norm_row_backward_avx512(const float *xhat, const float *gradient, const float *gamma, float reciprocal_std,
                                    size_t n, float *out, float *sums) {
    (void)xhat; (void)gradient; (void)gamma; (void)reciprocal_std; (void)n; (void)out; (void)sums;
    __builtin_trap();
}
void layer_norm_parameter_sums_avx512(const float *x, float mean, float reciprocal_std, const float *mask,
                                      const float *gradient, size_t n, float *sums) {
    (void)x; (void)mean; (void)reciprocal_std; (void)mask; (void)gradient; (void)n; (void)sums;
    __builtin_trap();
}
void multiply_avx512(const float *x, const float *y, size_t n, float *out) {
    (void)x; (void)y; (void)n; (void)out;
    __builtin_trap();
}

#endif

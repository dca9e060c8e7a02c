// The blocks of the small products (`SmallProduct512`, attention's per-(sample, head) products) on AVX-512
// intrinsics: the operations of the Swift loops they replace, in the same order (each element a chain of fused
// multiply-adds from zero over the depth, then times alpha; compiled without contraction), with masked stores for a
// block's last columns and B's rows copied with whole vectors.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include "lanes.h"

#define TARGET __attribute__((target("avx512f")))

/// One step of the depth for the eight rows of a block: the eight A values broadcast against `b0` (and `b1`).
#define ROW_STEP2(r) { const __m512 x = _mm512_set1_ps(a##r[offset]); \
    c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0); c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1); }
#define ROW_STEP1(r) { c##r = _mm512_fmadd_ps(_mm512_set1_ps(a##r[offset]), b0, c##r); }

TARGET void small_product_blocks_avx512(size_t m, size_t n, size_t k, const float *a, ptrdiff_t row_stride,
                                        ptrdiff_t depth_stride, const float *b, size_t ldb, float *c, size_t ldc,
                                        float alpha) {
    const __m512 alphas = _mm512_set1_ps(alpha);
    for (size_t row = 0; row < m; row += 8) {
        const size_t rows = m - row < 8 ? m - row : 8;
        // A block of fewer than eight rows reads its missing rows' A from its last row and stores nothing for them.
#define A_ROW(r) (a + (ptrdiff_t)(row + ((r) < rows ? (r) : rows - 1)) * row_stride)
        const float *a0 = A_ROW(0), *a1 = A_ROW(1), *a2 = A_ROW(2), *a3 = A_ROW(3);
        const float *a4 = A_ROW(4), *a5 = A_ROW(5), *a6 = A_ROW(6), *a7 = A_ROW(7);
#undef A_ROW
        size_t column = 0;
        while (column < n) {
            const float *source = b + column;
            float *target = c + row * ldc + column;
            if (n - column > 16) {
                __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
                __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
                ptrdiff_t offset = 0;
                for (size_t p = 0; p < k; p++, offset += depth_stride) {
                    const __m512 b0 = _mm512_loadu_ps(source + p * ldb), b1 = _mm512_loadu_ps(source + p * ldb + 16);
                    ROW_STEP2(0) ROW_STEP2(1) ROW_STEP2(2) ROW_STEP2(3) ROW_STEP2(4) ROW_STEP2(5) ROW_STEP2(6) ROW_STEP2(7)
                }
                const __mmask16 high = first_lanes((n - column < 32 ? n - column : 32) - 16);
#define STORE2(r) if ((r) < rows) { _mm512_storeu_ps(target + (r) * ldc, _mm512_mul_ps(alphas, c##r##0)); \
    _mm512_mask_storeu_ps(target + (r) * ldc + 16, high, _mm512_mul_ps(alphas, c##r##1)); }
                STORE2(0) STORE2(1) STORE2(2) STORE2(3) STORE2(4) STORE2(5) STORE2(6) STORE2(7)
#undef STORE2
                column += 32;
            } else {
                __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
                ptrdiff_t offset = 0;
                for (size_t p = 0; p < k; p++, offset += depth_stride) {
                    const __m512 b0 = _mm512_loadu_ps(source + p * ldb);
                    ROW_STEP1(0) ROW_STEP1(1) ROW_STEP1(2) ROW_STEP1(3) ROW_STEP1(4) ROW_STEP1(5) ROW_STEP1(6) ROW_STEP1(7)
                }
                const __mmask16 lanes = first_lanes(n - column);
#define STORE1(r) if ((r) < rows) _mm512_mask_storeu_ps(target + (r) * ldc, lanes, _mm512_mul_ps(alphas, c##r));
                STORE1(0) STORE1(1) STORE1(2) STORE1(3) STORE1(4) STORE1(5) STORE1(6) STORE1(7)
#undef STORE1
                column += 16;
            }
        }
    }
}

TARGET void pack_rows_avx512(const float *b, size_t ldb, size_t columns, size_t depth, float *packed, size_t stride) {
    for (size_t p = 0; p < depth; p++) {
        const float *source = b + p * ldb;
        float *target = packed + p * stride;
        for (size_t j = 0; j < stride; j += 16) {
            // Lanes past `columns` are loaded as zeros: the padding.
            const __mmask16 lanes = j < columns ? first_lanes(columns - j) : 0;
            _mm512_storeu_ps(target + j, _mm512_maskz_loadu_ps(lanes, source + j));
        }
    }
}

#else

void small_product_blocks_avx512(size_t m, size_t n, size_t k, const float *a, ptrdiff_t row_stride,
                                 ptrdiff_t depth_stride, const float *b, size_t ldb, float *c, size_t ldc, float alpha) {
    (void)m; (void)n; (void)k; (void)a; (void)row_stride; (void)depth_stride; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)alpha;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}

void pack_rows_avx512(const float *b, size_t ldb, size_t columns, size_t depth, float *packed, size_t stride) {
    (void)b; (void)ldb; (void)columns; (void)depth; (void)packed; (void)stride;
    __builtin_trap();
}

#endif

// Lane helpers shared by the AVX-512 kernels of this module (x86-64 only; not part of its public header).
#ifndef CVECTORKERNELS_LANES_H
#define CVECTORKERNELS_LANES_H

#include <immintrin.h>
#include <stddef.h>

/// The first `count` lanes of a 16-lane vector (all of them from 16 on): the mask of a row's last, partial vector.
__attribute__((target("avx512f"))) static inline __mmask16 first_lanes(size_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
}

/// RowMath.horizontalSum's order: ((v0 + v4) + (v1 + v5)) + ((v2 + v6) + (v3 + v7)).
__attribute__((target("avx512f,avx512vl"))) static inline float ordered_sum8(__m256 v) {
    const __m128 pairs = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    return (pairs[0] + pairs[1]) + (pairs[2] + pairs[3]);
}

/// The sum of a 16-lane accumulator whose low lanes hold RowMath's first 8-lane partial sum and whose high lanes its
/// second: the two added, then RowMath.horizontalSum.
__attribute__((target("avx512f,avx512vl,avx512dq"))) static inline float ordered_sum16(__m512 lanes) {
    return ordered_sum8(_mm256_add_ps(_mm512_castps512_ps256(lanes), _mm512_extractf32x8_ps(lanes, 1)));
}

#endif

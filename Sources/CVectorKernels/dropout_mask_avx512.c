// Dropout masks on AVX-512 intrinsics: eight counter hashes per step give 32 mask values. The Swift version moved
// each 64-bit pair of values out of its vector lane by lane; here the keep/drop decisions become one 32-bit mask
// register (the two 16-bit quarters of each 32-bit half interleaved with `pdep`) and two masked moves.
#include "vector_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

__attribute__((target("avx512f,avx512dq,bmi2")))
void dropout_mask_avx512(float *out, ptrdiff_t start, size_t count, uint64_t seed, uint32_t threshold, float keep) {
    if (count == 0) return;
    const ptrdiff_t end = start + (ptrdiff_t)count;
    const __m512i golden = _mm512_set1_epi64((long long)0x9E3779B97F4A7C15ULL);
    const __m512i mix1 = _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ULL);
    const __m512i mix2 = _mm512_set1_epi64((long long)0x94D049BB133111EBULL);
    const __m512i seeds = _mm512_set1_epi64((long long)seed);
    const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i quarter = _mm512_set1_epi32(0xFFFF);
    const __m512i thresholds = _mm512_set1_epi32((int)threshold);
    const __m512 keeps = _mm512_set1_ps(keep);
    // Counters `group ..< group + 8` hold elements `4 * group ..< 4 * group + 32`.
    ptrdiff_t group = (start >> 2) & ~(ptrdiff_t)7;
    // CounterHash.bits: splitmix64 of seed + (counter + 1) * golden, wrapping; kept as a running sum that steps by
    // 8 * golden per 8 counters instead of a multiplication per counter (the same value modulo 2^64).
    __m512i hashed = _mm512_add_epi64(
        _mm512_add_epi64(seeds, _mm512_mullo_epi64(_mm512_add_epi64(_mm512_set1_epi64((long long)group), lanes), golden)),
        golden);
    const __m512i step = _mm512_set1_epi64((long long)(0x9E3779B97F4A7C15ULL * 8));
    for (; group * 4 < end; group += 8, hashed = _mm512_add_epi64(hashed, step)) {
        __m512i z = hashed;
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), mix1);
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), mix2);
        z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
        // As 32-bit lanes, lane j is counter j / 2's low (even j) or high (odd j) half; element 2j is its low
        // quarter, element 2j + 1 its high quarter. An element is kept when its quarter is at least the threshold.
        const __mmask16 lowKept = _mm512_cmpge_epu32_mask(_mm512_and_si512(z, quarter), thresholds);
        const __mmask16 highKept = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(z, 16), thresholds);
        const uint32_t kept = _pdep_u32(lowKept, 0x55555555u) | _pdep_u32(highKept, 0xAAAAAAAAu);
        const __m512 first16 = _mm512_maskz_mov_ps((__mmask16)kept, keeps);
        const __m512 last16 = _mm512_maskz_mov_ps((__mmask16)(kept >> 16), keeps);
        const ptrdiff_t first = group * 4;
        if (first >= start && first + 32 <= end) {
            _mm512_storeu_ps(out + (first - start), first16);
            _mm512_storeu_ps(out + (first - start) + 16, last16);
        } else {
            // A group cut by the range's ends: only its elements inside the range are written.
            float values[32];
            _mm512_storeu_ps(values, first16);
            _mm512_storeu_ps(values + 16, last16);
            const ptrdiff_t from = first > start ? first : start, to = first + 32 < end ? first + 32 : end;
            memcpy(out + (from - start), values + (from - first), (size_t)(to - from) * sizeof(float));
        }
    }
}

#else

void dropout_mask_avx512(float *out, ptrdiff_t start, size_t count, uint64_t seed, uint32_t threshold, float keep) {
    (void)out; (void)start; (void)count; (void)seed; (void)threshold; (void)keep;
    __builtin_trap();  // never called: `GEMM.avx512Available` is false off x86-64
}

#endif

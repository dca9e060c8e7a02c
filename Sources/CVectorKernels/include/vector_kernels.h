#ifndef VECTOR_KERNELS_H
#define VECTOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// One AdamW step over `count` elements with 512-bit vectors; call it only on a CPU with AVX-512F. Each element goes
/// through the operations of the portable loop (`OptimizerKernels.adamWPortable`), in its order and without fused
/// multiply-adds, so the two give the same bits.
void adamw_update_avx512(float *parameters, const float *gradients, float *first_moments, float *second_moments,
                         size_t count, float beta1, float beta2, float correction1, float correction2,
                         float learning_rate, float epsilon, float decay);

/// `out[c] = x[0][c] + x[1][c] + ... + x[rows - 1][c]` for `c < columns`, row `r` starting at `x + r * row_stride`; each
/// column summed from zero in row order, as the portable loop (`Reduction.sum(_:axis:)`) does, so the two give the same
/// bits. Call it only on a CPU with AVX-512F.
void column_sums_avx512(const float *x, size_t rows, size_t columns, size_t row_stride, float *out);

/// Dropout mask values of elements `start ..< start + count` (0, or `keep` where 16-bit quarter `i % 4` of the counter
/// hash of `i / 4` is at least `threshold`) into `out[0 ..< count]`: the bits of the portable loop
/// (`DropoutMask.portableFill`). Call it only on a CPU with AVX-512F, AVX-512DQ and BMI2.
void dropout_mask_avx512(float *out, ptrdiff_t start, size_t count, uint64_t seed, uint32_t threshold, float keep);

#endif

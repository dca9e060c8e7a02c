#ifndef VECTOR_KERNELS_H
#define VECTOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// One AdamW step over `count` elements with 512-bit vectors; call it only on a CPU with AVX-512F. Each element goes
/// through the operations of the portable loop (`OptimizerKernels.adamWPortable`), in its order and without fused
/// multiply-adds, so the two give the same bits. With `scaled` non-zero, each gradient is first taken as
/// `gradient * scale + 0` (gradient clipping's scaling, not written back).
void adamw_update_avx512(float *parameters, const float *gradients, float *first_moments, float *second_moments,
                         size_t count, float beta1, float beta2, float correction1, float correction2,
                         float learning_rate, float epsilon, float decay, int scaled, float scale);

/// `out[c] = x[0][c] + x[1][c] + ... + x[rows - 1][c]` for `c < columns`, row `r` starting at `x + r * row_stride`; each
/// column summed from zero in row order, as the portable loop (`Reduction.sum(_:axis:)`) does, so the two give the same
/// bits. Call it only on a CPU with AVX-512F.
void column_sums_avx512(const float *x, size_t rows, size_t columns, size_t row_stride, float *out);

/// Dropout mask values of elements `start ..< start + count` (0, or `keep` where 16-bit quarter `i % 4` of the counter
/// hash of `i / 4` is at least `threshold`) into `out[0 ..< count]`: the bits of the portable loop
/// (`DropoutMask.portableFill`). Call it only on a CPU with AVX-512F, AVX-512DQ and BMI2.
void dropout_mask_avx512(float *out, ptrdiff_t start, size_t count, uint64_t seed, uint32_t threshold, float keep);

// Layer normalisation rows (`LayerNormKernel`): the portable rows' arithmetic in their order, so the same bits. Call
// them only on a CPU with AVX-512F, AVX-512VL and AVX-512DQ. `mask` may be NULL (no dropout).

/// One row's mean and reciprocal std, and `out = ((x - mean) * rstd * gamma + beta) * mask`.
void layer_norm_row_avx512(const float *x, size_t n, float epsilon, const float *gamma, const float *beta,
                           const float *mask, float *out, float *mean, float *reciprocal_std);

/// `s = x + sublayer * mask`, normalised into `normalized`, and `out = normalized * gamma + beta`; returns the
/// reciprocal std.
float layer_norm_residual_row_avx512(const float *x, const float *sublayer, const float *mask, size_t n, float epsilon,
                                     const float *gamma, const float *beta, float *normalized, float *out);

/// `xhat = (x - mean) * reciprocal_std`.
void layer_norm_normalize_avx512(const float *x, size_t n, float mean, float reciprocal_std, float *xhat);

/// One row of the backward pass: the input gradient into `out`, the row's gamma and beta gradient terms added to
/// `sums` (`[gamma | beta]`, `2 * n`).
void layer_norm_row_backward_avx512(const float *xhat, const float *gradient, const float *gamma, float reciprocal_std,
                                    size_t n, float *out, float *sums);

/// The gamma and beta gradient terms of one row added to `sums`, without the input gradient: `xhat` made from `x`
/// as `layer_norm_normalize_avx512` makes it and the gradient multiplied by `mask` (when not null) as
/// `multiply_avx512` does, in registers.
void layer_norm_parameter_sums_avx512(const float *x, float mean, float reciprocal_std, const float *mask,
                                      const float *gradient, size_t n, float *sums);

/// `out = x * y`, element by element.
void multiply_avx512(const float *x, const float *y, size_t n, float *out);

/// `C = alpha * op(A) * B` (C not read) for `SmallProduct512`: `op(A)` `m x k` at `a[i * row_stride + p *
/// depth_stride]`, B row-major at row stride `ldb` and readable to `n` rounded up to 16 columns. Blocks of 8 rows of C
/// by two vectors of columns, then one; each element the depth-ordered chain of fused multiply-adds from zero, times
/// alpha. Call it only on a CPU with AVX-512F.
void small_product_blocks_avx512(size_t m, size_t n, size_t k, const float *a, ptrdiff_t row_stride,
                                 ptrdiff_t depth_stride, const float *b, size_t ldb, float *c, size_t ldc, float alpha);

/// `packed[p * stride + j] = b[p * ldb + j]` for `j < columns`, zero for `columns <= j < stride` (a multiple of 16),
/// `p < depth`. Call it only on a CPU with AVX-512F.
void pack_rows_avx512(const float *b, size_t ldb, size_t columns, size_t depth, float *packed, size_t stride);

/// `packed[p * stride + j] = b[j * ldb + p]` for `p < depth`, `j < stride` (a multiple of 16, at least `rows`): the
/// first `depth` columns of the `rows` rows of `b`, transposed, each packed row zero past column `rows`. Call it only
/// on a CPU with AVX-512F.
void transpose_pack_avx512(const float *b, size_t ldb, size_t rows, size_t depth, float *packed, size_t stride);

/// PReLU with one shared slope over one block: `out = (x > 0 ? x : slope * x) * mask` (`mask` may be NULL). Call it
/// only on a CPU with AVX-512F, AVX-512VL and AVX-512DQ; the bits are the portable loop's (`sharedSlopePReLU`).
void prelu_forward_avx512(const float *x, const float *mask, size_t n, float slope, float *out);

/// Its backward pass over one block: `g = gradient * mask`, `out = x > 0 ? g : slope * g`; returns the block's share of
/// the slope gradient, the sum of `g * x` over `x <= 0`, in the portable loop's lanes and order.
float prelu_backward_avx512(const float *x, const float *gradient, const float *mask, size_t n, float slope, float *out);

/// Attention's softmax backward through its dropout, row by row: with `dot = sum_j w[j] * d[j]`,
/// `d[j] = (w[j] * d[j] - p[j] * dot) * scale` (`p` the probabilities, `w` the dropped ones, `d` the weights' gradient,
/// overwritten). The portable loop's bits (`AttentionKernel.backward`). Call it only on a CPU with AVX-512F,
/// AVX-512VL and AVX-512DQ.
void softmax_backward_rows_avx512(const float *probabilities, const float *weights, float *gradient, size_t rows,
                                  size_t count, float scale);

#endif

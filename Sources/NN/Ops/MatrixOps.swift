import Tensor

/// `x W^T + b` over the last dimension, as PyTorch's `Linear`: `x` `[..., in]`, `weight`
/// `[out, in]`, `bias` `[out]`, result `[..., out]`. One GEMM forward, two backward, no copies.
public func linear(_ x: Variable, weight: Variable, bias: Variable?) -> Variable {
    let (rows, inFeatures, outFeatures) = linearShapes(x, weight: weight, bias: bias)
    let outShape = Array(x.shape.dropLast()) + [outFeatures]
    let y = Tensor(shape: outShape) { out in
        x.value.withUnsafeBufferPointer { xp in
            weight.value.withUnsafeBufferPointer { wp in
                withOptionalPointer(bias?.value) { bp in
                    GEMM.multiply(m: rows, n: outFeatures, k: inFeatures,
                                  xp.baseAddress!, lda: inFeatures, transposeA: false,
                                  wp.baseAddress!, ldb: inFeatures, transposeB: true,
                                  into: out.baseAddress!, ldc: outFeatures, rowBias: bp)
                }
            }
        }
    }
    let parents = bias.map { [x, weight, $0] } ?? [x, weight]
    return Variable.result(y, parents: parents) { g in
        // On the AVX-512 kernel the bias gradient (g's column sums) is made by the weight gradient's product, which
        // reads g anyway; the same bits as the reduction.
        let fusedBias = bias?.requiresGrad == true && weight.requiresGrad && GEMM.kernel == .avx512 && rows > 0 && inFeatures > 0
        var biasGradient = fusedBias ? Tensor(zeros: [outFeatures]) : nil
        withOptionalMutablePointer(&biasGradient) { sums in
            linearInputAndWeightGradients(g, x: x, weight: weight, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                          columnSums: sums)
        }
        if let bias, bias.requiresGrad {
            bias.accumulateGradient(biasGradient ?? Reduction.sum(g.reshaped([rows, outFeatures]), axis: 0))
        }
    }
}

/// Checks a linear op's operands and returns (rows, in, out).
func linearShapes(_ x: Variable, weight: Variable, bias: Variable?) -> (rows: Int, inFeatures: Int, outFeatures: Int) {
    precondition(weight.value.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    precondition(x.value.rank >= 1 && x.shape.last == inFeatures,
                 "linear: input \(x.shape) does not end in \(inFeatures) (weight \(weight.shape))")
    if let bias { checkSameShape(bias.shape, [outFeatures], "linear bias vs weight \(weight.shape)") }
    return (x.count / Swift.max(inFeatures, 1), inFeatures, outFeatures)
}

/// The backward GEMMs of `x Wᵀ` given the output gradient `g` (`[rows, out]`): `dx = g W` and `dW = gᵀ x`, each only
/// when needed. With `columnSums` (`outFeatures` values, AVX-512 kernel, weight gradient wanted), g's column sums too,
/// made by the weight gradient's product.
func linearInputAndWeightGradients(_ g: Tensor, x: Variable, weight: Variable, rows: Int, inFeatures: Int, outFeatures: Int,
                                   columnSums: UnsafeMutablePointer<Float>? = nil) {
    g.withUnsafeBufferPointer { gp in
        if x.requiresGrad, x.grad != nil, GEMM.addsProductInOneRounding(depth: outFeatures) {
            // x already has a gradient (it feeds several layers): the product adds itself to it, with the bits of
            // `accumulateGradient`'s sum, without a tensor of its own and a pass that adds it.
            weight.value.withUnsafeBufferPointer { wp in
                x.grad!.withUnsafeMutableBufferPointer { out in
                    GEMM.multiply(m: rows, n: inFeatures, k: outFeatures,
                                  gp.baseAddress!, lda: outFeatures, transposeA: false,
                                  wp.baseAddress!, ldb: inFeatures, transposeB: false,
                                  into: out.baseAddress!, ldc: inFeatures, beta: 1)
                }
            }
        } else if x.requiresGrad {
            let dx = Tensor(shape: x.shape) { out in
                weight.value.withUnsafeBufferPointer { wp in
                    GEMM.multiply(m: rows, n: inFeatures, k: outFeatures,
                                  gp.baseAddress!, lda: outFeatures, transposeA: false,
                                  wp.baseAddress!, ldb: inFeatures, transposeB: false,
                                  into: out.baseAddress!, ldc: inFeatures)
                }
            }
            x.accumulateGradient(dx)
        }
        if weight.requiresGrad {
            let dw = Tensor(shape: weight.shape) { out in
                x.value.withUnsafeBufferPointer { xp in
                    GEMM.multiply(m: outFeatures, n: inFeatures, k: rows,
                                  gp.baseAddress!, lda: outFeatures, transposeA: true,
                                  xp.baseAddress!, ldb: inFeatures, transposeB: false,
                                  into: out.baseAddress!, ldc: inFeatures, aRowSums: columnSums)
                }
            }
            weight.accumulateGradient(dw)
        }
    }
}

/// `op(a) op(b)`: a matrix product (`a` `[..., M, K]` times `b` `[K, N]`) or a batched one
/// (`[B, M, K]` times `[B, K, N]`); transposes apply to the last two dimensions.
public func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false) -> Variable {
    let c = GEMM.matmul(a.value, b.value, transposeA: transposeA, transposeB: transposeB)
    return Variable.result(c, parents: [a, b]) { g in
        if a.requiresGrad {
            // C = op(A) op(B): dA = dC op(B)ᵀ, or op(B) dCᵀ when A was transposed.
            let da = transposeA
                ? GEMM.matmul(b.value, g, transposeA: transposeB, transposeB: true)
                : GEMM.matmul(g, b.value, transposeA: false, transposeB: !transposeB)
            a.accumulateGradient(da.reshaped(a.shape))
        }
        if b.requiresGrad {
            if b.value.rank == 2 && a.value.rank > 2 {
                // B was shared across the folded leading dimensions of A: fold them again.
                let rowsA = a.count / a.shape[a.value.rank - 1]
                let a2 = a.value.reshaped([rowsA, a.shape[a.value.rank - 1]])
                let g2 = g.reshaped([rowsA, g.shape[g.rank - 1]])
                let db = transposeB
                    ? GEMM.matmul(g2, a2, transposeA: true, transposeB: false)
                    : GEMM.matmul(a2, g2, transposeA: true, transposeB: false)
                b.accumulateGradient(db)
            } else {
                let db = transposeB
                    ? GEMM.matmul(g, a.value, transposeA: true, transposeB: transposeA)
                    : GEMM.matmul(a.value, g, transposeA: !transposeA, transposeB: false)
                b.accumulateGradient(db)
            }
        }
    }
}

import Tensor

// Fused ops for the hot paths of transformer layers. Each replaces a chain of element-wise ops
// (bias, activation, dropout, residual sum, layer norm) that would each read and write a whole
// activation, and draws its dropout seed from the generator at the point the chain's dropout would,
// with the same mask, so a layer computes what the unfused chain computes.

/// `dropout(activation(x Wᵀ + b))` as one op: the first half of a feed-forward block. One GEMM and one
/// pass over the hidden activation forward; one pass (which also sums the bias gradient) and two GEMMs
/// backward. No mask is stored; for ReLU not even the pre-activation.
public func linearActivation(_ x: Variable, weight: Variable, bias: Variable?, activation: PointwiseActivation,
                             dropout p: Float, generator: inout SeededGenerator, rows: BatchRows? = nil) -> Variable {
    fusedLinear(x, weight: weight, bias: bias, activation: activation, dropout: p, seed: p > 0 ? generator.next() : 0,
                rows: rows)
}

/// `activation(x Wᵀ + b)` as one op (no dropout).
public func linearActivation(_ x: Variable, weight: Variable, bias: Variable?, activation: PointwiseActivation) -> Variable {
    fusedLinear(x, weight: weight, bias: bias, activation: activation, dropout: 0, seed: 0, rows: nil)
}

private func fusedLinear(_ x: Variable, weight: Variable, bias: Variable?, activation: PointwiseActivation,
                         dropout p: Float, seed: UInt64, rows batchRows: BatchRows?) -> Variable {
    let (rows, inFeatures, outFeatures) = linearShapes(x, weight: weight, bias: bias)
    var y = Tensor(shape: Array(x.shape.dropLast()) + [outFeatures]) { out in
        x.value.withUnsafeBufferPointer { xp in
            weight.value.withUnsafeBufferPointer { wp in
                GEMM.multiply(m: rows, n: outFeatures, k: inFeatures,
                              xp.baseAddress!, lda: inFeatures, transposeA: false,
                              wp.baseAddress!, ldb: inFeatures, transposeB: true,
                              into: out.baseAddress!, ldc: outFeatures)
            }
        }
    }
    let saved = BiasActivationDropout.forward(&y, bias: bias?.value, activation: activation, dropout: p, seed: seed,
                                              rows: batchRows)
    let output = y
    let parents = bias.map { [x, weight, $0] } ?? [x, weight]
    return Variable.result(output, parents: parents) { g in
        let needsBias = bias?.requiresGrad ?? false
        let (dPre, dBias) = BiasActivationDropout.backward(outputGradient: g, output: output, saved: saved,
                                                           biasGradient: needsBias)
        linearInputAndWeightGradients(dPre, x: x, weight: weight, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        if let bias, let dBias { bias.accumulateGradient(dBias) }
    }
}

/// `layerNorm(x + dropout(sublayer))` as one op: the residual connection of a post-norm transformer
/// layer, with the dropout mask applied on the fly (drawn from `generator` when `p > 0`; with `rows`, the
/// whole batch's mask of those rows).
public func residualLayerNorm(_ x: Variable, adding sublayer: Variable, dropout p: Float = 0,
                              generator: inout SeededGenerator, rows: BatchRows? = nil, gamma: Variable,
                              beta: Variable, epsilon: Float = 1e-5) -> Variable {
    let seed = p > 0 ? generator.next() : 0
    let (y, saved) = LayerNormKernel.residualForward(x.value, sublayer: sublayer.value, dropout: p, seed: seed, rows: rows,
                                                     gamma: gamma.value, beta: beta.value, epsilon: epsilon)
    return Variable.result(y, parents: [x, sublayer, gamma, beta]) { g in
        let grads = LayerNormKernel.residualBackward(outputGradient: g, gamma: gamma.value, saved: saved)
        if x.requiresGrad { x.accumulateGradient(grads.input) }
        if sublayer.requiresGrad { sublayer.accumulateGradient(grads.sublayer) }
        if gamma.requiresGrad { gamma.accumulateGradient(grads.gamma) }
        if beta.requiresGrad { beta.accumulateGradient(grads.beta) }
    }
}

extension LayerNorm {
    /// `norm(x + dropout(sublayer))` in one fused op; `dropout` applies only while `context` is training.
    public func callAsFunction(_ x: Variable, adding sublayer: Variable, dropout: Dropout,
                               context: ForwardContext) -> Variable {
        let p = context.isTraining ? dropout.probability : 0
        return residualLayerNorm(x, adding: sublayer, dropout: p, generator: &context.generator,
                                 rows: context.batchRows, gamma: weight, beta: bias, epsilon: epsilon)
    }
}

extension Linear {
    /// `dropout(activation(self(x)))` in one fused op; `dropout` applies only while `context` is training.
    public func callAsFunction(_ x: Variable, activation: PointwiseActivation, dropout: Dropout,
                               context: ForwardContext) -> Variable {
        let p = context.isTraining ? dropout.probability : 0
        return linearActivation(x, weight: weight, bias: bias, activation: activation, dropout: p,
                                generator: &context.generator, rows: context.batchRows)
    }
}

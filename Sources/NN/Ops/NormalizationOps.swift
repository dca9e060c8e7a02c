import Tensor

/// Layer normalisation over the last dimension with scale `gamma` and shift `beta` (`[D]`).
public func layerNorm(_ x: Variable, gamma: Variable, beta: Variable, epsilon: Float = 1e-5) -> Variable {
    layerNorm(x, gamma: gamma, beta: beta, epsilon: epsilon, dropout: 0, seed: 0, rows: nil)
}

/// `dropout(layerNorm(x))` in one op: the mask (drawn from `generator` when `p > 0`, as `dropout` would draw
/// it) is applied as the norm is written and regenerated backward, so no dropped copy is made. With `rows`,
/// the whole batch's mask of those rows (see `BatchRows`).
public func layerNorm(_ x: Variable, gamma: Variable, beta: Variable, epsilon: Float = 1e-5, dropout p: Float,
                      generator: inout SeededGenerator, rows: BatchRows? = nil) -> Variable {
    layerNorm(x, gamma: gamma, beta: beta, epsilon: epsilon, dropout: p, seed: p > 0 ? generator.next() : 0, rows: rows)
}

/// `dropout(layerNorm(relu(x)))` in one op: `layerNorm(_:gamma:beta:epsilon:dropout:generator:rows:)` of the rectified
/// input, rectified as each row is read (no rectified copy of `x` is made or kept), with the bits of the ReLU op
/// followed by the norm (test: `FusedOpTests.testTheNormOfARectifiedInputHasTheBitsOfTheReLUThenTheNorm`).
public func layerNorm(rectified x: Variable, gamma: Variable, beta: Variable, epsilon: Float = 1e-5, dropout p: Float,
                      generator: inout SeededGenerator, rows: BatchRows? = nil) -> Variable {
    layerNorm(x, gamma: gamma, beta: beta, epsilon: epsilon, dropout: p, seed: p > 0 ? generator.next() : 0, rows: rows,
              rectifiedInput: true)
}

private func layerNorm(_ x: Variable, gamma: Variable, beta: Variable, epsilon: Float, dropout p: Float, seed: UInt64,
                       rows: BatchRows?, rectifiedInput: Bool = false) -> Variable {
    let (y, saved) = LayerNormKernel.forward(x.value, gamma: gamma.value, beta: beta.value, epsilon: epsilon, dropout: p,
                                             seed: seed, rows: rows, rectifiedInput: rectifiedInput)
    return Variable.result(y, parents: [x, gamma, beta]) { g in
        let grads = LayerNormKernel.backward(outputGradient: g, input: x.value, gamma: gamma.value, saved: saved,
                                             inputGradient: x.requiresGrad)
        if x.requiresGrad { x.accumulateGradient(grads.input) }
        if gamma.requiresGrad { gamma.accumulateGradient(grads.gamma) }
        if beta.requiresGrad { beta.accumulateGradient(grads.beta) }
    }
}

extension Variable {
    /// Softmax along `axis` (negative counts from the end). `-infinity` inputs get probability 0.
    public func softmax(axis: Int = -1) -> Variable {
        let resolved = normalizedAxis(axis, rank: value.rank)
        let y = Softmax.forward(value, axis: resolved)
        return Variable.result(y, parents: [self]) { [self] g in
            accumulateGradient(Softmax.backward(outputGradient: g, output: y, axis: resolved))
        }
    }

    /// Log-softmax along `axis` (negative counts from the end).
    public func logSoftmax(axis: Int = -1) -> Variable {
        let resolved = normalizedAxis(axis, rank: value.rank)
        let y = Softmax.logForward(value, axis: resolved)
        return Variable.result(y, parents: [self]) { [self] g in
            accumulateGradient(Softmax.logBackward(outputGradient: g, output: y, axis: resolved))
        }
    }
}

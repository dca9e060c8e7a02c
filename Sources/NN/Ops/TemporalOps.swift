import Tensor

/// 1-D convolution over time, channels last: `x` `[B, L, Cin]`, `weight` `[Cout, k, Cin]`,
/// `bias` `[Cout]`, result `[B, Lout, Cout]`.
public func conv1d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0) -> Variable {
    let (y, unfolded) = Conv1DKernel.forward(x.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding)
    let parents = bias.map { [x, weight, $0] } ?? [x, weight]
    return Variable.result(y, parents: parents) { g in
        let grads = Conv1DKernel.backward(outputGradient: g, unfolded: unfolded, weight: weight.value,
                                          inputShape: x.shape, stride: stride, padding: padding)
        if x.requiresGrad { x.accumulateGradient(grads.input) }
        if weight.requiresGrad { weight.accumulateGradient(grads.weight) }
        if let bias, bias.requiresGrad { bias.accumulateGradient(grads.bias) }
    }
}

/// Features `x` (`[B, L, D]`) linearly interpolated at fractional time `positions` (`[B, M]`, clip
/// units; rows outside the sequence read as zeros), giving `[B, M, D]`. Differentiable in both.
public func interpolate(_ x: Variable, at positions: Variable) -> Variable {
    Variable.result(InterpolationKernel.forward(x.value, positions: positions.value), parents: [x, positions]) { g in
        let grads = InterpolationKernel.backward(outputGradient: g, input: x.value, positions: positions.value)
        if x.requiresGrad { x.accumulateGradient(grads.input) }
        if positions.requiresGrad { positions.accumulateGradient(grads.positions) }
    }
}

/// The clip-to-clip differences `[B, L, D]` of `tokens`, the first taken against `start` `[1, 1, D]`, as one op:
/// `tokens - concat([zeros + start, tokens[:, ..<L-1]])` with its bits (`TemporalDynamicsKernels.differences`).
public func temporalDifferences(_ tokens: Variable, start: Variable) -> Variable {
    Variable.result(TemporalDynamicsKernels.differences(tokens.value, start: start.value), parents: [tokens, start]) { g in
        let grads = TemporalDynamicsKernels.differencesBackward(outputGradient: g)
        if tokens.requiresGrad { tokens.accumulateGradient(grads.tokens) }
        if start.requiresGrad { start.accumulateGradient(grads.start) }
    }
}

/// TD-DETR's mix of the text-attended dynamics into the video tokens as one op, the attended video dropped with
/// probability `p` (its seed drawn from `generator` when `p > 0`, where the chain's dropout would draw it; with
/// `rows`, the whole batch's mask of those rows): `beta * (video + dropout(attended)) + (1 - beta) * dynamics`
/// (`.weightedResidual`) or `beta * video + (1 - beta) * dynamics + dropout(attended)` (`.weightedVideo`).
public func dynamicsMix(video: Variable, attended: Variable, dynamics: Variable, beta: Float,
                        order: TemporalDynamicsKernels.MixOrder, dropout p: Float, generator: inout SeededGenerator,
                        rows: BatchRows? = nil) -> Variable {
    let seed = p > 0 ? generator.next() : 0
    let mixed = TemporalDynamicsKernels.mix(video: video.value, attended: attended.value, dynamics: dynamics.value, beta: beta,
                                            order: order, dropout: p, seed: seed, rows: rows)
    return Variable.result(mixed, parents: [video, attended, dynamics]) { g in
        let grads = TemporalDynamicsKernels.mixBackward(outputGradient: g, beta: beta, order: order, dropout: p, seed: seed, rows: rows)
        if video.requiresGrad { video.accumulateGradient(grads.video) }
        if attended.requiresGrad { attended.accumulateGradient(grads.attended) }
        if dynamics.requiresGrad { dynamics.accumulateGradient(grads.dynamics) }
    }
}

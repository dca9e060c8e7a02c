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

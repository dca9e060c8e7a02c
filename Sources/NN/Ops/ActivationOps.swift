import Tensor

extension Variable {
    /// `max(x, 0)`.
    public func relu() -> Variable {
        Variable.result(Activation.relu(value), parents: [self]) { [self] g in
            accumulateGradient(Activation.reluBackward(outputGradient: g, input: value))
        }
    }

    /// Exact (erf) GELU.
    public func gelu() -> Variable {
        Variable.result(Activation.gelu(value), parents: [self]) { [self] g in
            accumulateGradient(Activation.geluBackward(outputGradient: g, input: value))
        }
    }
}

/// PReLU with a learned slope per channel (last dimension) or one shared slope (`[1]`).
public func prelu(_ x: Variable, slope: Variable) -> Variable {
    Variable.result(Activation.prelu(x.value, slope: slope.value), parents: [x, slope]) { g in
        let (dx, dSlope) = Activation.preluBackward(outputGradient: g, input: x.value, slope: slope.value)
        if x.requiresGrad { x.accumulateGradient(dx) }
        if slope.requiresGrad { slope.accumulateGradient(dSlope) }
    }
}

import Tensor

extension Variable {
    /// The sum of all elements, as a scalar `[]`.
    public func sum() -> Variable {
        Variable.result(Tensor(scalar: Reduction.sum(value)), parents: [self]) { [self] g in
            accumulateGradient(Tensor(repeating: g.scalar, shape: shape))
        }
    }

    /// The mean of all elements, as a scalar `[]`.
    public func mean() -> Variable {
        let n = Float(Swift.max(count, 1))
        return Variable.result(Tensor(scalar: Reduction.sum(value) / n), parents: [self]) { [self] g in
            accumulateGradient(Tensor(repeating: g.scalar / n, shape: shape))
        }
    }

    /// The sum along `axis` (negative counts from the end).
    public func sum(axis: Int, keepingDimension: Bool = false) -> Variable {
        let resolved = normalizedAxis(axis, rank: value.rank)
        return Variable.result(Reduction.sum(value, axis: resolved, keepingDimension: keepingDimension), parents: [self]) { [self] g in
            accumulateGradient(Reduction.expand(g, alongAxis: resolved, of: shape))
        }
    }

    /// The mean along `axis` (negative counts from the end).
    public func mean(axis: Int, keepingDimension: Bool = false) -> Variable {
        let resolved = normalizedAxis(axis, rank: value.rank)
        let extent = Float(Swift.max(shape[resolved], 1))
        let total = Reduction.sum(value, axis: resolved, keepingDimension: keepingDimension)
        return Variable.result(Elementwise.affine(total, scale: 1 / extent, shift: 0), parents: [self]) { [self] g in
            accumulateGradient(Reduction.expand(g, alongAxis: resolved, of: shape, scale: 1 / extent))
        }
    }

    /// The maximum along `axis`; the gradient goes to the (first) arg-max.
    public func max(axis: Int, keepingDimension: Bool = false) -> Variable {
        let resolved = normalizedAxis(axis, rank: value.rank)
        let (values, indices) = Reduction.max(value, axis: resolved, keepingDimension: keepingDimension)
        return Variable.result(values, parents: [self]) { [self] g in
            accumulateGradient(Reduction.scatterMax(g, indices: indices, axis: resolved, of: shape))
        }
    }
}

import Tensor

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by `1 / (1 - p)`.
/// The mask comes from one seed drawn from `generator`; it is applied on the fly forward and
/// regenerated from the seed backward, never stored.
public func dropout(_ x: Variable, probability p: Float, generator: inout SeededGenerator) -> Variable {
    guard p > 0 else { return x }
    let seed = generator.next()
    return Variable.result(DropoutMask.apply(x.value, probability: p, seed: seed), parents: [x]) { g in
        x.accumulateGradient(DropoutMask.apply(g, probability: p, seed: seed))
    }
}

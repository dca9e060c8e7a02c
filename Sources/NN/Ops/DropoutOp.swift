import Tensor

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by `1 / (1 - p)`.
/// The mask comes from one seed drawn from `generator`, expanded in parallel by a counter hash.
public func dropout(_ x: Variable, probability p: Float, generator: inout SeededGenerator) -> Variable {
    guard p > 0 else { return x }
    let mask = DropoutMask.make(shape: x.shape, probability: p, seed: generator.next())
    return Variable.result(Elementwise.multiply(x.value, mask), parents: [x]) { g in
        x.accumulateGradient(Elementwise.multiply(g, mask))
    }
}

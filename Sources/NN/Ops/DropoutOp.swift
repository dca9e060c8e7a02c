import Tensor

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by `1 / (1 - p)`.
/// The mask comes from one seed drawn from `generator`; it is applied on the fly forward and
/// regenerated from the seed backward, never stored. With `rows`, `x` is a slice of a whole batch and
/// takes the whole batch's mask of its rows (see `BatchRows`).
public func dropout(_ x: Variable, probability p: Float, generator: inout SeededGenerator,
                    rows: BatchRows? = nil) -> Variable {
    guard p > 0 else { return x }
    let seed = generator.next()
    return Variable.result(DropoutMask.apply(x.value, probability: p, seed: seed, rows: rows), parents: [x]) { g in
        x.accumulateGradient(DropoutMask.apply(g, probability: p, seed: seed, rows: rows))
    }
}

import Tensor

extension Variable {
    /// The same elements with another shape (one extent may be -1).
    public func reshaped(_ newShape: [Int]) -> Variable {
        Variable.result(value.reshaped(newShape), parents: [self]) { [self] g in
            accumulateGradient(g.reshaped(shape))
        }
    }

    /// The entries `range` along `axis` (negative counts from the end).
    public func sliced(axis: Int, _ range: Range<Int>) -> Variable {
        let resolved = normalizedAxis(axis, rank: value.rank)
        return Variable.result(ShapeKernels.slice(value, axis: resolved, range: range), parents: [self]) { [self] g in
            accumulateGradient(ShapeKernels.embed(g, in: shape, axis: resolved, at: range.lowerBound))
        }
    }

    /// Padded with `before`/`after` entries of `value` along `axis`.
    public func padded(axis: Int, before: Int, after: Int, value fill: Float = 0) -> Variable {
        let resolved = normalizedAxis(axis, rank: value.rank)
        let y = ShapeKernels.pad(value, axis: resolved, before: before, after: after, value: fill)
        return Variable.result(y, parents: [self]) { [self] g in
            accumulateGradient(ShapeKernels.slice(g, axis: resolved, range: before..<(before + shape[resolved])))
        }
    }

    /// Swaps the last two dimensions.
    public func transposedLastTwo() -> Variable {
        Variable.result(ShapeKernels.transposeLastTwo(value), parents: [self]) { [self] g in
            accumulateGradient(ShapeKernels.transposeLastTwo(g))
        }
    }
}

/// `tensors` joined along `axis` (negative counts from the end).
public func concat(_ tensors: [Variable], axis: Int) -> Variable {
    precondition(!tensors.isEmpty, "concat: no tensors")
    let resolved = normalizedAxis(axis, rank: tensors[0].value.rank)
    let y = ShapeKernels.concat(tensors.map(\.value), axis: resolved)
    return Variable.result(y, parents: tensors) { g in
        var start = 0
        for t in tensors {
            let extent = t.shape[resolved]
            if t.requiresGrad { t.accumulateGradient(ShapeKernels.slice(g, axis: resolved, range: start..<(start + extent))) }
            start += extent
        }
    }
}

/// Rows of `x` (`[B, L, D]`) at time `indices` (`B * M`, row-major), giving `[B, M, D]`.
public func gatherTime(_ x: Variable, indices: [Int], count m: Int) -> Variable {
    let length = x.shape[1]
    return Variable.result(ShapeKernels.gatherTime(x.value, indices: indices, count: m), parents: [x]) { g in
        x.accumulateGradient(ShapeKernels.scatterAddTime(g, indices: indices, length: length))
    }
}

/// Rows of `source` (`[B, M, D]`) added at time `indices` into zeros `[B, length, D]`.
public func scatterAddTime(_ source: Variable, indices: [Int], length: Int) -> Variable {
    let m = source.shape[1]
    return Variable.result(ShapeKernels.scatterAddTime(source.value, indices: indices, length: length), parents: [source]) { g in
        source.accumulateGradient(ShapeKernels.gatherTime(g, indices: indices, count: m))
    }
}

/// Rows of `table` (`[V, D]`) for `indices`, shaped `indexShape + [D]`.
public func embeddingLookup(_ table: Variable, indices: [Int], indexShape: [Int]) -> Variable {
    precondition(Tensor.elementCount(of: indexShape) == indices.count,
                 "embedding: index shape \(indexShape) does not hold \(indices.count) indices")
    let width = table.shape[1]
    let y = ShapeKernels.embeddingLookup(table.value, indices: indices).reshaped(indexShape + [width])
    return Variable.result(y, parents: [table]) { g in
        table.accumulateGradient(ShapeKernels.embeddingBackward(g, indices: indices, vocabulary: table.shape[0]))
    }
}

import Tensor

/// Which keys an attention may look at: `[B, Lk]` flags, true where the key is padding (PyTorch's
/// `key_padding_mask` convention).
public struct KeyPaddingMask: Sendable, Equatable {
    public let batch: Int
    public let length: Int
    /// Row-major `[B, Lk]` flags; true = padding, ignored.
    public let isPadding: [Bool]

    public init(batch: Int, length: Int, isPadding: [Bool]) {
        precondition(isPadding.count == batch * length,
                     "KeyPaddingMask: \(isPadding.count) flags for [\(batch), \(length)]")
        self.batch = batch
        self.length = length
        self.isPadding = isPadding
    }

    /// From a `[B, L]` tensor of valid-clip flags (1 = valid, 0 = padding), the layout datasets use.
    public init(validity: Tensor) {
        precondition(validity.rank == 2, "KeyPaddingMask: validity must be [B, L], got \(validity.shape)")
        self.init(batch: validity.shape[0], length: validity.shape[1], isPadding: validity.data.map { $0 < 0.5 })
    }
}

/// Multi-head scaled dot-product attention over projected `query` `[B, Lq, D]`, `key` and `value`
/// `[B, Lk, D]` (heads are column blocks of width `D / heads`), with optional key padding mask, optional
/// per-pair mask (`[B, heads, Lq, Lk]` flags, true = blocked) and dropout on the attention weights. One
/// coarse op: its backward runs the whole attention backward. With `rows`, the batch is a slice of a
/// whole batch and takes the whole batch's dropout masks of its samples (see `BatchRows`).
public func scaledDotProductAttention(query: Variable, key: Variable, value: Variable, heads: Int,
                                      keyPaddingMask: KeyPaddingMask? = nil, blockedPairs: [Bool]? = nil,
                                      dropout: Float = 0, generator: inout SeededGenerator,
                                      rows: BatchRows? = nil) -> Variable {
    attention(query: query, querySecond: nil, key: key, keySecond: nil, value: value, heads: heads,
              keyPaddingMask: keyPaddingMask, blockedPairs: blockedPairs, dropout: dropout, generator: &generator, rows: rows)
}

/// Attention whose heads score with two projections each (DAB-DETR's conditional cross-attention): head `h`
/// compares the query `[query_h, querySecond_h]` with the key `[key_h, keySecond_h]` (scale `1 / sqrt(2 D / H)`)
/// and attends over `value` `[B, Lk, Dv]`, giving `[B, Lq, Dv]`. One coarse op, with no concatenated or padded copy
/// of any operand (see `AttentionKernel.forward(query:querySecond:key:keySecond:value:...)`); it draws its dropout
/// seed as `scaledDotProductAttention(query:key:value:...)` does.
public func scaledDotProductAttention(query: Variable, querySecond: Variable, key: Variable, keySecond: Variable,
                                      value: Variable, heads: Int, keyPaddingMask: KeyPaddingMask? = nil,
                                      dropout: Float = 0, generator: inout SeededGenerator,
                                      rows: BatchRows? = nil) -> Variable {
    attention(query: query, querySecond: querySecond, key: key, keySecond: keySecond, value: value, heads: heads,
              keyPaddingMask: keyPaddingMask, blockedPairs: nil, dropout: dropout, generator: &generator, rows: rows)
}

/// Either attention op: one projection per head, or two with `querySecond` and `keySecond`.
private func attention(query: Variable, querySecond: Variable?, key: Variable, keySecond: Variable?, value: Variable,
                       heads: Int, keyPaddingMask: KeyPaddingMask?, blockedPairs: [Bool]?, dropout: Float,
                       generator: inout SeededGenerator, rows: BatchRows?) -> Variable {
    if let mask = keyPaddingMask {
        precondition(mask.batch == key.shape[0] && mask.length == key.shape[1],
                     "attention: key padding mask [\(mask.batch), \(mask.length)] vs keys \(key.shape)")
    }
    let seed = dropout > 0 ? generator.next() : 0
    let (output, saved) = AttentionKernel.forward(query: query.value, querySecond: querySecond?.value, key: key.value,
                                                  keySecond: keySecond?.value, value: value.value, heads: heads,
                                                  keyIsPadding: keyPaddingMask?.isPadding, blockedPairs: blockedPairs,
                                                  dropout: dropout, dropoutSeed: seed, dropoutRows: rows)
    let parents = [query] + (querySecond.map { [$0] } ?? []) + [key] + (keySecond.map { [$0] } ?? []) + [value]
    return Variable.result(output, parents: parents) { g in
        let grads = AttentionKernel.backward(outputGradient: g, query: query.value, querySecond: querySecond?.value,
                                             key: key.value, keySecond: keySecond?.value, value: value.value,
                                             heads: heads, saved: saved)
        if query.requiresGrad { query.accumulateGradient(grads.query) }
        if let querySecond, querySecond.requiresGrad, let gradient = grads.querySecond {
            querySecond.accumulateGradient(gradient)
        }
        if key.requiresGrad { key.accumulateGradient(grads.key) }
        if let keySecond, keySecond.requiresGrad, let gradient = grads.keySecond {
            keySecond.accumulateGradient(gradient)
        }
        if value.requiresGrad { value.accumulateGradient(grads.value) }
    }
}

import CVectorKernels

/// Multi-head scaled dot-product attention on already-projected queries, keys and values.
///
/// Layout: `q` `[B, Lq, D]`, `k` and `v` `[B, Lk, D]`, heads are the `H` consecutive column blocks of
/// width `D / H`. Each (batch, head) slice is addressed in place through leading dimensions, so no
/// head is ever copied out; the `B * H` slices run in parallel, each slice's products on its thread
/// (`GEMM.smallMultiply`).
public enum AttentionKernel {
    /// What the forward pass keeps for the backward pass.
    public struct Saved: @unchecked Sendable {
        /// Softmax probabilities before dropout, `[B, H, Lq, Lk]`. The probabilities after dropout, which the
        /// backward pass needs too, are not kept: each slice's are remade from these and the regenerated mask, in
        /// cache, rather than written out and read back (two passes over a tensor of the scores' size).
        public let probabilities: Tensor
        let dropout: Float
        let dropoutSeed: UInt64
        /// Set when the batch is a slice of a whole batch: slice `b * H + h` takes the seed of the whole
        /// batch's sample of row `b` (see `BatchRows`).
        let dropoutRows: BatchRows?

        /// The dropout mask (0 or `1 / (1 - p)`) applied to the probabilities, `[B, H, Lq, Lk]`, or nil
        /// when no dropout was applied. Regenerated from the seed on each access; the kernels never
        /// store it.
        public var dropoutMask: Tensor? {
            guard dropout > 0 else { return nil }
            let shape = probabilities.shape
            let sliceSize = shape[2] * shape[3]
            return Tensor(shape: shape) { out in
                for slice in 0..<(shape[0] * shape[1]) {
                    DropoutMask.fill(out.baseAddress! + slice * sliceSize, range: 0..<sliceSize, probability: dropout,
                                     seed: AttentionKernel.sliceSeed(dropoutSeed, slice: slice, heads: shape[1], rows: dropoutRows))
                }
            }
        }
    }

    /// Output `[B, Lq, D]` of attention. `keyIsPadding` (`B * Lk` flags, true = ignore that key)
    /// masks keys; `blockedPairs` (`B * H * Lq * Lk` flags, true = query `i` of head `h` of sample `b` may
    /// not see key `j`) masks single query-key pairs as well. A query whose keys are all masked gets a
    /// zero output. `dropout` > 0 drops attention weights with a mask drawn from `dropoutSeed` (with
    /// `dropoutRows`, the whole batch's masks of those samples).
    public static func forward(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int,
                               keyIsPadding: [Bool]?, blockedPairs: [Bool]? = nil,
                               dropout: Float, dropoutSeed: UInt64,
                               dropoutRows: BatchRows? = nil) -> (output: Tensor, saved: Saved) {
        forward(query: q, querySecond: nil, key: k, keySecond: nil, value: v, heads: heads, keyIsPadding: keyIsPadding,
                blockedPairs: blockedPairs, dropout: dropout, dropoutSeed: dropoutSeed, dropoutRows: dropoutRows)
    }

    /// Attention whose heads score with two projections each: with `querySecond` and `keySecond` (the shapes of
    /// `q` and `k`), head `h` compares the query `[q_h, querySecond_h]` with the key `[k_h, keySecond_h]` (each the
    /// concatenation of the two projections' columns of head `h`, scale `1 / sqrt(2 D / H)`), as DAB-DETR's
    /// conditional cross-attention does, and attends over `v` (`[B, Lk, Dv]`, its own head width `Dv / H`), giving
    /// `[B, Lq, Dv]`. The bits of the one-projection kernel run on the concatenated heads (and, for values narrower
    /// than the heads, on values padded with zero columns whose output columns are then dropped): each head's
    /// concatenated query and key rows are gathered into the task's scratch, never into tensors of their own
    /// (test: `FusedOpTests.testTwoProjectionAttentionHasTheBitsOfTheConcatenatedHeads`). Without the second
    /// parts, `forward(query:key:value:...)`.
    public static func forward(query q: Tensor, querySecond q2: Tensor?, key k: Tensor, keySecond k2: Tensor?,
                               value v: Tensor, heads: Int, keyIsPadding: [Bool]?, blockedPairs: [Bool]? = nil,
                               dropout: Float, dropoutSeed: UInt64,
                               dropoutRows: BatchRows? = nil) -> (output: Tensor, saved: Saved) {
        let profiled = Profiler.enter(.attention, absorbs: true)
        defer { Profiler.exit(profiled) }
        let shape = checkShapes(q, q2, k, k2, v, heads: heads)
        let (batch, queryLength, keyLength, width, valueWidth) = (shape.batch, shape.queryLength, shape.keyLength,
                                                                   shape.width, shape.valueWidth)
        if let mask = keyIsPadding {
            precondition(mask.count == batch * keyLength,
                         "attention: key padding mask has \(mask.count) flags, keys are [\(batch), \(keyLength)]")
        }
        if let blocked = blockedPairs {
            precondition(blocked.count == batch * heads * queryLength * keyLength,
                         "attention: pair mask has \(blocked.count) flags, scores are [\(batch), \(heads), \(queryLength), \(keyLength)]")
        }
        precondition(dropout >= 0 && dropout < 1, "attention: dropout probability must be in [0, 1), got \(dropout)")
        let (partWidth, headWidth, valueHeadWidth) = (shape.partHeadWidth, shape.headWidth, valueWidth / heads)
        let scale = 1 / Float(headWidth).squareRoot()
        let sliceSize = queryLength * keyLength
        let slices = batch * heads
        let concatenated = q2 != nil
        // Per task: the dropped probabilities, then (two projections) the head's concatenated query and key rows.
        let scratchSize = (dropout > 0 ? sliceSize : 0) + (concatenated ? (queryLength + keyLength) * headWidth : 0)
        var probabilities = Tensor(shape: [batch, heads, queryLength, keyLength]) { _ in }
        var output = Tensor(shape: [batch, queryLength, valueWidth]) { _ in }
        let vector = VectorKernels.enabled
        q.withUnsafeBufferPointer { qp in
        withOptionalPointer(q2) { q2p in
        k.withUnsafeBufferPointer { kp in
        withOptionalPointer(k2) { k2p in
        v.withUnsafeBufferPointer { vp in
        probabilities.withUnsafeMutableBufferPointer { pp in
        output.withUnsafeMutableBufferPointer { op in
            Parallelism.forEachTaskSingleThreadedBLAS(count: slices) { slice in
                // The slice's dropped probabilities live in a per-task buffer small enough for L2.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchSize) { scratch in
                    let b = slice / heads, h = slice % heads
                    let scores = pp.baseAddress! + slice * sliceSize
                    var (qSlice, qStride) = (UnsafePointer(qp.baseAddress! + b * queryLength * width + h * partWidth), width)
                    var (kSlice, kStride) = (UnsafePointer(kp.baseAddress! + b * keyLength * width + h * partWidth), width)
                    if let q2p, let k2p {
                        let rows = scratch.baseAddress! + (dropout > 0 ? sliceSize : 0)
                        gatherHead(q2p, into: rows, rows: queryLength, width: width, partWidth: partWidth, head: h,
                                   first: qSlice, sample: b)
                        gatherHead(k2p, into: rows + queryLength * headWidth, rows: keyLength, width: width,
                                   partWidth: partWidth, head: h, first: kSlice, sample: b)
                        (qSlice, qStride) = (UnsafePointer(rows), headWidth)
                        (kSlice, kStride) = (UnsafePointer(rows + queryLength * headWidth), headWidth)
                    }
                    let vSlice = vp.baseAddress! + b * keyLength * valueWidth + h * valueHeadWidth
                    GEMM.smallMultiply(m: queryLength, n: keyLength, k: headWidth,
                                       qSlice, lda: qStride, transposeA: false,
                                       kSlice, ldb: kStride, transposeB: true,
                                       into: scores, ldc: keyLength, alpha: scale)
                    if let padding = keyIsPadding {
                        for j in 0..<keyLength where padding[b * keyLength + j] {
                            for i in 0..<queryLength { scores[i * keyLength + j] = -Float.infinity }
                        }
                    }
                    if let blocked = blockedPairs {
                        for e in 0..<sliceSize where blocked[slice * sliceSize + e] { scores[e] = -Float.infinity }
                    }
                    Softmax.contiguousRowsInPlace(scores, rows: queryLength, count: keyLength)
                    var weights = UnsafePointer(scores)
                    if dropout > 0 {
                        Self.drop(UnsafePointer(scores), count: sliceSize, probability: dropout,
                                  seed: Self.sliceSeed(dropoutSeed, slice: slice, heads: heads, rows: dropoutRows),
                                  vector: vector, into: scratch.baseAddress!)
                        weights = UnsafePointer(scratch.baseAddress!)
                    }
                    GEMM.smallMultiply(m: queryLength, n: valueHeadWidth, k: keyLength,
                                       weights, lda: keyLength, transposeA: false,
                                       vSlice, ldb: valueWidth, transposeB: false,
                                       into: op.baseAddress! + b * queryLength * valueWidth + h * valueHeadWidth, ldc: valueWidth)
                }
            }
        }}}}}}}
        return (output, Saved(probabilities: probabilities, dropout: dropout, dropoutSeed: dropoutSeed, dropoutRows: dropoutRows))
    }

    /// Head `head` of sample `sample` of two projections, row by row side by side: `rows` rows of `2 * partWidth`
    /// floats at `target`, the first projection's part read at `first` (rows `width` apart), the second's from
    /// `second` (`[B, rows, width]`).
    @inline(__always)
    static func gatherHead(_ second: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                           partWidth: Int, head: Int, first: UnsafePointer<Float>, sample: Int) {
        let secondSlice = second + sample * rows * width + head * partWidth
        for r in 0..<rows {
            let line = target + r * 2 * partWidth
            line.update(from: first + r * width, count: partWidth)
            (line + partWidth).update(from: secondSlice + r * width, count: partWidth)
        }
    }

    /// `target = probabilities * mask` over one slice: its dropped attention weights, the same in the forward pass
    /// and, remade, in the backward pass.
    @inline(__always)
    static func drop(_ probabilities: UnsafePointer<Float>, count: Int, probability: Float, seed: UInt64, vector: Bool,
                     into target: UnsafeMutablePointer<Float>) {
        DropoutMask.forEachBlock(of: 0..<count, probability: probability, seed: seed) { block, mask in
            if vector {
                multiply_avx512(probabilities + block.lowerBound, mask, block.count, target + block.lowerBound)
            } else {
                for e in block { target[e] = probabilities[e] * mask[e - block.lowerBound] }
            }
        }
    }

    /// The dropout seed of (sample, head) slice `slice`: the whole batch's slice under `rows`.
    @inline(__always)
    static func sliceSeed(_ seed: UInt64, slice: Int, heads: Int, rows: BatchRows?) -> UInt64 {
        let wholeSlice = rows.map { $0.wholeRow(slice / heads) * heads + slice % heads } ?? slice
        return CounterHash.bits(seed: seed, counter: wholeSlice)
    }

    /// Gradients with respect to `q`, `k` and `v`, given the output gradient `[B, Lq, D]`.
    public static func backward(outputGradient dOut: Tensor, query q: Tensor, key k: Tensor, value v: Tensor,
                                heads: Int, saved: Saved) -> (query: Tensor, key: Tensor, value: Tensor) {
        let grads = backward(outputGradient: dOut, query: q, querySecond: nil, key: k, keySecond: nil, value: v, heads: heads,
                             saved: saved)
        return (grads.query, grads.key, grads.value)
    }

    /// The gradients of `forward(query:querySecond:key:keySecond:value:...)`.
    public struct Gradients {
        public let query: Tensor
        /// Nil without a second query projection; so is `keySecond`.
        public let querySecond: Tensor?
        public let key: Tensor
        public let keySecond: Tensor?
        public let value: Tensor
    }

    /// Gradients of the two-projection attention (`forward(query:querySecond:key:keySecond:value:...)`) with respect
    /// to each of its inputs, given the output gradient `[B, Lq, Dv]`: each head's query and key gradients are made
    /// as two products, one per projection's columns, with the bits of the one product over the concatenated heads.
    public static func backward(outputGradient dOut: Tensor, query q: Tensor, querySecond q2: Tensor?, key k: Tensor,
                                keySecond k2: Tensor?, value v: Tensor, heads: Int, saved: Saved) -> Gradients {
        let profiled = Profiler.enter(.attention, absorbs: true)
        defer { Profiler.exit(profiled) }
        let shape = checkShapes(q, q2, k, k2, v, heads: heads)
        let (batch, queryLength, keyLength, width, valueWidth) = (shape.batch, shape.queryLength, shape.keyLength,
                                                                   shape.width, shape.valueWidth)
        checkSameShape(dOut.shape, [batch, queryLength, valueWidth], "attention backward: output gradient vs attention output")
        let (partWidth, valueHeadWidth) = (shape.partHeadWidth, valueWidth / heads)
        let scale = 1 / Float(shape.headWidth).squareRoot()
        let sliceSize = queryLength * keyLength
        let slices = batch * heads
        var dq = Tensor(shape: q.shape) { _ in }
        var dk = Tensor(shape: k.shape) { _ in }
        var dq2: Tensor? = q2.map { Tensor(shape: $0.shape) { _ in } }
        var dk2: Tensor? = k2.map { Tensor(shape: $0.shape) { _ in } }
        var dv = Tensor(shape: v.shape) { _ in }
        let vector = VectorKernels.enabled
        q.withUnsafeBufferPointer { qp in
        withOptionalPointer(q2) { q2p in
        k.withUnsafeBufferPointer { kp in
        withOptionalPointer(k2) { k2p in
        v.withUnsafeBufferPointer { vp in
        dOut.withUnsafeBufferPointer { gp in
        saved.probabilities.withUnsafeBufferPointer { pp in
        dq.withUnsafeMutableBufferPointer { dqp in
        withOptionalMutablePointer(&dq2) { dq2p in
        dk.withUnsafeMutableBufferPointer { dkp in
        withOptionalMutablePointer(&dk2) { dk2p in
        dv.withUnsafeMutableBufferPointer { dvp in
            Parallelism.forEachTaskSingleThreadedBLAS(count: slices) { slice in
                // The slice's score gradient (and, with dropout, its dropped probabilities) live in a per-task
                // buffer small enough for L2.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: (saved.dropout > 0 ? 2 : 1) * sliceSize) { scratch in
                    let b = slice / heads, h = slice % heads
                    let partOffset = b * queryLength * width + h * partWidth, keyOffset = b * keyLength * width + h * partWidth
                    let valueOffset = b * keyLength * valueWidth + h * valueHeadWidth
                    let gSlice = gp.baseAddress! + b * queryLength * valueWidth + h * valueHeadWidth
                    let probabilities = pp.baseAddress! + slice * sliceSize
                    let dScores = scratch.baseAddress!
                    var weights = probabilities
                    if saved.dropout > 0 {
                        let dropped = scratch.baseAddress! + sliceSize
                        Self.drop(probabilities, count: sliceSize, probability: saved.dropout,
                                  seed: Self.sliceSeed(saved.dropoutSeed, slice: slice, heads: heads, rows: saved.dropoutRows),
                                  vector: vector, into: dropped)
                        weights = UnsafePointer(dropped)
                    }
                    // dV = Wᵀ dO
                    GEMM.smallMultiply(m: keyLength, n: valueHeadWidth, k: queryLength,
                                       weights, lda: keyLength, transposeA: true,
                                       gSlice, ldb: valueWidth, transposeB: false,
                                       into: dvp.baseAddress! + valueOffset, ldc: valueWidth)
                    // dW = dO Vᵀ
                    GEMM.smallMultiply(m: queryLength, n: keyLength, k: valueHeadWidth,
                                       gSlice, lda: valueWidth, transposeA: false,
                                       vp.baseAddress! + valueOffset, ldb: valueWidth, transposeB: true,
                                       into: dScores, ldc: keyLength)
                    // Softmax backward through the dropout, with the 1/sqrt(d) score scale folded in.
                    // With W = P * mask and dP = dW * mask: sum_j P dP = sum_j W dW and
                    // P * dP = W * dW, so dS = W dW - P sum_j W dW needs no mask.
                    if vector {
                        softmax_backward_rows_avx512(probabilities, weights, dScores, queryLength, keyLength, scale)
                    } else {
                        for i in 0..<queryLength {
                            let p = probabilities + i * keyLength, w = weights + i * keyLength, d = dScores + i * keyLength
                            let dot = RowMath.dot(w, d, count: keyLength)
                            for j in 0..<keyLength { d[j] = (w[j] * d[j] - p[j] * dot) * scale }
                        }
                    }
                    // dQ = dS K, dK = dSᵀ Q, per projection: each element's sum is the one over the concatenated heads.
                    func projectionGradients(keys: UnsafePointer<Float>, queries: UnsafePointer<Float>,
                                             queryGradient: UnsafeMutablePointer<Float>, keyGradient: UnsafeMutablePointer<Float>) {
                        GEMM.smallMultiply(m: queryLength, n: partWidth, k: keyLength,
                                           dScores, lda: keyLength, transposeA: false,
                                           keys + keyOffset, ldb: width, transposeB: false,
                                           into: queryGradient + partOffset, ldc: width)
                        GEMM.smallMultiply(m: keyLength, n: partWidth, k: queryLength,
                                           dScores, lda: keyLength, transposeA: true,
                                           queries + partOffset, ldb: width, transposeB: false,
                                           into: keyGradient + keyOffset, ldc: width)
                    }
                    projectionGradients(keys: kp.baseAddress!, queries: qp.baseAddress!, queryGradient: dqp.baseAddress!,
                                        keyGradient: dkp.baseAddress!)
                    if let q2p, let k2p, let dq2p, let dk2p {
                        projectionGradients(keys: k2p, queries: q2p, queryGradient: dq2p, keyGradient: dk2p)
                    }
                }
            }
        }}}}}}}}}}}}
        return Gradients(query: dq, querySecond: dq2, key: dk, keySecond: dk2, value: dv)
    }

    /// The sizes of an attention's operands, checked.
    struct Shape {
        let batch, queryLength, keyLength: Int
        /// Columns of each query and key projection, and of the values.
        let width, valueWidth: Int
        /// A head's columns in one projection, and in its concatenated query (and key) rows.
        let partHeadWidth, headWidth: Int
    }

    private static func checkShapes(_ q: Tensor, _ q2: Tensor?, _ k: Tensor, _ k2: Tensor?, _ v: Tensor, heads: Int) -> Shape {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3,
                     "attention: query \(q.shape), key \(k.shape) and value \(v.shape) must be [B, L, D]")
        precondition((q2 == nil) == (k2 == nil), "attention: a second query projection needs a second key projection, and back")
        if let q2 { checkSameShape(q2.shape, q.shape, "attention: second query projection vs query") }
        if let k2 { checkSameShape(k2.shape, k.shape, "attention: second key projection vs key") }
        precondition(q.shape[0] == k.shape[0] && q.shape[2] == k.shape[2],
                     "attention: query \(q.shape) and key \(k.shape) differ in batch or width")
        precondition(v.shape[0] == k.shape[0] && v.shape[1] == k.shape[1],
                     "attention: key \(k.shape) and value \(v.shape) differ in batch or length")
        precondition(heads > 0 && q.shape[2] % heads == 0, "attention: width \(q.shape[2]) not divisible by \(heads) heads")
        precondition(v.shape[2] % heads == 0, "attention: value width \(v.shape[2]) not divisible by \(heads) heads")
        let partHeadWidth = q.shape[2] / heads
        return Shape(batch: q.shape[0], queryLength: q.shape[1], keyLength: k.shape[1], width: q.shape[2],
                     valueWidth: v.shape[2], partHeadWidth: partHeadWidth, headWidth: (q2 == nil ? 1 : 2) * partHeadWidth)
    }
}

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
        let profiled = Profiler.enter(.attention, absorbs: true)
        defer { Profiler.exit(profiled) }
        let (batch, queryLength, keyLength, width) = checkShapes(q, k, v, heads: heads)
        if let mask = keyIsPadding {
            precondition(mask.count == batch * keyLength,
                         "attention: key padding mask has \(mask.count) flags, keys are [\(batch), \(keyLength)]")
        }
        if let blocked = blockedPairs {
            precondition(blocked.count == batch * heads * queryLength * keyLength,
                         "attention: pair mask has \(blocked.count) flags, scores are [\(batch), \(heads), \(queryLength), \(keyLength)]")
        }
        precondition(dropout >= 0 && dropout < 1, "attention: dropout probability must be in [0, 1), got \(dropout)")
        let headWidth = width / heads
        let scale = 1 / Float(headWidth).squareRoot()
        let sliceSize = queryLength * keyLength
        let slices = batch * heads
        var probabilities = Tensor(shape: [batch, heads, queryLength, keyLength]) { _ in }
        var output = Tensor(shape: q.shape) { _ in }
        let vector = VectorKernels.enabled
        q.withUnsafeBufferPointer { qp in
        k.withUnsafeBufferPointer { kp in
        v.withUnsafeBufferPointer { vp in
        probabilities.withUnsafeMutableBufferPointer { pp in
        output.withUnsafeMutableBufferPointer { op in
            Parallelism.forEachTaskSingleThreadedBLAS(count: slices) { slice in
                // The slice's dropped probabilities live in a per-task buffer small enough for L2.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: dropout > 0 ? sliceSize : 0) { droppedBuffer in
                    let b = slice / heads, h = slice % heads
                    let scores = pp.baseAddress! + slice * sliceSize
                    let qSlice = qp.baseAddress! + b * queryLength * width + h * headWidth
                    let kSlice = kp.baseAddress! + b * keyLength * width + h * headWidth
                    let vSlice = vp.baseAddress! + b * keyLength * width + h * headWidth
                    GEMM.smallMultiply(m: queryLength, n: keyLength, k: headWidth,
                                       qSlice, lda: width, transposeA: false,
                                       kSlice, ldb: width, transposeB: true,
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
                                  vector: vector, into: droppedBuffer.baseAddress!)
                        weights = UnsafePointer(droppedBuffer.baseAddress!)
                    }
                    GEMM.smallMultiply(m: queryLength, n: headWidth, k: keyLength,
                                       weights, lda: keyLength, transposeA: false,
                                       vSlice, ldb: width, transposeB: false,
                                       into: op.baseAddress! + b * queryLength * width + h * headWidth, ldc: width)
                }
            }
        }}}}}
        return (output, Saved(probabilities: probabilities, dropout: dropout, dropoutSeed: dropoutSeed, dropoutRows: dropoutRows))
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
        let profiled = Profiler.enter(.attention, absorbs: true)
        defer { Profiler.exit(profiled) }
        let (batch, queryLength, keyLength, width) = checkShapes(q, k, v, heads: heads)
        checkSameShape(dOut.shape, q.shape, "attention backward: output gradient vs query")
        let headWidth = width / heads
        let scale = 1 / Float(headWidth).squareRoot()
        let sliceSize = queryLength * keyLength
        let slices = batch * heads
        var dq = Tensor(shape: q.shape) { _ in }
        var dk = Tensor(shape: k.shape) { _ in }
        var dv = Tensor(shape: v.shape) { _ in }
        let vector = VectorKernels.enabled
        q.withUnsafeBufferPointer { qp in
        k.withUnsafeBufferPointer { kp in
        v.withUnsafeBufferPointer { vp in
        dOut.withUnsafeBufferPointer { gp in
        saved.probabilities.withUnsafeBufferPointer { pp in
        dq.withUnsafeMutableBufferPointer { dqp in
        dk.withUnsafeMutableBufferPointer { dkp in
        dv.withUnsafeMutableBufferPointer { dvp in
            Parallelism.forEachTaskSingleThreadedBLAS(count: slices) { slice in
                // The slice's score gradient (and, with dropout, its dropped probabilities) live in a per-task
                // buffer small enough for L2.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: (saved.dropout > 0 ? 2 : 1) * sliceSize) { scratch in
                    let b = slice / heads, h = slice % heads
                    let columnOffset = h * headWidth
                    let qSlice = qp.baseAddress! + b * queryLength * width + columnOffset
                    let kSlice = kp.baseAddress! + b * keyLength * width + columnOffset
                    let vSlice = vp.baseAddress! + b * keyLength * width + columnOffset
                    let gSlice = gp.baseAddress! + b * queryLength * width + columnOffset
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
                    GEMM.smallMultiply(m: keyLength, n: headWidth, k: queryLength,
                                       weights, lda: keyLength, transposeA: true,
                                       gSlice, ldb: width, transposeB: false,
                                       into: dvp.baseAddress! + b * keyLength * width + columnOffset, ldc: width)
                    // dW = dO Vᵀ
                    GEMM.smallMultiply(m: queryLength, n: keyLength, k: headWidth,
                                       gSlice, lda: width, transposeA: false,
                                       vSlice, ldb: width, transposeB: true,
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
                    // dQ = dS K, dK = dSᵀ Q
                    GEMM.smallMultiply(m: queryLength, n: headWidth, k: keyLength,
                                       dScores, lda: keyLength, transposeA: false,
                                       kSlice, ldb: width, transposeB: false,
                                       into: dqp.baseAddress! + b * queryLength * width + columnOffset, ldc: width)
                    GEMM.smallMultiply(m: keyLength, n: headWidth, k: queryLength,
                                       dScores, lda: keyLength, transposeA: true,
                                       qSlice, ldb: width, transposeB: false,
                                       into: dkp.baseAddress! + b * keyLength * width + columnOffset, ldc: width)
                }
            }
        }}}}}}}}
        return (dq, dk, dv)
    }

    private static func checkShapes(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int) -> (Int, Int, Int, Int) {
        precondition(q.rank == 3 && k.rank == 3, "attention: query \(q.shape) and key \(k.shape) must be [B, L, D]")
        checkSameShape(k.shape, v.shape, "attention: key vs value")
        precondition(q.shape[0] == k.shape[0] && q.shape[2] == k.shape[2],
                     "attention: query \(q.shape) and key \(k.shape) differ in batch or width")
        precondition(heads > 0 && q.shape[2] % heads == 0, "attention: width \(q.shape[2]) not divisible by \(heads) heads")
        return (q.shape[0], q.shape[1], k.shape[1], q.shape[2])
    }
}

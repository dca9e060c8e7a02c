/// Copies that rearrange elements: concatenation, slicing, padding, transposition, and row
/// gather/scatter along the time axis.
public enum ShapeKernels {
    /// Joins `tensors` along `axis`; all other dimensions must agree.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        precondition(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0].shape
        var outShape = first
        outShape[axis] = 0
        for t in tensors {
            precondition(t.rank == first.count, "concat: rank differs, \(first) vs \(t.shape)")
            for d in 0..<first.count where d != axis {
                precondition(t.shape[d] == first[d], "concat along axis \(axis): shapes \(first) and \(t.shape) differ off-axis")
            }
            outShape[axis] += t.shape[axis]
        }
        let (outer, _, inner) = axisSplit(outShape, axis: axis, "concat")
        let outRow = outShape[axis] * inner
        return Tensor(shape: outShape) { out in
            var column = 0
            for t in tensors {
                let piece = t.shape[axis] * inner
                t.withUnsafeBufferPointer { src in
                    copyPieces(outer, count: piece, from: src.baseAddress!, stride: piece, to: out.baseAddress! + column, stride: outRow)
                }
                column += piece
            }
        }
    }

    /// The elements with index in `range` along `axis`.
    public static func slice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        let (outer, extent, inner) = axisSplit(x.shape, axis: axis, "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= extent,
                     "slice: range \(range) out of bounds for axis \(axis) of shape \(x.shape)")
        var outShape = x.shape
        outShape[axis] = range.count
        let piece = range.count * inner
        return Tensor(shape: outShape) { out in
            x.withUnsafeBufferPointer { src in
                copyPieces(outer, count: piece, from: src.baseAddress! + range.lowerBound * inner, stride: extent * inner,
                           to: out.baseAddress!, stride: piece)
            }
        }
    }

    /// `x` placed at `range` along `axis` inside a tensor of `shape` filled with `value`:
    /// padding, and the backward of `slice`.
    public static func embed(_ x: Tensor, in shape: [Int], axis: Int, at start: Int, fillValue value: Float = 0) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        let (outer, extent, inner) = axisSplit(shape, axis: axis, "pad")
        var expected = shape
        expected[axis] = x.shape.count == shape.count ? x.shape[axis] : -1
        precondition(x.shape == expected && start >= 0 && start + x.shape[axis] <= extent,
                     "pad/embed: \(x.shape) does not fit at \(start) on axis \(axis) of \(shape)")
        let piece = x.shape[axis] * inner
        let (before, row) = (start * inner, extent * inner)
        // Each row of the result written once: the fill before the piece, the piece, the fill after it.
        return Tensor(shape: shape) { out in
            x.withUnsafeBufferPointer { src in
                Parallelism.forEachChunk(count: outer, grain: max(1, Parallelism.elementwiseGrain / max(1, row))) { range in
                    for o in range {
                        let line = out.baseAddress! + o * row
                        line.update(repeating: value, count: before)
                        copyRun(piece, from: src.baseAddress! + o * piece, to: line + before)
                        (line + before + piece).update(repeating: value, count: row - before - piece)
                    }
                }
            }
        }
    }

    /// Copies `pieces` runs of `count` elements, `source` and `target` advancing by their strides from one to the
    /// next: the work of concatenation, slicing and embedding. Side by side on the worker threads in chunks of about
    /// `Parallelism.elementwiseGrain` elements; a short run (an attention head's 32 values) as one vector loop rather
    /// than a `memmove` call per run, which cost more than the copy.
    static func copyPieces(_ pieces: Int, count: Int, from source: UnsafePointer<Float>, stride sourceStride: Int,
                           to target: UnsafeMutablePointer<Float>, stride targetStride: Int) {
        guard pieces > 0, count > 0 else { return }
        Parallelism.forEachChunk(count: pieces, grain: max(1, Parallelism.elementwiseGrain / count)) { range in
            for o in range { copyRun(count, from: source + o * sourceStride, to: target + o * targetStride) }
        }
    }

    @inline(__always)
    private static func copyRun(_ count: Int, from source: UnsafePointer<Float>, to target: UnsafeMutablePointer<Float>) {
        if count <= 256 {
            for j in 0..<count { target[j] = source[j] }
        } else {
            target.update(from: source, count: count)
        }
    }

    /// `x` padded with `before` and `after` entries of `value` along `axis`.
    public static func pad(_ x: Tensor, axis: Int, before: Int, after: Int, value: Float = 0) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        precondition(before >= 0 && after >= 0, "pad: negative padding \(before), \(after)")
        var shape = x.shape
        shape[axis] += before + after
        return embed(x, in: shape, axis: axis, at: before, fillValue: value)
    }

    /// Swaps the last two dimensions: `[..., M, N]` -> `[..., N, M]`.
    public static func transposeLastTwo(_ x: Tensor) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        precondition(x.rank >= 2, "transposeLastTwo: needs rank >= 2, got \(x.shape)")
        let m = x.shape[x.rank - 2], n = x.shape[x.rank - 1]
        let batch = x.count / max(1, m * n)
        var outShape = x.shape
        outShape.swapAt(x.rank - 2, x.rank - 1)
        return Tensor(shape: outShape) { out in
            x.withUnsafeBufferPointer { src in
                for b in 0..<batch {
                    let s = src.baseAddress! + b * m * n, d = out.baseAddress! + b * m * n
                    for i in 0..<m {
                        for j in 0..<n { d[j * m + i] = s[i * n + j] }
                    }
                }
            }
        }
    }

    /// Rows of `x` (`[B, L, D]`) picked along time: `out[b, j] = x[b, indices[b * M + j]]`, giving
    /// `[B, M, D]`.
    public static func gatherTime(_ x: Tensor, indices: [Int], count m: Int) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        precondition(x.rank == 3, "gatherTime: input must be [B, L, D], got \(x.shape)")
        let (batch, length, width) = (x.shape[0], x.shape[1], x.shape[2])
        precondition(indices.count == batch * m, "gatherTime: \(indices.count) indices for [\(batch), \(m)]")
        return Tensor(shape: [batch, m, width]) { out in
            x.withUnsafeBufferPointer { src in
                for b in 0..<batch {
                    for j in 0..<m {
                        let t = indices[b * m + j]
                        precondition(t >= 0 && t < length, "gatherTime: index \(t) out of range 0..<\(length)")
                        (out.baseAddress! + (b * m + j) * width).update(from: src.baseAddress! + (b * length + t) * width, count: width)
                    }
                }
            }
        }
    }

    /// Rows of `source` (`[B, M, D]`) added into a zero `[B, length, D]` tensor at time `indices`:
    /// repeated indices accumulate. The backward of `gatherTime`.
    public static func scatterAddTime(_ source: Tensor, indices: [Int], length: Int) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        precondition(source.rank == 3, "scatterAddTime: source must be [B, M, D], got \(source.shape)")
        let (batch, m, width) = (source.shape[0], source.shape[1], source.shape[2])
        precondition(indices.count == batch * m, "scatterAddTime: \(indices.count) indices for [\(batch), \(m)]")
        var result = Tensor(zeros: [batch, length, width])
        result.withUnsafeMutableBufferPointer { out in
            source.withUnsafeBufferPointer { src in
                for b in 0..<batch {
                    for j in 0..<m {
                        let t = indices[b * m + j]
                        precondition(t >= 0 && t < length, "scatterAddTime: index \(t) out of range 0..<\(length)")
                        let target = out.baseAddress! + (b * length + t) * width
                        let row = src.baseAddress! + (b * m + j) * width
                        for d in 0..<width { target[d] += row[d] }
                    }
                }
            }
        }
        return result
    }

    /// Rows of a table (`[V, D]`) looked up by `indices`, giving `indices.count` rows.
    public static func embeddingLookup(_ table: Tensor, indices: [Int]) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        precondition(table.rank == 2, "embedding: table must be [V, D], got \(table.shape)")
        let (vocabulary, width) = (table.shape[0], table.shape[1])
        return Tensor(shape: [indices.count, width]) { out in
            table.withUnsafeBufferPointer { src in
                for (row, index) in indices.enumerated() {
                    precondition(index >= 0 && index < vocabulary, "embedding: index \(index) out of range 0..<\(vocabulary)")
                    (out.baseAddress! + row * width).update(from: src.baseAddress! + index * width, count: width)
                }
            }
        }
    }

    /// The backward of `embeddingLookup`: rows of `gradient` summed into a `[V, D]` table.
    public static func embeddingBackward(_ gradient: Tensor, indices: [Int], vocabulary: Int) -> Tensor {
        let profiled = Profiler.enter(.copies)
        defer { Profiler.exit(profiled) }
        let width = gradient.count / max(1, indices.count)
        var result = Tensor(zeros: [vocabulary, width])
        result.withUnsafeMutableBufferPointer { out in
            gradient.withUnsafeBufferPointer { g in
                for (row, index) in indices.enumerated() {
                    let target = out.baseAddress! + index * width
                    let source = g.baseAddress! + row * width
                    for d in 0..<width { target[d] += source[d] }
                }
            }
        }
        return result
    }
}

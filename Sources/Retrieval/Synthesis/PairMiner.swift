import Foundation
import Tensor

/// Finds each video's most similar other videos: its "spurious pairs" (TD-DETR section 3.1).
///
/// Paper similarity: `a_kj = 1/(L_k L_j) sum_i sum_j cos(v_k^i, v_j^j)`. Since the cosine is the dot
/// product of unit vectors, the double sum equals the dot product of the two videos' mean unit clip
/// vectors, so all pairs come from one GEMM over pooled vectors. It is computed in row and column blocks
/// with a running top-k per row, so memory stays O(N k + block^2) whatever N. Temporal endpoint dims
/// are not part of the appearance and are left out.
///
/// The authors' public code uses another similarity (`topk-mean`, `topkMeanSimilarity`): the sum of the 50
/// largest entries of the clip-to-clip dot-product matrix, halved, divided by 50. It costs a product per
/// pair, so it is meant for the `batch` scope or small sets.
public struct PairMiner: Sendable {
    public enum Similarity: String, Sendable, CaseIterable {
        case meanCosine = "mean-cosine"
        case topkMean = "topk-mean"
    }

    public enum Scope: String, Sendable, CaseIterable {
        /// Partners from the whole split.
        case global
        /// Partners only from the same training batch (the paper's setting); batches come from a seeded shuffle.
        case batch
    }

    public var k: Int
    public var similarity: Similarity = .meanCosine
    public var scope: Scope = .global
    public var batchSize = 32
    public var seed: UInt64 = 1
    public var topkEntries = 50
    public var block = 2048

    public init(k: Int) { self.k = k }

    /// `partners[i * k + j]` is video i's j-th most similar other video (-1 where fewer exist) and
    /// `scores` the similarity; `batch[i]` is video i's batch (all 0 in global scope).
    public struct Result: Sendable, Equatable {
        public var k: Int
        public var partners: [Int32]
        public var scores: [Float]
        public var batch: [Int32]

        public init(k: Int, partners: [Int32], scores: [Float], batch: [Int32]) {
            self.k = k
            self.partners = partners
            self.scores = scores
            self.batch = batch
        }
    }

    public func mine(_ videos: VideoSet, progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let n = videos.count
        var result = Result(k: k, partners: [Int32](repeating: -1, count: n * k),
                            scores: [Float](repeating: -.infinity, count: n * k), batch: [Int32](repeating: 0, count: n))
        let groups: [[Int]]
        switch scope {
        case .global:
            groups = [Array(0..<n)]
        case .batch:
            var order = Array(0..<n)
            var g = SeededGenerator(seed: seed)
            order.shuffle(using: &g)
            groups = stride(from: 0, to: n, by: batchSize).map { Array(order[$0..<min(n, $0 + batchSize)]) }
            for (b, members) in groups.enumerated() { for i in members { result.batch[i] = Int32(b) } }
        }
        switch similarity {
        case .meanCosine:
            let pooled = try Self.pooledUnitMeans(videos)
            let d = videos.featureDim
            if scope == .global {
                blockedTopK(vectors: pooled, dim: d, members: groups[0], into: &result, progress: progress)
            } else {
                var done = 0
                for members in groups {
                    var local = [Float](repeating: 0, count: members.count * d)
                    for (r, i) in members.enumerated() { for j in 0..<d { local[r * d + j] = pooled[i * d + j] } }
                    blockedTopK(vectors: local, dim: d, members: members, into: &result, progress: nil)
                    done += members.count
                    progress?(done, n)
                }
            }
        case .topkMean:
            var done = 0
            for members in groups {
                try pairwiseTopK(videos, members: members, into: &result, progress: groups.count == 1 ? progress : nil)
                done += members.count
                progress?(done, n)
            }
        }
        return result
    }

    /// Per video, the mean of its L2-normalised clip vectors (feature dims only): `[N, featureDim]`. Videos
    /// are read one at a time (on every thread), so memory is the pooled matrix, not the split.
    public static func pooledUnitMeans(_ videos: VideoSet) throws -> [Float] {
        let d = videos.featureDim, width = videos.dim
        var pooled = [Float](repeating: 0, count: videos.count * d)
        var failure: Error?
        let lock = NSLock()
        pooled.withUnsafeMutableBufferPointer { out in
            let outBase = out.baseAddress!
            Parallelism.forEachChunk(count: videos.count, grain: 16) { range in
                for v in range {
                    let length = videos.length(v)
                    guard length > 0 else { continue }
                    let rows: [Float]
                    do { rows = try videos.clips(v) } catch {
                        lock.lock()
                        failure = failure ?? error
                        lock.unlock()
                        return
                    }
                    let dst = outBase + v * d
                    rows.withUnsafeBufferPointer { f in
                        for c in 0..<length {
                            let row = f.baseAddress! + c * width
                            var norm: Float = 0
                            for j in 0..<d { norm += row[j] * row[j] }
                            let inv = norm > 0 ? 1 / norm.squareRoot() : 0
                            for j in 0..<d { dst[j] += row[j] * inv }
                        }
                    }
                    let scale = 1 / Float(length)
                    for j in 0..<d { dst[j] *= scale }
                }
            }
        }
        if let failure { throw failure }
        return pooled
    }

    /// Top-k among `members` by blocked GEMM; row r of `vectors` is member r.
    func blockedTopK(vectors local: [Float], dim d: Int, members: [Int], into result: inout Result, progress: ((Int, Int) -> Void)?) {
        let m = members.count
        guard m > 1, d > 0 else { return }
        let b = min(block, m)
        var tile = [Float](repeating: 0, count: b * b)
        var partners = [Int32](repeating: -1, count: m * k)
        var scores = [Float](repeating: -.infinity, count: m * k)
        let kk = k
        local.withUnsafeBufferPointer { p in
            for r0 in stride(from: 0, to: m, by: b) {
                let rows = min(b, m - r0)
                for c0 in stride(from: 0, to: m, by: b) {
                    let cols = min(b, m - c0)
                    tile.withUnsafeMutableBufferPointer { t in
                        GEMM.multiply(m: rows, n: cols, k: d, p.baseAddress! + r0 * d, lda: d, transposeA: false,
                                      p.baseAddress! + c0 * d, ldb: d, transposeB: true, into: t.baseAddress!, ldc: cols)
                    }
                    tile.withUnsafeBufferPointer { t in
                        partners.withUnsafeMutableBufferPointer { pp in
                            scores.withUnsafeMutableBufferPointer { ss in
                                let pBase = pp.baseAddress!, sBase = ss.baseAddress!, tBase = t.baseAddress!
                                Parallelism.forEachChunk(count: rows, grain: 64) { range in
                                    for r in range {
                                        Self.insertRow(tBase + r * cols, count: cols, columnOffset: c0, selfIndex: r0 + r,
                                                       partners: pBase + (r0 + r) * kk, scores: sBase + (r0 + r) * kk, k: kk)
                                    }
                                }
                            }
                        }
                    }
                }
                progress?(r0 + rows, m)
            }
        }
        for (r, i) in members.enumerated() {
            for j in 0..<k {
                let local = partners[r * k + j]
                result.partners[i * k + j] = local < 0 ? -1 : Int32(members[Int(local)])
                result.scores[i * k + j] = scores[r * k + j]
            }
        }
    }

    /// Merges one tile row into a row's running top-k (kept sorted, best first; ties keep the lower index).
    @inline(__always)
    static func insertRow(_ values: UnsafePointer<Float>, count: Int, columnOffset: Int, selfIndex: Int,
                          partners: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>, k: Int) {
        var threshold = scores[k - 1]
        for c in 0..<count {
            let v = values[c]
            guard v > threshold else { continue }
            let column = columnOffset + c
            if column == selfIndex { continue }
            var pos = k - 1
            while pos > 0 && scores[pos - 1] < v {
                scores[pos] = scores[pos - 1]
                partners[pos] = partners[pos - 1]
                pos -= 1
            }
            scores[pos] = v
            partners[pos] = Int32(column)
            threshold = scores[k - 1]
        }
    }

    /// The authors' code's similarity, pair by pair.
    /// The members' features are loaded together: the pairwise similarity revisits every one of them.
    func pairwiseTopK(_ videos: VideoSet, members: [Int], into result: inout Result, progress: ((Int, Int) -> Void)?) throws {
        let m = members.count
        guard m > 1 else { return }
        let rows = try members.map { try videos.clips($0) }
        let longest = (0..<videos.count).reduce(0) { max($0, videos.length($1)) }
        var sim = [Float](repeating: 0, count: m * m)
        for a in 0..<m {
            for b in (a + 1)..<m {
                let s = Self.topkMeanSimilarity(rows[a], rows[b], dim: videos.featureDim, width: videos.dim, entries: topkEntries,
                                                paddedLength: longest)
                sim[a * m + b] = s
                sim[b * m + a] = s
            }
            progress?(a + 1, m)
        }
        for a in 0..<m {
            var partners = [Int32](repeating: -1, count: k), scores = [Float](repeating: -.infinity, count: k)
            sim.withUnsafeBufferPointer { s in
                Self.insertRow(s.baseAddress! + a * m, count: m, columnOffset: 0, selfIndex: a,
                               partners: &partners, scores: &scores, k: k)
            }
            for j in 0..<k {
                result.partners[members[a] * k + j] = partners[j] < 0 ? -1 : Int32(members[Int(partners[j])])
                result.scores[members[a] * k + j] = scores[j]
            }
        }
    }

    /// The authors' code's similarity of two videos' rows (feature dims; tef left out): the `entries` largest
    /// clip-to-clip dot products, halved, summed and divided by `entries` (always `entries`, also when fewer
    /// values exist). As the authors zero-pad every video to the split's longest, `paddedLength`, before the
    /// product, a pair with `La * Lb < paddedLength^2` also has that many zero entries to choose from, which
    /// outrank negative products.
    public static func topkMeanSimilarity(_ a: [Float], _ b: [Float], dim d: Int, width: Int, entries: Int, paddedLength: Int = 0) -> Float {
        let la = a.count / width, lb = b.count / width
        guard la > 0, lb > 0 else { return 0 }
        var products = [Float](repeating: 0, count: la * lb)
        a.withUnsafeBufferPointer { fa in
            b.withUnsafeBufferPointer { fb in
                products.withUnsafeMutableBufferPointer { out in
                    GEMM.multiply(m: la, n: lb, k: d, fa.baseAddress!, lda: width, transposeA: false,
                                  fb.baseAddress!, ldb: width, transposeB: true, into: out.baseAddress!, ldc: lb)
                }
            }
        }
        let zeros = max(0, paddedLength * paddedLength - la * lb)
        return products.withUnsafeBufferPointer { p in
            topkMean(p.baseAddress!, rows: la, columns: lb, stride: lb, entries: entries, paddingZeros: zeros)
        }
    }

    /// `sum(top entries of the block and of paddingZeros zeros) / 2 / entries` over a `rows x columns` block of
    /// dot products with row stride `stride`.
    static func topkMean(_ block: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int, entries: Int, paddingZeros: Int) -> Float {
        guard entries > 0 else { return 0 }
        // The running top list, sorted descending; the zeros of the padding seed it.
        var top = [Float](repeating: -.infinity, count: entries)
        var filled = min(entries, paddingZeros)
        for i in 0..<filled { top[i] = 0 }
        top.withUnsafeMutableBufferPointer { t in
            let base = t.baseAddress!
            for r in 0..<rows {
                let row = block + r * stride
                for c in 0..<columns {
                    let v = row[c]
                    if filled == entries && v <= base[entries - 1] { continue }
                    var pos = filled == entries ? entries - 1 : filled
                    if filled < entries { filled += 1 }
                    while pos > 0 && base[pos - 1] < v {
                        base[pos] = base[pos - 1]
                        pos -= 1
                    }
                    base[pos] = v
                }
            }
        }
        var sum: Float = 0
        for i in 0..<filled { sum += top[i] }
        return sum / 2 / Float(entries)
    }
}

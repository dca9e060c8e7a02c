import Foundation
import Tensor

/// VSDC as the authors' public TD-DETR code does it (`SimSampler`, `SimilarityConcatDataset` and
/// `SyntheticDataset` of its `start_end_dataset.py`), for the train stage's `recipe: authors-code`.
///
/// An epoch is a random permutation of `2N` indices over [synthetic N | original N] (N training queries), cut
/// into batches. In a batch, a synthetic index `i < N` is paired with the index of the batch most similar to it
/// (`partners`) and yields two samples (`samplePair`): one focused on query i, one on the partner's query. An
/// original index `N + i` yields query i's own sample. A batch of 32 indices so trains about 48 samples.
///
/// The similarities a batch needs are computed when it is built, from its own videos only: nothing grows with
/// `N^2`. Synthesized videos are not cut to `max_clips`, as the code does not cut QVHighlights' (other datasets
/// are average-pooled down to `max_v_l` there; not reproduced).
public struct AuthorsCodeSynthesizer: Sendable, Equatable {
    /// Share of the anchor's background clips kept; the partner gives `1 - alpha` of all its clips (code: 0.7).
    public var alpha = 0.7
    /// Entries of the clip dot-product matrix the similarity sums (code: 50).
    public var topkEntries = 50
    /// Similarities above this are zeroed before the argmax (near duplicates): the code does so with 0.9 on
    /// every dataset but QVHighlights. nil: QVHighlights' behaviour, no cut.
    public var nearDuplicateCutoff: Float?

    public init() {}

    // MARK: the epoch

    /// The order of one epoch's indices: a random permutation of `0..<2n` (`i < n`: synthetic index of query i,
    /// `i >= n`: original query `i - n`), as the code's `RandomSampler` over the concatenated dataset.
    public static func epochOrder(count n: Int, generator: inout SeededGenerator) -> [Int] {
        var order = Array(0..<(2 * n))
        order.shuffle(using: &generator)
        return order
    }

    // MARK: pairing

    /// The similarity of every two positions of `batch` (`[m * m]`, m = batch size): the code's similarity
    /// (`PairMiner.topkMeanSimilarity`, videos padded to `paddedLength`) between the videos of two synthetic
    /// indices, and 0 on the diagonal and wherever either index is an original (`>= n`): the code copies its
    /// `N x N` matrix into the corner of a `2N x 2N` zero matrix.
    public func batchSimilarities(_ split: MomentSplit, batch: [Int], paddedLength: Int) throws -> [Float] {
        let n = split.queries.count, m = batch.count
        let videos = split.videos, d = videos.featureDim, width = videos.dim
        var similarities = [Float](repeating: 0, count: m * m)
        let synthetic = batch.indices.filter { batch[$0] < n }
        guard synthetic.count > 1, d > 0 else { return similarities }
        // The synthetic positions' clips stacked `[total, d]`, so that position a is compared with every later
        // position by one product of its rows with the rows after it.
        var starts = [0]
        var stacked: [Float] = []
        var loaded: [Int: [Float]] = [:]
        for position in synthetic {
            let video = split.queries.videoIndex[batch[position]]
            if loaded[video] == nil { loaded[video] = try videos.clips(video) }
            let rows = loaded[video]!, length = videos.length(video)
            stacked.reserveCapacity(stacked.count + length * d)
            rows.withUnsafeBufferPointer { r in
                for c in 0..<length { stacked.append(contentsOf: UnsafeBufferPointer(start: r.baseAddress! + c * width, count: d)) }
            }
            starts.append(starts.last! + length)
        }
        let total = starts.last!
        var products = [Float](repeating: 0, count: 0)
        stacked.withUnsafeBufferPointer { s in
            let base = s.baseAddress!
            for a in 0..<(synthetic.count - 1) {
                let rows = starts[a + 1] - starts[a], columns = total - starts[a + 1]
                guard rows > 0, columns > 0 else { continue }
                if products.count < rows * columns { products = [Float](repeating: 0, count: rows * columns) }
                products.withUnsafeMutableBufferPointer { out in
                    GEMM.multiply(m: rows, n: columns, k: d, base + starts[a] * d, lda: d, transposeA: false,
                                  base + starts[a + 1] * d, ldb: d, transposeB: true, into: out.baseAddress!, ldc: columns)
                }
                products.withUnsafeBufferPointer { out in
                    for b in (a + 1)..<synthetic.count {
                        let lb = starts[b + 1] - starts[b]
                        let zeros = max(0, paddedLength * paddedLength - rows * lb)
                        let value = PairMiner.topkMean(out.baseAddress! + (starts[b] - starts[a + 1]), rows: rows, columns: lb,
                                                       stride: columns, entries: topkEntries, paddingZeros: zeros)
                        similarities[synthetic[a] * m + synthetic[b]] = value
                        similarities[synthetic[b] * m + synthetic[a]] = value
                    }
                }
            }
        }
        return similarities
    }

    /// Per position of `batch`, the query a synthetic index is paired with (-1 for an original index): the
    /// argmax of its row of `similarities` (the first on ties, as `torch.argmax`), the diagonal zeroed and, with
    /// `nearDuplicateCutoff`, the values above it zeroed. When no synthetic batch-mate scores above zero the
    /// argmax can land on an original index (`>= n`) or on the index itself; the code's dataset then clamps an
    /// index `>= n` to `n - 1`, and so does this.
    public func partners(batch: [Int], count n: Int, similarities: [Float]) -> [Int] {
        let m = batch.count
        precondition(similarities.count == m * m, "partners: \(similarities.count) similarities for a batch of \(m)")
        return (0..<m).map { a in
            guard batch[a] < n else { return -1 }
            var best = 0
            var bestValue = -Float.infinity
            for b in 0..<m {
                var value = b == a ? 0 : similarities[a * m + b]
                if let cutoff = nearDuplicateCutoff, value > cutoff { value = 0 }
                if value > bestValue {
                    bestValue = value
                    best = b
                }
            }
            return min(batch[best], n - 1)
        }
    }

    // MARK: synthesis

    /// The clips of a query's merged ground truth in a video of `clips` clips, as the code takes them: per window
    /// `int(floor(start) / clipLength) ..< int(ceil(end) / clipLength)` (the start clamped to the last clip, the
    /// end to the video), every window's merged into ONE range `min...max`, so the gaps between windows count as
    /// ground truth. When that holds no clip, the last window's start clip. nil without windows.
    public static func groundTruthRange(_ windows: [[Double]], clips: Int, clipLength: Double) -> ClosedRange<Int>? {
        guard let last = windows.last, clips > 0 else { return nil }
        func startClip(_ w: [Double]) -> Int { min(max(0, Int(w[0].rounded(.down) / clipLength)), clips - 1) }
        var low = Int.max, high = Int.min
        for w in windows {
            let start = startClip(w), end = min(Int(w[1].rounded(.up) / clipLength), clips)
            if end > start {
                low = min(low, start)
                high = max(high, end - 1)
            }
        }
        if low > high { return startClip(last)...startClip(last) }
        return low...high
    }

    /// A random `count` of `items`, without replacement, in draw order.
    static func draw(_ items: [Int], count: Int, generator: inout SeededGenerator) -> [Int] {
        var pool = items
        let k = min(count, pool.count)
        for i in 0..<k { pool.swapAt(i, i + Int(generator.next() % UInt64(pool.count - i))) }
        return Array(pool[0..<k])
    }

    /// The anchor's background clips kept: a random `int(alpha * |background|)` of them, none when that is 2
    /// or fewer; sorted.
    public func ownBackground(_ background: [Int], generator: inout SeededGenerator) -> [Int] {
        let count = Int(Double(background.count) * alpha)
        return count > 2 ? Self.draw(background, count: count, generator: &generator).sorted() : []
    }

    /// The partner's clips: a random `int((1 - alpha) * length)` of the WHOLE partner video (its ground truth
    /// may be among them), none when that is 2 or fewer; sorted.
    public func partnerClips(length: Int, generator: inout SeededGenerator) -> [Int] {
        let count = Int(Double(length) * (1 - alpha))
        return count > 2 ? Self.draw(Array(0..<length), count: count, generator: &generator).sorted() : []
    }

    /// The code's rate `r = 1.2 - 0.4 U`, `U` uniform in [0, 1): r in (0.8, 1.2].
    public static func jitterRate(generator: inout SeededGenerator) -> Double {
        1.2 - 0.4 * Double(generator.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Rate jitter of a sorted block of `n` clips: `rate > 1` adds `int(n * rate - n)` clips drawn from the
    /// block without replacement as duplicates (a slow-down); `rate <= 1` keeps a random `int(n * rate)` (a
    /// speed-up). Sorted again, so a duplicate sits next to its original.
    public static func jitter(_ clips: [Int], rate: Double, generator: inout SeededGenerator) -> [Int] {
        let n = Double(clips.count)
        if n < n * rate {
            return (clips + draw(clips, count: Int(n * rate - n), generator: &generator)).sorted()
        }
        return draw(clips, count: Int(n * rate), generator: &generator).sorted()
    }

    /// The two samples of synthetic index `anchor` (a query) paired with query `partner`: anchor 0 = [anchor's
    /// own block, partner block] focused on the anchor's query, anchor 1 = [block of the anchor's video, the
    /// partner's own block] focused on the partner's query. An own block is the kept background (jittered) plus
    /// the whole merged ground truth appended after the jitter, sorted; the other block is the other video's
    /// sampled clips (jittered), sorted. Windows move by `(offset - bias) * clipLength`, the bias being how far
    /// the ground truth's first clip moved inside its block; saliency stays on the ground-truth clips, 0 elsewhere.
    public func samplePair(_ split: MomentSplit, anchor: Int, partner: Int,
                           generator g: inout SeededGenerator) throws -> (VideoSynthesizer.Sample, VideoSynthesizer.Sample) {
        let queries = split.queries, videos = split.videos, cl = videos.clipLength
        let focus = [anchor, partner]
        let video = focus.map { queries.videoIndex[$0] }
        let gt = try focus.indices.map { i -> ClosedRange<Int> in
            guard let range = Self.groundTruthRange(queries.windows[focus[i]], clips: videos.length(video[i]), clipLength: cl) else {
                throw DatasetError("query \(queries.qids[focus[i]]): no ground-truth window (or an empty video) to synthesize around")
            }
            return range
        }
        var samples: [VideoSynthesizer.Sample] = []
        for i in 0..<2 {
            let other = 1 - i
            let background = (0..<videos.length(video[i])).filter { !gt[i].contains($0) }
            let kept = ownBackground(background, generator: &g)
            let sampled = partnerClips(length: videos.length(video[other]), generator: &g)
            let own = (Self.jitter(kept, rate: Self.jitterRate(generator: &g), generator: &g) + Array(gt[i])).sorted()
            let otherBlock = Self.jitter(sampled, rate: Self.jitterRate(generator: &g), generator: &g)
            let bias = gt[i].lowerBound - own.firstIndex(of: gt[i].lowerBound)!
            let offset = i == 0 ? 0 : otherBlock.count
            let ownItems = own.map { (video: video[i], clip: $0) }, otherItems = otherBlock.map { (video: video[other], clip: $0) }
            let sequence = i == 0 ? ownItems + otherItems : otherItems + ownItems
            let shift = Double(offset - bias) * cl
            let q = focus[i]
            var saliency: [Int32] = [], relevant: [UInt8] = []
            saliency.reserveCapacity(sequence.count * 3)
            // By position, not by video: the partner may be another query of the same video.
            let ownPositions = offset..<(offset + own.count)
            for (p, item) in sequence.enumerated() {
                if ownPositions.contains(p) && gt[i].contains(item.clip) {
                    let row = queries.clipOffsets[q] + item.clip
                    saliency += queries.saliency[(row * 3)..<(row * 3 + 3)]
                    relevant.append(queries.relevant[row])
                } else {
                    saliency += [0, 0, 0]
                    relevant.append(0)
                }
            }
            samples.append(VideoSynthesizer.Sample(clips: sequence, windows: queries.windows[q].map { [$0[0] + shift, $0[1] + shift] },
                                                   saliency: saliency, relevant: relevant))
        }
        return (samples[0], samples[1])
    }

    /// The split of synthesized `samples`, sample i built around query `sourceQuery[i]` of `source`: clips gathered
    /// from `source` by provenance (tef recomputed), the query's tokens, the sample's windows and saliency.
    public static func split(_ samples: [VideoSynthesizer.Sample], sourceQuery: [Int], source: MomentSplit) -> MomentSplit {
        let videos = source.videos, queries = source.queries
        var provenance: [Int32] = [], offsets = [0], tokenOffsets = [0]
        var saliency: [Int32] = [], relevant: [UInt8] = []
        for (sample, q) in zip(samples, sourceQuery) {
            for c in sample.clips { provenance += [Int32(c.video), Int32(c.clip)] }
            offsets.append(offsets.last! + sample.clips.count)
            tokenOffsets.append(tokenOffsets.last! + queries.tokenCount(q))
            saliency += sample.saliency
            relevant += sample.relevant
        }
        let vids = zip(samples, sourceQuery).enumerated().map { "\(videos.vids[queries.videoIndex[$0.element.1]])#code\($0.offset)" }
        return MomentSplit(
            name: "synthesized",
            videos: VideoSet(vids: vids, durations: samples.map { Double($0.clips.count) * videos.clipLength },
                             clipLength: videos.clipLength, featureDim: videos.featureDim, tef: videos.tef,
                             source: GatheredClips(base: videos, provenance: provenance, offsets: offsets), offsets: offsets),
            queries: QuerySet(qids: sourceQuery.enumerated().map { "\(queries.qids[$0.element])_code\($0.offset)" },
                              texts: sourceQuery.map { queries.texts[$0] }, videoIndex: Array(samples.indices),
                              textDim: queries.textDim, tokenSource: PickedRows(base: queries.tokenSource, picks: sourceQuery),
                              tokenOffsets: tokenOffsets, windows: samples.map(\.windows), hasSaliency: queries.hasSaliency,
                              saliency: saliency, relevant: relevant, clipOffsets: offsets,
                              eventType: queries.eventType.map { t in sourceQuery.map { t[$0] } }))
    }
}

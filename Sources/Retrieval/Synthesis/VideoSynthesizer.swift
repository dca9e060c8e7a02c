import Foundation
import Tensor

/// Video synthesis with dynamic context (TD-DETR section 3.1, figure 3).
///
/// For a query of video `V_i` (its target moment `m_i`) and `V_i`'s spurious partner `V_k`: keep every
/// ground-truth clip of `V_i`, each other clip of `V_i` with probability `alpha`, each clip of `V_k` with
/// probability `1 - alpha`; concatenate the kept clips of `V_i` then those of `V_k`, each set in its
/// original order. Windows move with their clips (a window's clips are all kept and stay contiguous) and
/// keep their sub-clip offsets; saliency goes with `V_i`'s clips, `V_k`'s get 0. The symmetric sample
/// does the same focused on a query of `V_k` with `V_i` as context.
///
/// The authors' public code synthesizes otherwise (one merged ground-truth range, whole-partner sampling,
/// duplicating rate jitter, both anchors from one pair, in batch): `AuthorsCodeSynthesizer`, the train
/// stage's `recipe: authors-code`.
public struct VideoSynthesizer: Sendable, Equatable {
    public enum PartnerFilter: String, Sendable, CaseIterable {
        case none
        /// Skip partners whose queries name the same event (synthetic data) or share a content word (real data).
        case sharedEvent = "shared-event"
    }

    public var alpha = 0.5
    public var variants = 1
    public var symmetric = true
    public var seed: UInt64 = 1
    public var filter: PartnerFilter = .none
    public var maxClips = 75

    public init() {}

    /// The synthesized split plus, per output clip, where it came from. The split holds no feature copies: its
    /// videos gather their clips from the source split by `provenance`, its queries' tokens are the source
    /// queries' (`sourceQuery`).
    public struct Output: Sendable {
        public var split: MomentSplit
        /// `[clips, 2]`: (source video index, source clip index) for every synthesized clip.
        public var provenance: [Int32]
        /// Per sample: the query it is built around (index into the input split's queries).
        public var sourceQuery: [Int32]
        /// Per sample: the focus video and the partner video (indices into the input split).
        public var focusVideo: [Int32]
        public var partnerVideo: [Int32]
        /// Per sample: whether the partner shares the focus query's event (synthetic) or a content word (real).
        public var partnerSharesEvent: [Bool]
        /// Queries that had no admissible partner (all excluded by the filter).
        public var skipped: Int

        public var sharedEventRate: Double {
            partnerSharesEvent.isEmpty ? 0 : Double(partnerSharesEvent.filter { $0 }.count) / Double(partnerSharesEvent.count)
        }
    }

    /// One synthesized sample: where each of its clips comes from, its windows (seconds) and per-clip saliency.
    public struct Sample: Sendable, Equatable {
        /// (source video, source clip) per clip, in the new order.
        public var clips: [(video: Int, clip: Int)]
        public var windows: [[Double]]
        /// `[clips * 3]`: the focus query's scores on its own clips, 0 on the partner's.
        public var saliency: [Int32]
        public var relevant: [UInt8]

        public static func == (a: Sample, b: Sample) -> Bool {
            a.clips.map { [$0.video, $0.clip] } == b.clips.map { [$0.video, $0.clip] } && a.windows == b.windows
                && a.saliency == b.saliency && a.relevant == b.relevant
        }
    }

    /// The generator of the samples built around the query with id `qid`: seeded by the synthesizer's seed and
    /// the qid, so the stage and the in-batch path draw the same sample for the same query, partner and seed.
    public func generator(forQuery qid: String) -> SeededGenerator {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in qid.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
        return SeededGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ h)
    }

    public func synthesize(_ source: MomentSplit, pairs: PairMiner.Result, progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        let videos = source.videos, queries = source.queries
        guard pairs.partners.count == videos.count * pairs.k else {
            throw DatasetError("pairs cover \(pairs.partners.count / max(1, pairs.k)) videos, the split has \(videos.count)")
        }
        var queriesOfVideo = [[Int]](repeating: [], count: videos.count)
        for q in 0..<queries.count { queriesOfVideo[queries.videoIndex[q]].append(q) }
        let contentWords = queries.texts.map(Self.contentWords)
        func shares(_ q: Int, video o: Int) -> Bool {
            if let types = queries.eventType {
                return queriesOfVideo[o].contains { types[$0] == types[q] }
            }
            return queriesOfVideo[o].contains { !contentWords[$0].isDisjoint(with: contentWords[q]) }
        }

        var out = Output(split: source, provenance: [], sourceQuery: [], focusVideo: [], partnerVideo: [],
                         partnerSharesEvent: [], skipped: 0)
        var vids: [String] = [], durations: [Double] = [], offsets = [0]
        var qids: [String] = [], windows: [[[Double]]] = [], saliency: [Int32] = [], relevant: [UInt8] = []
        var tokenOffsets = [0], clipOffsets = [0]
        func add(_ sample: Sample, query q: Int, focus f: Int, other o: Int, tag: String) {
            for c in sample.clips { out.provenance += [Int32(c.video), Int32(c.clip)] }
            vids.append("\(videos.vids[f])+\(videos.vids[o])#\(tag)")
            durations.append(Double(sample.clips.count) * videos.clipLength)
            offsets.append(offsets.last! + sample.clips.count)
            qids.append("\(queries.qids[q])_\(tag)")
            windows.append(sample.windows)
            saliency += sample.saliency
            relevant += sample.relevant
            clipOffsets.append(clipOffsets.last! + sample.clips.count)
            tokenOffsets.append(tokenOffsets.last! + queries.tokenCount(q))
            out.sourceQuery.append(Int32(q))
            out.focusVideo.append(Int32(f))
            out.partnerVideo.append(Int32(o))
        }

        for q in 0..<queries.count {
            var g = generator(forQuery: queries.qids[q])
            let i = queries.videoIndex[q]
            var partner: Int?
            for j in 0..<pairs.k {
                let candidate = Int(pairs.partners[i * pairs.k + j])
                guard candidate >= 0, candidate != i else { continue }
                if filter == .sharedEvent && shares(q, video: candidate) { continue }
                partner = candidate
                break
            }
            guard let k = partner else {
                out.skipped += 1
                continue
            }
            for v in 0..<variants {
                add(try sample(source, query: q, focus: i, partner: k, generator: &g), query: q, focus: i, other: k, tag: "syn\(v)")
                out.partnerSharesEvent.append(shares(q, video: k))
                if symmetric, !queriesOfVideo[k].isEmpty {
                    let qk = queriesOfVideo[k][Int.random(in: 0..<queriesOfVideo[k].count, using: &g)]
                    add(try sample(source, query: qk, focus: k, partner: i, generator: &g), query: qk, focus: k, other: i,
                        tag: "sym\(v)_\(queries.qids[q])")
                    out.partnerSharesEvent.append(shares(qk, video: i))
                }
            }
            progress?(q + 1, queries.count)
        }
        let picks = out.sourceQuery.map { Int($0) }
        out.split = MomentSplit(
            name: "synthesized",
            videos: VideoSet(vids: vids, durations: durations, clipLength: videos.clipLength, featureDim: videos.featureDim,
                             tef: videos.tef, source: GatheredClips(base: videos, provenance: out.provenance, offsets: offsets),
                             offsets: offsets),
            queries: QuerySet(qids: qids, texts: picks.map { queries.texts[$0] }, videoIndex: Array(qids.indices),
                              textDim: queries.textDim, tokenSource: PickedRows(base: queries.tokenSource, picks: picks),
                              tokenOffsets: tokenOffsets, windows: windows, hasSaliency: queries.hasSaliency, saliency: saliency,
                              relevant: relevant, clipOffsets: clipOffsets, eventType: queries.eventType.map { t in picks.map { t[$0] } }))
        return out
    }

    /// Clip `c` is ground truth when its centre lies in one of the query's windows. A window shorter than
    /// half a clip may hold no centre (about 0.7% of TACoS windows at 2-s clips): the clips it overlaps
    /// stand for it, so that its moment is kept and its window survives the remapping.
    public static func groundTruthClips(_ windows: [[Double]], clips: Int, clipLength: Double) -> [Bool] {
        var gt = [Bool](repeating: false, count: clips)
        for w in windows {
            let centres = (0..<clips).filter { c in
                let centre = (Double(c) + 0.5) * clipLength
                return centre >= w[0] && centre < w[1]
            }
            let covered = centres.isEmpty
                ? (0..<clips).filter { Double($0) * clipLength < w[1] && Double($0 + 1) * clipLength > w[0] } : centres
            for c in covered { gt[c] = true }
        }
        return gt
    }

    /// The sample focused on query `q` of video `f` with partner video `o`: every ground-truth clip of `f`, its
    /// other clips with probability alpha, `o`'s with 1 - alpha, cut to `maxClips`, own clips first.
    public func sample(_ source: MomentSplit, query q: Int, focus f: Int, partner o: Int, generator g: inout SeededGenerator) throws -> Sample {
        let videos = source.videos, queries = source.queries
        let cl = videos.clipLength
        let lf = videos.length(f), lo = videos.length(o)
        let gt = Self.groundTruthClips(queries.windows[q], clips: lf, clipLength: cl)
        let gtCount = gt.filter { $0 }.count
        guard gtCount <= maxClips else {
            throw DatasetError("query \(queries.qids[q]): its \(gtCount) ground-truth clips do not fit in max_clips \(maxClips)")
        }
        var own = (0..<lf).filter { gt[$0] || Double(g.nextUniform()) < alpha }
        var other = (0..<lo).filter { _ in Double(g.nextUniform()) < 1 - alpha }
        // Too long: drop random non-ground-truth clips (own or partner) until it fits.
        while own.count + other.count > maxClips {
            let droppable = own.indices.filter { !gt[own[$0]] }
            let pick = Int.random(in: 0..<(droppable.count + other.count), using: &g)
            if pick < droppable.count { own.remove(at: droppable[pick]) } else { other.remove(at: pick - droppable.count) }
        }
        let sequence: [(video: Int, clip: Int)] = own.map { (f, $0) } + other.map { (o, $0) }
        var position = [Int: Int]()
        for (p, item) in sequence.enumerated() where item.video == f { position[item.clip] = p }

        // Windows keep their offsets inside their first and last clips.
        var windows: [[Double]] = []
        for w in queries.windows[q] {
            let first = Int((w[0] / cl).rounded(.down)), last = max(first, Int((w[1] / cl).rounded(.up)) - 1)
            let covered = (first...last).filter { $0 < lf && gt[$0] }
            guard let a = covered.first, let b = covered.last, let pa = position[a], let pb = position[b] else { continue }
            let start = Double(pa) * cl + max(0, w[0] - Double(a) * cl)
            let end = Double(pb) * cl + min(cl, w[1] - Double(b) * cl)
            windows.append([start, end])
        }
        var saliency: [Int32] = [], relevant: [UInt8] = []
        saliency.reserveCapacity(sequence.count * 3)
        for item in sequence {
            if item.video == f {
                let row = queries.clipOffsets[q] + item.clip
                saliency += queries.saliency[(row * 3)..<(row * 3 + 3)]
                relevant.append(queries.relevant[row])
            } else {
                saliency += [0, 0, 0]
                relevant.append(0)
            }
        }
        return Sample(clips: sequence, windows: windows, saliency: saliency, relevant: relevant)
    }

    static let stopWords: Set<String> = ["a", "an", "the", "is", "are", "and", "of", "in", "on", "at", "to", "with", "while",
                                         "then", "they", "he", "she", "his", "her", "it", "its", "person", "someone", "for",
                                         "from", "by", "as", "into", "up", "down", "out", "their", "them", "this", "that"]

    static func contentWords(_ text: String) -> Set<String> {
        Set(text.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init).filter { $0.count > 2 && !stopWords.contains($0) })
    }
}

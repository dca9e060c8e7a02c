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
/// Options from the authors' public code: `order: random` puts the partner's clips first half of the
/// time, and `rateJitter` re-draws each keep rate in [0.8, 1.2] x its value per sample.
public struct VideoSynthesizer: Sendable, Equatable {
    public enum PartnerFilter: String, Sendable, CaseIterable {
        case none
        /// Skip partners whose queries name the same event (synthetic data) or share a content word (real data).
        case sharedEvent = "shared-event"
    }

    public enum Order: String, Sendable, CaseIterable {
        case ownFirst = "own-first"
        case random
    }

    public var alpha = 0.5
    public var variants = 1
    public var symmetric = true
    public var seed: UInt64 = 1
    public var filter: PartnerFilter = .none
    public var order: Order = .ownFirst
    public var rateJitter = false
    public var maxClips = 75

    public init() {}

    /// The synthesized split plus, per output clip, where it came from.
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

        var out = Output(split: MomentSplit(name: "synthesized", videos: VideoSet(
            vids: [], durations: [], clipLength: videos.clipLength, featureDim: videos.featureDim, tef: videos.tef,
            features: [], offsets: [0]), queries: QuerySet(
            qids: [], texts: [], videoIndex: [], textDim: queries.textDim, tokens: [], tokenOffsets: [0], windows: [],
            hasSaliency: queries.hasSaliency, saliency: [], relevant: [], clipOffsets: [0],
            eventType: queries.eventType == nil ? nil : [])),
            provenance: [], sourceQuery: [], focusVideo: [], partnerVideo: [], partnerSharesEvent: [], skipped: 0)

        for q in 0..<queries.count {
            var g = SeededGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(q))
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
                try append(&out, source: source, query: q, focus: i, other: k, tag: "syn\(v)", generator: &g)
                out.partnerSharesEvent.append(shares(q, video: k))
                if symmetric, !queriesOfVideo[k].isEmpty {
                    let qk = queriesOfVideo[k][Int.random(in: 0..<queriesOfVideo[k].count, using: &g)]
                    try append(&out, source: source, query: qk, focus: k, other: i, tag: "sym\(v)_\(queries.qids[q])", generator: &g)
                    out.partnerSharesEvent.append(shares(qk, video: i))
                }
            }
            progress?(q + 1, queries.count)
        }
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

    private func append(_ out: inout Output, source: MomentSplit, query q: Int, focus f: Int, other o: Int, tag: String,
                        generator g: inout SeededGenerator) throws {
        let videos = source.videos, queries = source.queries
        let cl = videos.clipLength
        let lf = videos.length(f), lo = videos.length(o)
        let gt = Self.groundTruthClips(queries.windows[q], clips: lf, clipLength: cl)
        let gtCount = gt.filter { $0 }.count
        guard gtCount <= maxClips else {
            throw DatasetError("query \(queries.qids[q]): its \(gtCount) ground-truth clips do not fit in max_clips \(maxClips)")
        }
        let ownRate = rateJitter ? min(1, alpha * Double(g.nextUniform(in: 0.8, 1.2))) : alpha
        let partnerRate = rateJitter ? min(1, (1 - alpha) * Double(g.nextUniform(in: 0.8, 1.2))) : 1 - alpha
        var own = (0..<lf).filter { gt[$0] || Double(g.nextUniform()) < ownRate }
        var other = (0..<lo).filter { _ in Double(g.nextUniform()) < partnerRate }
        // Too long: drop random non-ground-truth clips (own or partner) until it fits.
        while own.count + other.count > maxClips {
            let droppable = own.indices.filter { !gt[own[$0]] }
            let pick = Int.random(in: 0..<(droppable.count + other.count), using: &g)
            if pick < droppable.count { own.remove(at: droppable[pick]) } else { other.remove(at: pick - droppable.count) }
        }
        let ownFirst = order == .ownFirst || g.nextUniform() < 0.5
        let sequence: [(video: Int, clip: Int)] = ownFirst
            ? own.map { (f, $0) } + other.map { (o, $0) }
            : other.map { (o, $0) } + own.map { (f, $0) }
        let length = sequence.count
        var position = [Int: Int]()
        for (p, item) in sequence.enumerated() where item.video == f { position[item.clip] = p }

        let width = videos.dim, d = videos.featureDim
        var rows = [Float](repeating: 0, count: length * width)
        for (p, item) in sequence.enumerated() {
            let src = (videos.offsets[item.video] + item.clip) * width
            for j in 0..<d { rows[p * width + j] = videos.features[src + j] }
            if videos.tef {
                rows[p * width + d] = Float(p) / Float(length)
                rows[p * width + d + 1] = Float(p + 1) / Float(length)
            }
            out.provenance += [Int32(item.video), Int32(item.clip)]
        }
        let newVideo = out.split.videos.count
        out.split.videos.vids.append("\(videos.vids[f])+\(videos.vids[o])#\(tag)")
        out.split.videos.durations.append(Double(length) * cl)
        out.split.videos.features += rows
        out.split.videos.offsets.append(out.split.videos.offsets.last! + length)

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
        // Mutated in place: a copy of the growing query set per sample would make synthesis quadratic.
        func appendQuery(_ qs: inout QuerySet) {
            qs.qids.append("\(queries.qids[q])_\(tag)")
            qs.texts.append(queries.texts[q])
            qs.videoIndex.append(newVideo)
            qs.tokens += queries.tokens(q)
            qs.tokenOffsets.append(qs.tokenOffsets.last! + queries.tokenCount(q))
            qs.windows.append(windows)
            for item in sequence {
                if item.video == f {
                    let row = queries.clipOffsets[q] + item.clip
                    qs.saliency += queries.saliency[(row * 3)..<(row * 3 + 3)]
                    qs.relevant.append(queries.relevant[row])
                } else {
                    qs.saliency += [0, 0, 0]
                    qs.relevant.append(0)
                }
            }
            qs.clipOffsets.append(qs.clipOffsets.last! + length)
            if let types = queries.eventType { qs.eventType!.append(types[q]) }
        }
        appendQuery(&out.split.queries)
        out.sourceQuery.append(Int32(q))
        out.focusVideo.append(Int32(f))
        out.partnerVideo.append(Int32(o))
    }

    static let stopWords: Set<String> = ["a", "an", "the", "is", "are", "and", "of", "in", "on", "at", "to", "with", "while",
                                         "then", "they", "he", "she", "his", "her", "it", "its", "person", "someone", "for",
                                         "from", "by", "as", "into", "up", "down", "out", "their", "them", "this", "that"]

    static func contentWords(_ text: String) -> Set<String> {
        Set(text.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init).filter { $0.count > 2 && !stopWords.contains($0) })
    }
}

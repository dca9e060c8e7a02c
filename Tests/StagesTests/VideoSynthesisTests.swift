import Foundation
import Retrieval
import XCTest

/// A small seeded generator for test data (SplitMix64), independent of the code under test.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func normal() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self), u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}

/// Video synthesis (TD-DETR section 3.1) checked sample by sample against its source split.
final class VideoSynthesisTests: XCTestCase {
    /// The clips a query's moment occupies: those whose centre lies in a window, and for a window too short
    /// to hold any clip centre, the clips it overlaps (else the moment would vanish from the sample).
    static func groundTruth(_ windows: [[Double]], clips: Int, clipLength cl: Double) -> Set<Int> {
        var gt = Set<Int>()
        for w in windows {
            let centres = (0..<clips).filter { (Double($0) + 0.5) * cl >= w[0] && (Double($0) + 0.5) * cl < w[1] }
            gt.formUnion(centres.isEmpty ? (0..<clips).filter { Double($0) * cl < w[1] && Double($0 + 1) * cl > w[0] } : centres)
        }
        return gt
    }

    /// The source query of a synthesized one: its qid is `QID_synV` or `QID_symV_OTHER`.
    static func sourceQuery(_ qid: String, in source: QuerySet) -> Int? {
        guard let r = qid.range(of: "_syn") ?? qid.range(of: "_sym") else { return nil }
        return source.qids.firstIndex(of: String(qid[..<r.lowerBound]))
    }

    /// Every per-sample invariant; returns the number of samples checked.
    @discardableResult
    func assertInvariants(_ out: VideoSynthesizer.Output, source: MomentSplit, synthesizer: VideoSynthesizer,
                          file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let sv = source.videos, sq = source.queries
        let v = out.split.videos, q = out.split.queries
        let cl = sv.clipLength, d = sv.featureDim, width = sv.dim
        func fail(_ s: Int, _ message: String) { XCTFail("sample \(s) (\(q.qids[s])): \(message)", file: file, line: line) }
        XCTAssertEqual(v.count, q.count, file: file, line: line)
        XCTAssertEqual(out.provenance.count, v.offsets.last! * 2, "one provenance row per clip", file: file, line: line)
        XCTAssertEqual(Set(q.qids).count, q.count, "qids are unique", file: file, line: line)
        XCTAssertEqual(v.featureDim, d, file: file, line: line)
        XCTAssertEqual(v.tef, sv.tef, file: file, line: line)
        for s in 0..<q.count {
            guard let src = Self.sourceQuery(q.qids[s], in: sq) else { fail(s, "no source query"); continue }
            let f = Int(out.focusVideo[s]), o = Int(out.partnerVideo[s])
            guard q.videoIndex[s] == s, sq.videoIndex[src] == f, f != o else { fail(s, "focus/partner/query mismatch"); continue }
            let length = v.length(s)
            guard length <= synthesizer.maxClips else { fail(s, "\(length) clips > max_clips"); continue }
            XCTAssertEqual(v.durations[s], Double(length) * cl, file: file, line: line)
            let items = (v.offsets[s]..<v.offsets[s + 1]).map { (video: Int(out.provenance[$0 * 2]), clip: Int(out.provenance[$0 * 2 + 1])) }
            guard items.allSatisfy({ ($0.video == f || $0.video == o) && $0.clip >= 0 && $0.clip < sv.length($0.video) }) else {
                fail(s, "provenance outside the focus and partner videos"); continue
            }
            if Set(items.map { $0.video * 1_000_000 + $0.clip }).count != items.count { fail(s, "a source clip used twice") }
            // Each video's clips in their original order, own and partner each one contiguous block.
            let own = items.filter { $0.video == f }.map(\.clip), partner = items.filter { $0.video == o }.map(\.clip)
            if own != own.sorted() || partner != partner.sorted() { fail(s, "clips out of their original order") }
            let blocks = zip(items, items.dropFirst()).filter { $0.video != $1.video }.count
            if blocks > 1 { fail(s, "own and partner clips interleaved") }
            if let firstPartner = items.firstIndex(where: { $0.video == o }), items[firstPartner...].contains(where: { $0.video == f }) {
                fail(s, "partner clips before own clips")
            }
            // Every ground-truth clip kept.
            let gt = Self.groundTruth(sq.windows[src], clips: sv.length(f), clipLength: cl)
            if !gt.isSubset(of: Set(own)) { fail(s, "ground-truth clips \(gt.subtracting(own).sorted()) dropped") }
            // Features are the source rows; tef recomputed for the new length.
            let rows = try v.clips(s)
            for (p, item) in items.enumerated() {
                let row = p * width, srcRow = item.clip * width
                let source = try sv.clips(item.video)
                if Array(rows[row..<(row + d)]) != Array(source[srcRow..<(srcRow + d)]) {
                    fail(s, "clip \(p) features differ from its provenance"); break
                }
                if sv.tef && (rows[row + d] != Float(p) / Float(length) || rows[row + d + 1] != Float(p + 1) / Float(length)) {
                    fail(s, "clip \(p) tef \(rows[row + d]), \(rows[row + d + 1]) for length \(length)"); break
                }
            }
            // Saliency: the query's own rows for own clips, zero for the partner's.
            for (p, item) in items.enumerated() {
                let row = q.clipOffsets[s] + p
                let got = Array(q.saliency[(row * 3)..<(row * 3 + 3)])
                if item.video == f {
                    let srcRow = sq.clipOffsets[src] + item.clip
                    if got != Array(sq.saliency[(srcRow * 3)..<(srcRow * 3 + 3)]) || q.relevant[row] != sq.relevant[srcRow] {
                        fail(s, "saliency of own clip \(item.clip) not carried"); break
                    }
                } else if got != [0, 0, 0] || q.relevant[row] != 0 {
                    fail(s, "partner clip \(item.clip) has saliency \(got)"); break
                }
            }
            // Windows: none lost, and the clips they overlap are exactly the kept ground-truth clips.
            let windows = q.windows[s]
            XCTAssertEqual(windows.count, sq.windows[src].count, "windows of \(q.qids[s])", file: file, line: line)
            let covered = Set((0..<length).filter { p in windows.contains { Double(p) * cl < $0[1] && Double(p + 1) * cl > $0[0] } })
            let gtPositions = Set(items.indices.filter { items[$0].video == f && gt.contains(items[$0].clip) })
            if covered != gtPositions { fail(s, "windows \(windows) cover clips \(covered.sorted()), ground truth is at \(gtPositions.sorted())") }
            for (w, original) in zip(windows, sq.windows[src]) where w[1] - w[0] > original[1] - original[0] + 1e-9 {
                fail(s, "window \(w) is longer than its source \(original)")
            }
            // The query itself is unchanged.
            XCTAssertEqual(q.texts[s], sq.texts[src], file: file, line: line)
            XCTAssertEqual(try q.tokens(s), try sq.tokens(src), file: file, line: line)
            if let types = sq.eventType { XCTAssertEqual(q.eventType?[s], types[src], file: file, line: line) }
        }
        return q.count
    }

    // MARK: data

    static func syntheticTrain(videos: Int = 80) -> (split: MomentSplit, pairs: PairMiner.Result) {
        var c = SyntheticBenchmark.Config()
        c.seed = 5
        c.trainVideos = videos
        c.videoDim = 16
        c.textDim = 8
        let split = SyntheticBenchmark(config: c).split("train")
        return (split, try! PairMiner(k: 5).mine(split.videos))
    }

    /// A hand-made split: ragged videos, 0-2 queries each, 1-2 windows per query with fractional ends
    /// (some shorter than half a clip, some across a clip boundary), random saliency, no event types; and
    /// hand-made pairs with missing (-1) and self entries.
    static func handMadeSplit(seed: UInt64, clipLength cl: Double = 2) -> (split: MomentSplit, pairs: PairMiner.Result) {
        var g = TestRandom(seed: seed)
        let n = 14, d = 5
        var videos = VideoSet(vids: [], durations: [], clipLength: cl, featureDim: d, tef: true, features: [], offsets: [0])
        var queries = QuerySet(qids: [], texts: [], videoIndex: [], textDim: 3, tokens: [], tokenOffsets: [0], windows: [],
                               hasSaliency: true, saliency: [], relevant: [], clipOffsets: [0])
        let words = ["dog", "runs", "beach", "cook", "pasta", "kitchen", "man", "sings", "guitar", "car", "parks", "street"]
        for i in 0..<n {
            let length = Int.random(in: 4...30, using: &g)
            let duration = Double(length) * cl - Double.random(in: 0..<(cl / 2), using: &g)
            var rows: [Float] = []
            for t in 0..<length {
                rows += (0..<d).map { _ in g.normal() } + [Float(t) / Float(length), Float(t + 1) / Float(length)]
            }
            videos.append(vid: "v\(i)", duration: duration, rows: rows)
            for _ in 0..<(i % 5 == 0 ? 0 : Int.random(in: 1...2, using: &g)) {
                var windows: [[Double]] = []
                var start = Double.random(in: 0..<(cl * 2), using: &g)
                for _ in 0..<Int.random(in: 1...2, using: &g) {
                    let span = Bool.random(using: &g) ? Double.random(in: 0.2..<(cl * 0.45), using: &g)
                                                       : Double.random(in: cl..<(cl * 6), using: &g)
                    let end = min(start + span, videos.durations[i])
                    if end > start { windows.append([start, end]) }
                    start = end + Double.random(in: cl..<(cl * 4), using: &g)
                    if start >= videos.durations[i] { break }
                }
                if windows.isEmpty { windows = [[0, cl]] }
                let qidNumber = queries.count
                queries.qids.append("q\(qidNumber)")
                let text = (0..<3).map { _ in words.randomElement(using: &g)! }.joined(separator: " ")
                queries.texts.append(text)
                queries.videoIndex.append(i)
                let tokens = Int.random(in: 2...6, using: &g)
                queries.appendTokens((0..<(tokens * 3)).map { _ in g.normal() })
                queries.windows.append(windows)
                for _ in 0..<length {
                    queries.saliency += (0..<3).map { _ in Int32.random(in: 0...4, using: &g) }
                    queries.relevant.append(UInt8.random(in: 0...1, using: &g))
                }
                queries.clipOffsets.append(queries.clipOffsets.last! + length)
            }
        }
        let k = 3
        var partners: [Int32] = []
        for i in 0..<n {
            partners += (0..<k).map { j in
                j == 0 && i % 4 == 1 ? -1 : (j == 0 && i % 4 == 2 ? Int32(i) : Int32.random(in: 0..<Int32(n), using: &g))
            }
        }
        let pairs = PairMiner.Result(k: k, partners: partners, scores: [Float](repeating: 0, count: n * k),
                                     batch: [Int32](repeating: 0, count: n))
        return (MomentSplit(name: "train", videos: videos, queries: queries), pairs)
    }

    // MARK: tests

    func testSyntheticSamplesKeepTheMomentAndCarryTheirProvenance() throws {
        let (split, pairs) = Self.syntheticTrain()
        var synth = VideoSynthesizer()
        synth.variants = 2
        let out = try synth.synthesize(split, pairs: pairs)
        XCTAssertEqual(out.split.queries.count, split.queries.count * 2 * 2, "two variants, each with its symmetric sample")
        XCTAssertEqual(out.skipped, 0)
        try assertInvariants(out, source: split, synthesizer: synth)
        // Both videos contribute at alpha 0.5: about half of the non-ground-truth clips come from the partner.
        let v = out.split.videos
        let partnerClips = (0..<v.count).reduce(0) { sum, s in
            sum + (v.offsets[s]..<v.offsets[s + 1]).filter { out.provenance[$0 * 2] == out.partnerVideo[s] }.count
        }
        XCTAssertGreaterThan(partnerClips, v.offsets.last! / 4)
    }

    func testHandMadeSplitKeepsEveryWindowIncludingShortOnes() throws {
        for (seed, cl) in [(1, 2.0), (2, 2.0), (3, 1.0)] as [(UInt64, Double)] {
            let (split, pairs) = Self.handMadeSplit(seed: seed, clipLength: cl)
            let short = split.queries.windows.joined().filter { $0[1] - $0[0] < cl / 2 }.count
            XCTAssertGreaterThan(short, 0, "the split has windows too short to hold a clip centre")
            var synth = VideoSynthesizer()
            synth.variants = 3
            synth.seed = seed
            let out = try synth.synthesize(split, pairs: pairs)
            XCTAssertGreaterThan(try assertInvariants(out, source: split, synthesizer: synth), 40)
            // Every video with a query but without a usable partner (-1 or itself only) is skipped.
            let usable = (0..<split.videos.count).map { i in
                (0..<pairs.k).contains { let p = Int(pairs.partners[i * pairs.k + $0]); return p >= 0 && p != i }
            }
            XCTAssertEqual(out.skipped, (0..<split.queries.count).filter { !usable[split.queries.videoIndex[$0]] }.count)
        }
    }

    func testMaxClipsDropsOnlyContextClips() throws {
        let (split, pairs) = Self.handMadeSplit(seed: 4)
        var synth = VideoSynthesizer()
        synth.alpha = 0.9
        synth.maxClips = 14
        let out = try synth.synthesize(split, pairs: pairs)
        XCTAssertGreaterThan(try assertInvariants(out, source: split, synthesizer: synth), 10)
        XCTAssertEqual((0..<out.split.videos.count).map(out.split.videos.length).max(), 14)
    }

    func testGroundTruthLongerThanMaxClipsIsAnErrorNamingTheQuery() throws {
        let (split, pairs) = Self.handMadeSplit(seed: 4)
        var synth = VideoSynthesizer()
        synth.maxClips = 2
        XCTAssertThrowsError(try synth.synthesize(split, pairs: pairs)) { error in
            let message = "\(error)"
            XCTAssertNotNil(message.range(of: #"^query q[0-9]+: its [3-9][0-9]* ground-truth clips do not fit in max_clips 2$"#,
                                          options: .regularExpression), message)
        }
    }

    func testAlphaOneKeepsTheWholeOwnVideoAndNothingOfThePartner() throws {
        let (split, pairs) = Self.syntheticTrain()
        var synth = VideoSynthesizer()
        synth.alpha = 1
        let out = try synth.synthesize(split, pairs: pairs)
        try assertInvariants(out, source: split, synthesizer: synth)
        for s in 0..<out.split.videos.count {
            let f = Int(out.focusVideo[s])
            let items = (out.split.videos.offsets[s]..<out.split.videos.offsets[s + 1]).map {
                [Int(out.provenance[$0 * 2]), Int(out.provenance[$0 * 2 + 1])]
            }
            // The symmetric sample is focused on the partner: it too is exactly its own focus video.
            XCTAssertEqual(items, (0..<split.videos.length(f)).map { [f, $0] }, "sample \(s)")
        }
    }

    func testAlphaZeroKeepsOnlyTheMomentAndTheWholePartner() throws {
        let (split, pairs) = Self.syntheticTrain()
        var synth = VideoSynthesizer()
        synth.alpha = 0
        synth.symmetric = false
        let out = try synth.synthesize(split, pairs: pairs)
        try assertInvariants(out, source: split, synthesizer: synth)
        for s in 0..<out.split.videos.count {
            let f = Int(out.focusVideo[s]), o = Int(out.partnerVideo[s])
            let items = (out.split.videos.offsets[s]..<out.split.videos.offsets[s + 1]).map {
                [Int(out.provenance[$0 * 2]), Int(out.provenance[$0 * 2 + 1])]
            }
            let gt = Self.groundTruth(split.queries.windows[s], clips: split.videos.length(f), clipLength: 2).sorted()
            XCTAssertEqual(items, gt.map { [f, $0] } + (0..<split.videos.length(o)).map { [o, $0] }, "sample \(s)")
        }
    }

    func testPartnerFilterSkipsPartnersThatShareTheEvent() throws {
        let (split, pairs) = Self.syntheticTrain(videos: 120)
        let types = split.queries.eventType!
        var synth = VideoSynthesizer()
        let plain = try synth.synthesize(split, pairs: pairs)
        // The rate recomputed from the data: a sample's partner shares the event when one of the partner
        // video's queries names the focus query's event type.
        let shared = (0..<plain.sourceQuery.count).map { s -> Bool in
            let q = Int(plain.sourceQuery[s]), partner = Int(plain.partnerVideo[s])
            return (0..<split.queries.count).contains { split.queries.videoIndex[$0] == partner && types[$0] == types[q] }
        }
        XCTAssertEqual(plain.partnerSharesEvent, shared)
        let rate = Double(shared.filter { $0 }.count) / Double(shared.count)
        XCTAssertEqual(plain.sharedEventRate, rate, accuracy: 1e-12)
        // Cosine-nearest partners share the event type more often than chance (1 in 8 types).
        XCTAssertGreaterThan(rate, 1.0 / 8)
        synth.filter = .sharedEvent
        let filtered = try synth.synthesize(split, pairs: pairs)
        try assertInvariants(filtered, source: split, synthesizer: synth)
        XCTAssertEqual(filtered.sharedEventRate, 0)
        var expectedSkipped = 0
        var main = 0
        for q in 0..<split.queries.count {
            let i = split.queries.videoIndex[q]
            let admissible = (0..<pairs.k).map { Int(pairs.partners[i * pairs.k + $0]) }
                .filter { $0 >= 0 && $0 != i && types[$0] != types[q] }
            guard let first = admissible.first else { expectedSkipped += 1; continue }
            // One query per synthetic video: main samples come in source order, each followed by its symmetric one.
            let s = main * 2
            XCTAssertEqual(filtered.split.queries.qids[s], split.queries.qids[q] + "_syn0")
            XCTAssertEqual(Int(filtered.partnerVideo[s]), first, "the most similar admissible partner of query \(q)")
            XCTAssertNotEqual(types[Int(filtered.partnerVideo[s])], types[q])
            main += 1
        }
        XCTAssertEqual(filtered.skipped, expectedSkipped)
        XCTAssertGreaterThan(main, split.queries.count / 2)
    }
}

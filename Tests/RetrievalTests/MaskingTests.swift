import Foundation
import XCTest
@testable import Retrieval

/// Small splits written out by hand for the masking and summary tests: video `v`'s clip `c` has the features
/// `[100 v + c, -1]` (so a replaced clip names its source), 2-second clips, one query per video.
enum HandSplit {
    static func make(lengths: [Int], windows: [[[Double]]], saliency: [[Int32]]? = nil,
                     distractors: [[Double]]? = nil, name: String = "val") -> MomentSplit {
        var features: [Float] = [], offsets = [0]
        for (v, n) in lengths.enumerated() {
            for c in 0..<n { features += [Float(100 * v + c), -1] }
            offsets.append(offsets.last! + n)
        }
        let videos = VideoSet(vids: lengths.indices.map { "video\($0)" }, durations: lengths.map { Double($0) * 2 }, clipLength: 2,
                              featureDim: 2, tef: false, features: features, offsets: offsets)
        var scores: [Int32] = [], relevant: [UInt8] = []
        for (v, n) in lengths.enumerated() {
            let gt = VideoSynthesizer.groundTruthClips(windows[v], clips: n, clipLength: 2)
            for c in 0..<n {
                relevant.append(gt[c] ? 1 : 0)
                let s = saliency?[v][c] ?? 0
                scores += [s, s, s]
            }
        }
        let queries = QuerySet(qids: lengths.indices.map { String($0 + 1) }, texts: lengths.indices.map { "query \($0)" },
                               videoIndex: Array(lengths.indices), textDim: 1, tokens: lengths.indices.map(Float.init),
                               tokenOffsets: Array(0...lengths.count), windows: windows, hasSaliency: saliency != nil,
                               saliency: scores, relevant: relevant, clipOffsets: offsets,
                               eventType: distractors.map { _ in lengths.indices.map { _ in 0 } },
                               distractorType: distractors.map { _ in lengths.indices.map { _ in 1 } },
                               distractorWindows: distractors)
        return MomentSplit(name: name, videos: videos, queries: queries)
    }
}

/// The masks of the masked (spurious) evaluation: which clips change, and to what.
final class GroundTruthMaskTests: XCTestCase {
    /// The first feature of each clip of entry `q` of a split (the source clip's id on a hand split).
    func ids(_ split: MomentSplit, _ q: Int) throws -> [Float] {
        let rows = try split.videos.clips(q)
        return stride(from: 0, to: rows.count, by: split.videos.dim).map { rows[$0] }
    }

    func testZeroMaskZeroesExactlyTheGroundTruthClipsOfEachQuery() throws {
        // Video 0: window [4, 8) s = clips 2 and 3; video 1: windows [0, 2) and [9, 12) (clip 5's centre, 11, is
        // inside; clip 4's, 9, is on the start and counts; clip 3's, 7, does not).
        let split = HandSplit.make(lengths: [6, 6], windows: [[[4, 8]], [[0, 2], [9, 12]]])
        let masked = GroundTruthMask.zero.apply(to: split)
        XCTAssertEqual(try masked.videos.clips(0), [0, -1, 1, -1, 0, 0, 0, 0, 4, -1, 5, -1])
        XCTAssertEqual(try masked.videos.clips(1), [0, 0, 101, -1, 102, -1, 103, -1, 0, 0, 0, 0])
        XCTAssertEqual(masked.videos.durations, split.videos.durations)
        XCTAssertEqual(masked.videos.offsets, split.videos.offsets)
        XCTAssertEqual(masked.queries.windows, split.queries.windows)
    }

    func testEraseOnRealDataCopiesTheNearestClipOutsideTheMomentEarlierOnATie() throws {
        // Clips 2-3 masked: 2 takes 1 (nearest), 3 takes 4. Clips 1-3 masked: 1 takes 0, 2 is 2 away from 0 and
        // from 4 and takes the earlier, 3 takes 4. A video that is all moment has no context and is zeroed.
        let split = HandSplit.make(lengths: [6, 6, 3], windows: [[[4, 8]], [[2, 8]], [[0, 6]]])
        let masked = GroundTruthMask.erase.apply(to: split)
        XCTAssertEqual(try ids(masked, 0), [0, 1, 1, 4, 4, 5])
        XCTAssertEqual(try ids(masked, 1), [100, 100, 100, 104, 104, 105])
        XCTAssertEqual(try masked.videos.clips(2), [0, 0, 0, 0, 0, 0])
        XCTAssertEqual(GroundTruthMask.nearestContextClip(2, groundTruth: [false, true, true, true, false]), 0)
        XCTAssertNil(GroundTruthMask.nearestContextClip(0, groundTruth: [true]))
    }

    func testAVideoWithTwoQueriesGetsOneEntryPerQueryMaskingOnlyItsOwnMoment() throws {
        var split = HandSplit.make(lengths: [5], windows: [[[0, 2]]])
        split.queries = QuerySet(qids: ["1", "2"], texts: ["a", "b"], videoIndex: [0, 0], textDim: 1, tokens: [0, 1],
                                 tokenOffsets: [0, 1, 2], windows: [[[0, 2]], [[6, 10]]], hasSaliency: false,
                                 saliency: [Int32](repeating: 0, count: 30), relevant: [UInt8](repeating: 0, count: 10),
                                 clipOffsets: [0, 5, 10])
        let masked = GroundTruthMask.erase.apply(to: split)
        XCTAssertEqual(masked.videos.count, 2)
        XCTAssertEqual(masked.queries.videoIndex, [0, 1])
        XCTAssertEqual(try ids(masked, 0), [1, 1, 2, 3, 4])
        XCTAssertEqual(try ids(masked, 1), [0, 1, 2, 2, 2])
    }

    func testEraseOnSyntheticDataPutsTheClipsOwnSceneBackgroundInItsPlace() throws {
        var config = SyntheticBenchmark.Config()
        config.valVideos = 20
        config.videoDim = 32
        let benchmark = SyntheticBenchmark(config: config)
        let split = benchmark.split("val")
        let masked = GroundTruthMask.erase.apply(to: split, seed: 7)
        let again = GroundTruthMask.erase.apply(to: split, seed: 7)
        let other = GroundTruthMask.erase.apply(to: split, seed: 8)
        let d = config.videoDim, width = split.videos.dim
        var replaced = 0
        for q in 0..<split.queries.count {
            let v = split.queries.videoIndex[q]
            let original = try split.videos.clips(v), rows = try masked.videos.clips(q)
            XCTAssertEqual(rows, try again.videos.clips(q), "seeded")
            let gt = VideoSynthesizer.groundTruthClips(split.queries.windows[q], clips: split.videos.length(v), clipLength: 2)
            XCTAssertTrue(gt.contains(true))
            for c in gt.indices {
                let row = Array(rows[(c * width)..<((c + 1) * width)]), before = Array(original[(c * width)..<((c + 1) * width)])
                XCTAssertEqual(row[d...], before[d...], "query \(q) clip \(c): the temporal endpoints stay")
                guard gt[c] else {
                    XCTAssertEqual(row, before, "query \(q) clip \(c) is outside the moment")
                    continue
                }
                replaced += 1
                XCTAssertNotEqual(row, before)
                XCTAssertNotEqual(Array(try other.videos.clips(q)[(c * width)..<((c + 1) * width)]), row, "another seed, other noise")
                let x = row[..<d].map(Double.init)
                XCTAssertEqual(x.map { $0 * $0 }.reduce(0, +).squareRoot(), 1, accuracy: 1e-4)
                // Nearest the scene the clip shows (not the event), at the cosine of a still clip (about 0.93 at
                // noise 0.05 over 32 dims: 1 / sqrt(1.08) = 0.96).
                let scene = Int(split.videos.clipScene![split.videos.offsets[v] + c])
                let dots = (0..<config.scenes).map { s in (0..<d).map { x[$0] * Double(benchmark.sceneVectors[s * d + $0]) }.reduce(0, +) }
                XCTAssertEqual(dots.indices.max { dots[$0] < dots[$1] }, scene, "query \(q) clip \(c)")
                XCTAssertGreaterThan(dots[scene], 0.85, "query \(q) clip \(c)")
            }
        }
        XCTAssertGreaterThan(replaced, 20)
    }
}

/// The numbers the report compares, from a split's ground truth and predictions, against values worked out
/// by hand; the case makes all nine different, so a key reporting another key's number shows.
final class RetrievalSummaryTests: XCTestCase {
    /// Eight 40-second videos, each with the window [10, 20) (clips 5-9), annotated 2 on its clips but 4 ("very
    /// good") on clip 7. The first listed window of query q has IoU 1, 0.82, 0.72, 0.62, 0.4, 0.35, 0.15 and 0
    /// with it; query 4 also has a better window (IoU 0.52) listed second with a higher score.
    func split(saliency: Bool) -> MomentSplit {
        let row: [Int32] = [0, 0, 0, 0, 0, 2, 2, 4, 2, 2] + [Int32](repeating: 0, count: 10)
        return HandSplit.make(lengths: [Int](repeating: 20, count: 8), windows: [[[Double]]](repeating: [[10, 20]], count: 8),
                              saliency: saliency ? [[Int32]](repeating: row, count: 8) : nil)
    }

    func predictions() -> [MomentPrediction] {
        let ends = [20, 18.2, 17.2, 16.2, 14, 13.5, 11.5]
        return (0..<8).map { q in
            var windows = q < 7 ? [ScoredWindow(start: 10, end: ends[q], score: 0.5)] : [ScoredWindow(start: 30, end: 34, score: 0.5)]
            if q == 4 { windows.append(ScoredWindow(start: 10, end: 15.2, score: 0.9)) }
            // Saliency peaks on the very good clip 7 for query 0 only; the others rank clip 6 first, clip 7 second.
            let (first, second) = q == 0 ? (7, 6) : (6, 7)
            return MomentPrediction(qid: String(q + 1), windows: windows,
                                    saliencyScores: (0..<20).map { $0 == first ? 1 : ($0 == second ? 0.9 : 0.1 - Double($0) / 1000) })
        }
    }

    func testSummaryOfASplitWithSaliencyHoldsTheOfficialNumbersByHand() throws {
        let (summary, json) = try RetrievalSummary.evaluate(predictions(), split: split(saliency: true))
        XCTAssertEqual(summary.values.map(\.key), RetrievalSummary.keys)
        // R1 takes the first listed window: IoU >= 0.3 for six queries of eight, >= 0.5 for four, >= 0.7 for three.
        XCTAssertEqual(summary["R1@0.3"], 75)
        XCTAssertEqual(summary["R1@0.5"], 50)
        XCTAssertEqual(summary["R1@0.7"], 37.5)
        XCTAssertEqual(try XCTUnwrap(summary["mIoU"]), 100 * (1 + 0.82 + 0.72 + 0.62 + 0.4 + 0.35 + 0.15) / 8, accuracy: 0.005)
        // mAP ranks by score: query 4's IoU-0.52 window comes first, a hit at 0.5. Over 0.5:0.05:0.95 the queries
        // score 10, 7, 5, 3 and 1 thresholds of 10.
        XCTAssertEqual(summary["mAP@0.5"], 62.5)
        XCTAssertEqual(summary["mAP@0.75"], 25)
        XCTAssertEqual(summary["mAP"], 100 * (1 + 0.7 + 0.5 + 0.3 + 0.1) / 8)
        // Highlights at "very good": one query ranks clip 7 first (AP 1), seven rank it second (AP 1/2).
        XCTAssertEqual(summary["HD-HIT@1"], 12.5)
        XCTAssertEqual(summary["HD-mAP"], 100 * (1 + 7 * 0.5) / 8)
        XCTAssertEqual(Set(summary.values.compactMap(\.value)).count, 9, "nine different numbers")
        XCTAssertTrue(json.contains("\"MR-full-mIoU\""), "the full official metrics come with it")
    }

    func testSummaryOfASplitWithoutSaliencyHasGroundingNumbersOnly() throws {
        let (summary, _) = try RetrievalSummary.evaluate(predictions(), split: split(saliency: false))
        XCTAssertEqual(summary.values.map(\.key), RetrievalSummary.keys)
        // Grounding metrics take the best-scored window: query 4's IoU-0.52 one.
        XCTAssertEqual(summary["R1@0.3"], 75)
        XCTAssertEqual(summary["R1@0.5"], 62.5)
        XCTAssertEqual(summary["R1@0.7"], 37.5)
        XCTAssertEqual(try XCTUnwrap(summary["mIoU"]), 100 * (1 + 0.82 + 0.72 + 0.62 + 0.52 + 0.35 + 0.15) / 8, accuracy: 0.005)
        for key in ["mAP@0.5", "mAP@0.75", "mAP", "HD-mAP", "HD-HIT@1"] { XCTAssertNil(summary[key], key) }
    }
}

/// The query-grounding diagnostic and the gIoU loss of the top window.
final class SpanDiagnosticsTests: XCTestCase {
    func testTopWindowsAreCountedOnTheQueriedEventTheDistractorOrNeither() {
        // Every video: queried event [4, 8), distractor [12, 16).
        let split = HandSplit.make(lengths: [10, 10, 10, 10, 10], windows: Array(repeating: [[4, 8]], count: 5),
                                   distractors: Array(repeating: [12, 16], count: 5))
        func prediction(_ q: Int, _ w: [Double]) -> MomentPrediction {
            MomentPrediction(qid: String(q + 1), windows: [ScoredWindow(start: w[0], end: w[1], score: 1),
                                                           ScoredWindow(start: 12, end: 16, score: 0.5)])
        }
        // Queried; distractor; neither; both, more of the distractor (1 s vs 3 s); both, equal overlap (a tie is
        // the queried event's).
        let predictions = [prediction(0, [5, 6]), prediction(1, [13, 20]), prediction(2, [0, 3]), prediction(3, [7, 15]),
                           prediction(4, [6, 14])]
        let grounding = SpanDiagnostics.queryGrounding(predictions, split: split)!
        XCTAssertEqual(grounding.queried, 40)
        XCTAssertEqual(grounding.distractor, 40)
        XCTAssertEqual(grounding.neither, 20)
        XCTAssertNil(SpanDiagnostics.queryGrounding(predictions, split: HandSplit.make(lengths: [10], windows: [[[4, 8]]])),
                     "no distractor data, no diagnostic")
    }

    func testMeanGIoULossUsesTheBestMatchingWindowOfEachQuery() {
        let split = HandSplit.make(lengths: [10, 10], windows: [[[4, 8], [10, 12]], [[0, 4]]])
        let predictions = [
            // [4, 8] matches the first window exactly: loss 0.
            MomentPrediction(qid: "1", windows: [ScoredWindow(start: 4, end: 8, score: 1), ScoredWindow(start: 0, end: 1, score: 0.1)]),
            // [6, 10] vs [0, 4]: no overlap, union 8, hull 10: gIoU -0.2, loss 1.2.
            MomentPrediction(qid: "2", windows: [ScoredWindow(start: 6, end: 10, score: 1)]),
        ]
        XCTAssertEqual(SpanDiagnostics.meanGIoULoss(predictions, split: split), (0 + 1.2) / 2, accuracy: 1e-12)
    }
}

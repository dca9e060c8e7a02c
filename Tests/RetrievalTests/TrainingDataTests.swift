import Foundation
import Tensor
import XCTest
@testable import Retrieval

/// How queries of a split become a padded batch, and model windows a submission.
final class BatchBuilderTests: XCTestCase {
    /// Videos of 3, 5 and 6 clips (features `[100 v + c, -1]`); queries of 2, 4 and 1 tokens.
    func split() -> MomentSplit {
        var split = HandSplit.make(lengths: [3, 5, 6], windows: [[[2, 4]], [[6, 10], [8.5, 10]], [[10, 12]]],
                                   saliency: [[0, 4, 0], [0, 0, 0, 3, 2], [0, 0, 0, 0, 0, 4]])
        split.queries.tokenSource = MemoryRows(values: [1, 2, 3, 4, 5, 6, 7], offsets: [0, 2, 6, 7], width: 1)
        split.queries.tokenOffsets = [0, 2, 6, 7]
        return split
    }

    func testVideosAndTextAreCutPaddedAndMaskedAndWindowsNormalisedByTheKeptDuration() throws {
        var none: SeededGenerator?
        let batch = try BatchBuilder(maxClips: 4, maxTokens: 3).batch(split(), queries: [0, 1], generator: &none)
        XCTAssertEqual(batch.videoFeatures.shape, [2, 4, 2])
        XCTAssertEqual(batch.videoFeatures.data, [0, -1, 1, -1, 2, -1, 0, 0, 100, -1, 101, -1, 102, -1, 103, -1])
        XCTAssertEqual(batch.videoMask.data, [1, 1, 1, 0, 1, 1, 1, 1])
        XCTAssertEqual(batch.textFeatures.data, [1, 2, 0, 3, 4, 5])
        XCTAssertEqual(batch.textMask.data, [1, 1, 0, 1, 1, 1])
        // Video 1 keeps 4 clips = 8 s: [6, 10] becomes [6, 8] of 8 s; [8.5, 10] lies wholly in the cut and goes.
        XCTAssertEqual(batch.durations, [6, 8])
        XCTAssertEqual(batch.windows, [[SpanTarget(center: 0.5, width: 1.0 / 3)], [SpanTarget(center: 0.875, width: 0.25)]])
        XCTAssertNil(batch.saliency, "evaluation batches carry no saliency targets")
    }

    func testSaliencyTargetsSumTheAnnotatorsAndPairHardAndEasyClipsInsideTheKeptClips() throws {
        var generator: SeededGenerator? = SeededGenerator(seed: 3)
        let batch = try BatchBuilder(maxClips: 4, maxTokens: 3).batch(split(), queries: [0, 1, 2], generator: &generator)
        let saliency = try XCTUnwrap(batch.saliency)
        // Three annotators per clip; video 1's clip 4 (score 2) is cut.
        XCTAssertEqual(saliency.scores.data, [0, 12, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0])
        // Query 0: the one relevant clip is both hard positive and hard negative; the easy negative is outside it.
        XCTAssertEqual(saliency.positiveClips[0], [1, 1])
        XCTAssertEqual(saliency.negativeClips[0][0], 1)
        XCTAssertTrue([0, 2].contains(saliency.negativeClips[0][1]), "\(saliency.negativeClips[0])")
        // Query 1: clip 3 is the only relevant clip left after the cut.
        XCTAssertEqual(saliency.positiveClips[1], [3, 3])
        XCTAssertEqual(saliency.negativeClips[1][0], 3)
        XCTAssertTrue([0, 1, 2].contains(saliency.negativeClips[1][1]), "\(saliency.negativeClips[1])")
        // Query 2: its moment (clip 5) is cut away: no window, and a zero hinge pair on clip 0.
        XCTAssertEqual(batch.windows[2], [])
        XCTAssertEqual(saliency.positiveClips[2], [0, 0])
        XCTAssertEqual(saliency.negativeClips[2], [0, 0])
    }

    /// A grounding dataset (no saliency_scores): training targets as the reference derives them from the window.
    func testAQueryWithoutSaliencyScoresTrainsOnItsWindowsClips() throws {
        // Video 0: 10 clips, window [4, 11) s = clips 2...4; video 1: 3 clips, window [0, 6) s covers all of them.
        let split = HandSplit.make(lengths: [10, 3], windows: [[[4, 11]], [[0, 6]]])
        XCTAssertFalse(split.queries.hasSaliency)
        var draws = Set<[Int]>()
        for seed in 1...8 {
            var generator: SeededGenerator? = SeededGenerator(seed: UInt64(seed))
            let saliency = try XCTUnwrap(try BatchBuilder(maxClips: 10).batch(split, queries: [0, 1], generator: &generator).saliency)
            XCTAssertEqual(Array(saliency.scores.data[0..<10]), [0, 0, 1, 1, 1, 0, 0, 0, 0, 0])
            XCTAssertEqual(Array(saliency.scores.data[10..<13]), [1, 1, 1])
            let (positives, negatives) = (saliency.positiveClips[0], saliency.negativeClips[0])
            XCTAssertTrue(positives.allSatisfy { (2...4).contains($0) } && positives[0] != positives[1], "\(positives)")
            XCTAssertTrue(negatives.allSatisfy { !(2...4).contains($0) && $0 < 10 } && negatives[0] != negatives[1], "\(negatives)")
            // Nothing lies outside video 1's window: its negatives are its positives.
            XCTAssertEqual(saliency.negativeClips[1], saliency.positiveClips[1])
            draws.insert(positives + negatives)
        }
        XCTAssertGreaterThan(draws.count, 1, "the pairs are drawn at random")
        var none: SeededGenerator?
        XCTAssertNil(try BatchBuilder().batch(split, queries: [0], generator: &none).saliency, "evaluation builds none")
        var generator = SeededGenerator(seed: 1)
        // As the reference: the end clip is int(end / clip) - 1, so [4, 5] s collapses onto clip 1.
        let one = BatchBuilder.windowSaliencyPairs(window: [4, 5], clipLength: 2, clips: 10, generator: &generator)
        XCTAssertEqual(one.inside, 1..<2)
        XCTAssertEqual(one.positives, [1, 1], "a one-clip window is its own positive twice")
    }

    /// As the reference's loader: a training query keeps a random 5 of its windows; evaluation keeps all.
    func testATrainingQueryKeepsARandomFiveOfItsWindows() throws {
        let many = (0..<8).map { [Double(2 * $0), Double(2 * $0 + 1)] }
        let split = HandSplit.make(lengths: [10], windows: [many], saliency: [[Int32](repeating: 1, count: 10)])
        let builder = BatchBuilder(maxClips: 10, maxTokens: 3)
        func kept(seed: UInt64?) throws -> [SpanTarget] {
            var generator = seed.map { SeededGenerator(seed: $0) }
            return try builder.batch(split, queries: [0], generator: &generator).windows[0]
        }
        let all = many.map { SpanTarget(start: Float($0[0]), end: Float($0[1]), duration: 20) }
        XCTAssertEqual(try kept(seed: nil), all, "evaluation keeps every window")
        var subsets = Set<[Int]>()
        for seed in 1...6 {
            let chosen = try kept(seed: UInt64(seed))
            XCTAssertEqual(chosen.count, 5)
            let indices = try chosen.map { w in try XCTUnwrap(all.firstIndex(of: w), "\(w) is not one of the query's windows") }
            XCTAssertEqual(Set(indices).count, 5, "drawn without replacement")
            XCTAssertEqual(try kept(seed: UInt64(seed)), chosen, "the same seed keeps the same windows")
            subsets.insert(indices.sorted())
        }
        XCTAssertGreaterThan(subsets.count, 1, "different seeds keep different windows")
        var generator = SeededGenerator(seed: 1)
        XCTAssertEqual(builder.cappedWindows(Array(many.prefix(5)), generator: &generator), Array(many.prefix(5)),
                       "five or fewer are kept in order")
        XCTAssertEqual(builder.cappedWindows(Array(many.prefix(6)), generator: &generator).count, 5, "six are cut to five")
    }
}

final class SubmissionWriterTests: XCTestCase {
    /// The reference's `clip_ts` then `round_multiple`: clamp to the duration, round to the clip with
    /// `torch.round` (half to even), no widening.
    func testWindowsAreClampedThenRoundedHalfToEvenSortedAndCapped() {
        let split = HandSplit.make(lengths: [10], windows: [[[4, 8]]])
        var windows = [RetrievedMoment(start: 3.1, end: 7.2, score: 0.5),   // -> [4, 8]
                       RetrievedMoment(start: -1, end: 1.2, score: 0.9),    // -> [0, 2]
                       RetrievedMoment(start: 19.5, end: 25, score: 0.7),   // -> [20, 20] (empty, as the reference)
                       RetrievedMoment(start: 5, end: 5.4, score: 0.8)]     // 2.5 clips rounds to 2: [4, 6]
        windows += (0..<8).map { RetrievedMoment(start: 0, end: 4, score: 0.1 - Float($0) / 100) }
        let retrieval = MomentRetrieval(windows: windows, saliency: [0.5, 0.25] + [Float](repeating: 0, count: 8))
        let prediction = SubmissionWriter.predictions(split, queries: [0], retrievals: [retrieval])[0]
        let kept = prediction.windows!.map { [$0.window.start, $0.window.end] }
        XCTAssertEqual(Array(kept.prefix(4)), [[0, 2], [4, 6], [20, 20], [4, 8]])
        XCTAssertEqual(kept.count, 10, "at most 10 windows")
        XCTAssertEqual(prediction.windows!.map(\.score), prediction.windows!.map(\.score).sorted(by: >))
        XCTAssertEqual(prediction.windows!.last!.score, Double(Float(0.1) - Float(5) / 100), "the lowest-scored two are dropped")
        XCTAssertEqual(prediction.qid, "1")
        XCTAssertEqual(prediction.vid, "video0")

        let line = SubmissionWriter.jsonl([MomentPrediction(qid: "7", query: "a \"b\"", vid: "v",
                                                            windows: [ScoredWindow(start: 0, end: 2, score: 0.25),
                                                                      ScoredWindow(start: 2.5, end: 4, score: 1)],
                                                            saliencyScores: [0.5, 1])])
        XCTAssertEqual(line, #"{"qid": 7, "query": "a \"b\"", "vid": "v", "pred_relevant_windows": [[0.0, 2.0, 0.2500], [2.5000, 4.0, 1.0]], "pred_saliency_scores": [0.5000, 1.0]}"# + "\n")
        XCTAssertTrue(SubmissionWriter.jsonl([MomentPrediction(qid: "x1", windows: nil)]).hasPrefix(#"{"qid": "x1"}"#),
                      "a qid that is not an integer is a JSON string")
    }
}

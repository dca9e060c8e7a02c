import XCTest

@testable import Retrieval

/// Each rule of the official evaluation on cases small enough to work out by hand (the expected values are
/// derived in the comments).
final class QVHighlightsRuleTests: XCTestCase {
    private func annotation(_ qid: String, _ windows: [(Double, Double)], duration: Double = 150,
                            clips: [Int] = [], saliency: [[Double]]? = nil) -> MomentAnnotation {
        MomentAnnotation(qid: qid, duration: duration, relevantWindows: windows.map { TimeWindow(start: $0.0, end: $0.1) },
                         relevantClipIDs: clips, saliencyScores: saliency)
    }

    private func prediction(_ qid: String, _ windows: [(Double, Double, Double)], saliency: [Double]? = nil) -> MomentPrediction {
        MomentPrediction(qid: qid, windows: windows.map { ScoredWindow(start: $0.0, end: $0.1, score: $0.2) },
                         saliencyScores: saliency)
    }

    private func retrieval(_ predictions: [MomentPrediction], _ annotations: [MomentAnnotation],
                           _ bucket: MomentLengthBucket = .full) throws -> RetrievalScores {
        try XCTUnwrap(QVHighlightsEvaluator().evaluate(predictions: predictions, annotations: annotations).retrieval?[bucket])
    }

    // MARK: - MR-mAP

    func testExactHitGivesFullAPAtEveryThreshold() throws {
        let scores = try retrieval([prediction("1", [(0, 10, 0.9)])], [annotation("1", [(0, 10)])])
        XCTAssertEqual(scores.meanAveragePrecision, Array(repeating: 100.0, count: 10))
        XCTAssertEqual(scores.averageMeanAveragePrecision, 100.0)
        XCTAssertEqual(scores.recallAtOne, Array(repeating: 100.0, count: 10))
    }

    func testEqualScoresKeepListOrder() throws {
        // A miss listed before a hit of the same score ranks first: precision 1/2 at recall 1, so AP = 0.5.
        // Ranking the hit first would give 1.
        let scores = try retrieval([prediction("1", [(20, 30, 0.5), (0, 10, 0.5)])], [annotation("1", [(0, 10)])])
        XCTAssertEqual(scores.meanAveragePrecision, Array(repeating: 50.0, count: 10))
    }

    func testMAPRanksByScoreWhileR1TakesTheFirstListedWindow() throws {
        // Listed miss (score 0.1) then hit (0.9): AP ranks the hit first (AP 1) but R1 looks at the miss.
        let scores = try retrieval([prediction("1", [(20, 30, 0.1), (0, 10, 0.9)])], [annotation("1", [(0, 10)])])
        XCTAssertEqual(scores.averageMeanAveragePrecision, 100.0)
        XCTAssertEqual(scores.recallAtOne, Array(repeating: 0.0, count: 10))
    }

    func testOnlyTheFirstTenListedWindowsCount() throws {
        // Ten misses then a perfect, better scored hit: the hit is cut before sorting, so AP = 0.
        let misses = (0..<10).map { index in (Double(100 + index), Double(101 + index), 0.9) }
        let scores = try retrieval([prediction("1", misses + [(0, 10, 1.0)])], [annotation("1", [(0, 10)])])
        XCTAssertEqual(scores.averageMeanAveragePrecision, 0.0)
        let eleven = try QVHighlightsEvaluator(options: .init(maximumPredictedWindows: 11))
            .evaluate(predictions: [prediction("1", misses + [(0, 10, 1.0)])], annotations: [annotation("1", [(0, 10)])])
        XCTAssertEqual(eleven.retrieval?[.full]?.averageMeanAveragePrecision, 100.0)
    }

    func testLockedWindowTurnsADuplicateIntoAFalsePositive() throws {
        // Two GT windows. Ranked: hit A, duplicate of A (A is taken, B has IoU 0: false positive), hit B.
        // Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; interpolated AP = 1/2 * 1 + 1/2 * 2/3 = 0.8333.
        let scores = try retrieval([prediction("1", [(0, 10, 0.9), (0, 10, 0.8), (20, 30, 0.7)])],
                                   [annotation("1", [(0, 10), (20, 30)])])
        XCTAssertEqual(scores.meanAveragePrecision, Array(repeating: 83.33, count: 10))
        XCTAssertEqual(scores.averageMeanAveragePrecision, 83.33)
    }

    func testPredictionTakesTheFreeWindowOfHighestIoU() throws {
        // GT A = [0, 10], B = [0, 12]. P1 = [0, 11] has IoU 10/11 with A and 11/12 with B: it takes B.
        // P2 = [0, 12] finds B taken and falls back to A at IoU 10/12 = 0.833.
        // t <= 0.8: both hit, AP 1. t = 0.85, 0.9: P1 hits, P2 misses, AP 0.5.
        // t = 0.95: P1 misses (0.917), P2 hits B, precision 1/2 at recall 1/2, AP 0.25.
        let scores = try retrieval([prediction("1", [(0, 11, 0.9), (0, 12, 0.8)])],
                                   [annotation("1", [(0, 10), (0, 12)])])
        XCTAssertEqual(scores.meanAveragePrecision, [100, 100, 100, 100, 100, 100, 100, 50, 50, 25])
        XCTAssertEqual(scores.averageMeanAveragePrecision, 82.5)
    }

    func testQueriesWithoutPredictionsAreLeftOutOfMAPButMissR1() throws {
        let scores = try retrieval([prediction("1", [(0, 10, 0.9)]), prediction("2", [])],
                                   [annotation("1", [(0, 10)]), annotation("2", [(0, 10)])])
        XCTAssertEqual(scores.averageMeanAveragePrecision, 100.0)
        XCTAssertEqual(scores.recallAtOne(at: 0.5), 50.0)
    }

    func testMAPAveragesOverQueries() throws {
        // AP 1 and AP 0.5 (see testEqualScoresKeepListOrder): 75.
        let scores = try retrieval([prediction("1", [(0, 10, 0.9)]), prediction("2", [(20, 30, 0.5), (0, 10, 0.5)])],
                                   [annotation("1", [(0, 10)]), annotation("2", [(0, 10)])])
        XCTAssertEqual(scores.averageMeanAveragePrecision, 75.0)
    }

    // MARK: - MR-R1

    func testR1CountsIoUEqualToTheThreshold() throws {
        // [0, 10] against [0, 20]: IoU exactly 0.5, a hit at 0.5 only.
        let scores = try retrieval([prediction("1", [(0, 10, 0.9)])], [annotation("1", [(0, 20)])])
        XCTAssertEqual(scores.recallAtOne(at: 0.5), 100.0)
        XCTAssertEqual(scores.recallAtOne(at: 0.55), 0.0)
    }

    func testR1UsesTheGroundTruthWindowOfHighestIoU() throws {
        // First listed [20, 28]: IoU 0 with [0, 10], 0.8 with [20, 30].
        let scores = try retrieval([prediction("1", [(20, 28, 0.1), (0, 10, 0.9)])],
                                   [annotation("1", [(0, 10), (20, 30)])])
        XCTAssertEqual(scores.recallAtOne(at: 0.8), 100.0)
        XCTAssertEqual(scores.recallAtOne(at: 0.85), 0.0)
    }

    func testR1AndMAPEachUseTheOfficialIoUFormula() throws {
        // [14.4, 23.3] against [10.0, 27.8]: intersection / hull is 0.5 exactly in Doubles, the intersection over
        // (length + length - intersection) that mAP uses is 0.4999999999999999. So R1@0.5 hits and mAP@0.5 misses.
        let scores = try retrieval([prediction("1", [(14.4, 23.3, 0.9)])], [annotation("1", [(10.0, 27.8)])])
        XCTAssertEqual(scores.recallAtOne(at: 0.5), 100.0)
        XCTAssertEqual(scores.meanAveragePrecision(at: 0.5), 0.0)
    }

    func testExtendedRecallReportsLowThresholdsAndMeanIoU() throws {
        // Top-1 IoUs 0.25 ([0, 5] vs [0, 20]) and 0.5 ([0, 10] vs [0, 20]): mean 0.375.
        let metrics = try QVHighlightsEvaluator(options: .init(includeExtendedRecall: true)).evaluate(
            predictions: [prediction("1", [(0, 5, 0.9)]), prediction("2", [(0, 10, 0.9)])],
            annotations: [annotation("1", [(0, 20)]), annotation("2", [(0, 20)])])
        let full = try XCTUnwrap(metrics.retrieval?[.full])
        XCTAssertEqual(full.extendedRecallAtOne, [100, 100, 50, 50, 50, 0, 0, 0, 0])
        XCTAssertEqual(full.meanIoU, 37.5)
        XCTAssertEqual(metrics.brief.last, MetricsTree.Entry("MR-full-mIoU", .number(37.5)))
    }

    // MARK: - Length buckets

    func testBucketsKeepOnlyTheirWindowsAndDropQueriesWithNone() throws {
        // Query 1 has a short [0, 8] and a long [40, 80] window; query 2 a middle one [0, 20].
        let predictions = [prediction("1", [(40, 80, 0.9)]), prediction("2", [(0, 20, 0.5)])]
        let annotations = [annotation("1", [(0, 8), (40, 80)]), annotation("2", [(0, 20)])]
        let metrics = try QVHighlightsEvaluator().evaluate(predictions: predictions, annotations: annotations)
        let buckets = try XCTUnwrap(metrics.retrieval)

        XCTAssertEqual(buckets[.short]?.queryCount, 1)
        XCTAssertEqual(buckets[.short]?.averageMeanAveragePrecision, 0.0)
        XCTAssertEqual(buckets[.short]?.recallAtOne(at: 0.5), 0.0)
        XCTAssertEqual(buckets[.middle]?.queryCount, 1)
        XCTAssertEqual(buckets[.middle]?.averageMeanAveragePrecision, 100.0)
        XCTAssertEqual(buckets[.long]?.queryCount, 1)
        XCTAssertEqual(buckets[.long]?.averageMeanAveragePrecision, 100.0)
        // Full: query 1 recalls one of two windows (AP 0.5), query 2 is perfect.
        XCTAssertEqual(buckets[.full]?.queryCount, 2)
        XCTAssertEqual(buckets[.full]?.averageMeanAveragePrecision, 75.0)
        XCTAssertEqual(buckets[.full]?.recallAtOne(at: 0.9), 100.0)
    }

    func testBucketBoundsExcludeTheLowerAndIncludeTheUpperLength() {
        XCTAssertFalse(MomentLengthBucket.short.contains(length: 0))
        XCTAssertTrue(MomentLengthBucket.short.contains(length: 10))
        XCTAssertFalse(MomentLengthBucket.middle.contains(length: 10))
        XCTAssertTrue(MomentLengthBucket.middle.contains(length: 30))
        XCTAssertTrue(MomentLengthBucket.long.contains(length: 150))
        XCTAssertFalse(MomentLengthBucket.long.contains(length: 152))
        XCTAssertTrue(MomentLengthBucket.full.contains(length: 152))
    }

    func testEmptyBucketReportsNaN() throws {
        let metrics = try QVHighlightsEvaluator().evaluate(predictions: [prediction("1", [(0, 20, 0.9)])],
                                                           annotations: [annotation("1", [(0, 20)])])
        let short = try XCTUnwrap(metrics.retrieval?[.short])
        XCTAssertEqual(short.queryCount, 0)
        XCTAssertTrue(short.averageMeanAveragePrecision.isNaN)
        XCTAssertTrue(metrics.jsonString().contains("\"MR-short-mAP\": NaN"))
    }

    // MARK: - Highlight detection

    /// Five clips; relevant clips 1-3 rated (4, 2, 0), (3, 3, 1), (1, 4, 2) by the three annotators.
    private func highlightQuery(saliency: [Double]) -> (MomentPrediction, MomentAnnotation) {
        (prediction("1", [(2, 8, 0.9)], saliency: saliency),
         annotation("1", [(2, 8)], duration: 10, clips: [1, 2, 3], saliency: [[4, 2, 0], [3, 3, 1], [1, 4, 2]]))
    }

    func testHighlightMetricsPerLevel() throws {
        // Scores rank clip 2 first, clips 1 and 3 tied, then clips 4, 0.
        // Fair: annotator APs 5/6 (clips 1, 2), 1 (clips 1-3), 1/3 (clip 3) -> 72.22.
        // Good: 5/6, 5/6 (clips 2, 3), 0 (no highlight) -> 55.56. VeryGood: 1/3, 1/3, 0 -> 22.22.
        // Top clip 2 rates (3, 3, 1): a hit at Fair and Good, not at VeryGood.
        let (prediction, annotation) = highlightQuery(saliency: [0.1, 0.5, 0.9, 0.5, 0.2])
        let highlight = try XCTUnwrap(
            QVHighlightsEvaluator().evaluate(predictions: [prediction], annotations: [annotation]).highlight)
        XCTAssertEqual(highlight[.fair], HighlightScores(meanAveragePrecision: 72.22, hitAtOne: 100))
        XCTAssertEqual(highlight[.good], HighlightScores(meanAveragePrecision: 55.56, hitAtOne: 100))
        XCTAssertEqual(highlight[.veryGood], HighlightScores(meanAveragePrecision: 22.22, hitAtOne: 0))
    }

    func testTiedSaliencyScoresShareOnePrecision() {
        // One highlight tied with one non-highlight: precision 1/2 whatever the order.
        XCTAssertEqual(SaliencyAveragePrecision.compute(labels: [true, false], scores: [0.5, 0.5]), 0.5)
        XCTAssertEqual(SaliencyAveragePrecision.compute(labels: [false, true], scores: [0.5, 0.5]), 0.5)
        XCTAssertEqual(SaliencyAveragePrecision.compute(labels: [true, false], scores: [0.6, 0.5]), 1)
        // Labels 0,1,1,0,0 with the tie of testHighlightMetricsPerLevel: precision 1 at recall 1/2, 2/3 at 1.
        XCTAssertEqual(SaliencyAveragePrecision.compute(labels: [false, true, true, false, false],
                                                        scores: [0.1, 0.5, 0.9, 0.5, 0.2]), (1 + 2.0 / 3) / 2)
    }

    func testAllOrNoHighlightsShortcutIgnoresScores() {
        XCTAssertEqual(SaliencyAveragePrecision.compute(labels: [true, true], scores: [0.1, 0.9]), 1)
        XCTAssertEqual(SaliencyAveragePrecision.compute(labels: [false, false], scores: [0.1, 0.9]), 0)
    }

    func testShortSaliencyListIsZeroPadded() throws {
        // Three clips, clip 2 rated 4 by all; predicted [0.5, -0.2] is padded with 0 for clip 2, which then ranks
        // second: precision 1/2 at full recall, AP 0.5. The top clip 0 is no highlight.
        let metrics = try QVHighlightsEvaluator().evaluate(
            predictions: [prediction("1", [(4, 6, 0.9)], saliency: [0.5, -0.2])],
            annotations: [annotation("1", [(4, 6)], duration: 6, clips: [2], saliency: [[4, 4, 4]])])
        XCTAssertEqual(metrics.highlight?[.veryGood], HighlightScores(meanAveragePrecision: 50, hitAtOne: 0))
    }

    func testLongSaliencyListIsCutAndItsTopClipBeyondTheVideoMisses() throws {
        // Duration 5 s gives int(5 / 2) = 2 clips. The maximum of [0.1, 0.2, 0.9] is clip 2, outside the video:
        // no hit. AP uses [0.1, 0.2]: the highlight clip 0 ranks second, AP 0.5 at Fair; nothing is Good.
        let metrics = try QVHighlightsEvaluator().evaluate(
            predictions: [prediction("1", [(0, 2, 0.9)], saliency: [0.1, 0.2, 0.9])],
            annotations: [annotation("1", [(0, 2)], duration: 5, clips: [0], saliency: [[2, 2, 2]])])
        XCTAssertEqual(metrics.highlight?[.fair], HighlightScores(meanAveragePrecision: 50, hitAtOne: 0))
        XCTAssertEqual(metrics.highlight?[.good], HighlightScores(meanAveragePrecision: 0, hitAtOne: 0))
    }

    func testHitAtOneTakesTheFirstOfEqualMaxima() throws {
        // Clips 0 and 2 share the maximum; clip 0 (no highlight) is the one taken.
        let metrics = try QVHighlightsEvaluator().evaluate(
            predictions: [prediction("1", [(4, 6, 0.9)], saliency: [0.7, 0.1, 0.7])],
            annotations: [annotation("1", [(4, 6)], duration: 6, clips: [2], saliency: [[4, 4, 4]])])
        XCTAssertEqual(metrics.highlight?[.fair]?.hitAtOne, 0)
    }

    func testSubmissionWithoutSaliencyHasNoHighlightBlocks() throws {
        let metrics = try QVHighlightsEvaluator().evaluate(predictions: [prediction("1", [(0, 10, 0.9)])],
                                                           annotations: [annotation("1", [(0, 10)])])
        XCTAssertNil(metrics.highlight)
        XCTAssertEqual(metrics.tree().keys, ["brief", "full", "long", "middle", "short"])
        XCTAssertEqual(metrics.brief.count, 8)
    }

    // MARK: - Errors

    func testQIDMismatchListsMissingAndExtraQIDs() {
        let predictions = [prediction("1", [(0, 10, 0.9)]), prediction("9", [(0, 10, 0.9)])]
        let annotations = [annotation("1", [(0, 10)]), annotation("2", [(0, 10)])]
        XCTAssertThrowsError(try QVHighlightsEvaluator().evaluate(predictions: predictions, annotations: annotations)) {
            XCTAssertEqual($0 as? EvaluationError, .qidMismatch(missing: ["2"], extra: ["9"]))
            XCTAssertEqual(String(describing: $0), "submission qids do not match the ground truth: "
                + "1 in the ground truth but not the submission (2); 1 in the submission but not the ground truth (9)")
        }
    }

    func testQIDMismatchMessageShowsOnlyTheFirstFive() {
        let error = EvaluationError.qidMismatch(missing: (1...7).map(String.init), extra: [])
        XCTAssertEqual(error.description,
                       "submission qids do not match the ground truth: 7 in the ground truth but not the submission (1, 2, 3, 4, 5, ...)")
    }

    func testSaliencyMissingFromALaterRecordIsAnError() {
        let predictions = [prediction("1", [(0, 10, 0.9)], saliency: [0.1]), prediction("2", [(0, 10, 0.9)])]
        let annotations = [annotation("1", [(0, 10)], clips: [0], saliency: [[1, 1, 1]]),
                           annotation("2", [(0, 10)], clips: [0], saliency: [[1, 1, 1]])]
        XCTAssertThrowsError(try QVHighlightsEvaluator().evaluate(predictions: predictions, annotations: annotations)) {
            XCTAssertEqual($0 as? EvaluationError,
                           .unscorable(qid: "2", problem: "no pred_saliency_scores, though the first record has them"))
        }
    }
}

import Foundation
import XCTest

@testable import Retrieval

/// Charades-STA / TACoS metrics (R1, R5, mIoU) and temporal NMS on hand-made cases.
final class GroundingMetricsTests: XCTestCase {
    private func prediction(_ qid: String, _ windows: [(Double, Double, Double)]) -> MomentPrediction {
        MomentPrediction(qid: qid, windows: windows.map { ScoredWindow(start: $0.0, end: $0.1, score: $0.2) })
    }

    private func annotation(_ qid: String, _ start: Double, _ end: Double) -> MomentAnnotation {
        MomentAnnotation(qid: qid, duration: 30.96, relevantWindows: [TimeWindow(start: start, end: end)])
    }

    /// Query 1: five near-duplicates around [0, 10] outscore the hit [20, 30], so only NMS brings the hit into
    /// the top 5. Query 2: top window IoU 0.6, second 1/3.
    private var cases: ([MomentPrediction], [MomentAnnotation]) {
        ([prediction("q1", [(0, 10, 0.9), (0, 9, 0.85), (1, 10, 0.8), (0, 11, 0.75), (1, 9, 0.7), (20, 30, 0.6)]),
          prediction("q2", [(0, 6, 0.9), (5, 15, 0.8)])],
         [annotation("q1", 20, 30), annotation("q2", 0, 10)])
    }

    func testRecallAndMeanIoUWithoutNMS() throws {
        let (predictions, annotations) = cases
        let metrics = try GroundingMetrics.evaluate(predictions: predictions, annotations: annotations)
        XCTAssertEqual(metrics.queryCount, 2)
        XCTAssertEqual(metrics.recalls.map(\.key), ["R1@0.3", "R1@0.5", "R1@0.7", "R5@0.3", "R5@0.5", "R5@0.7"])
        XCTAssertEqual(metrics.recalls.map(\.value), [50, 50, 0, 50, 50, 0])
        // Top-1 IoUs 0 and 0.6.
        XCTAssertEqual(metrics.meanIoU, 30)
    }

    func testNMSBringsTheHitIntoTheTopFive() throws {
        let (predictions, annotations) = cases
        let metrics = try GroundingMetrics.evaluate(predictions: predictions, annotations: annotations,
                                                    options: .init(nmsThreshold: 0.7))
        XCTAssertEqual(metrics.recalls.map(\.value), [50, 50, 0, 100, 100, 50])
        XCTAssertEqual(metrics.recall(rank: 5, threshold: 0.7), 50)
        XCTAssertEqual(metrics.meanIoU, 30)
        XCTAssertEqual(metrics.jsonString(), """
            {
                "R1@0.3": 50.0,
                "R1@0.5": 50.0,
                "R1@0.7": 0.0,
                "R5@0.3": 100.0,
                "R5@0.5": 100.0,
                "R5@0.7": 50.0,
                "mIoU": 30.0
            }
            """)
    }

    func testNMSSuppressesOnlyOverlapsAboveTheThreshold() {
        // IoU with the kept [0, 10]: [3, 10] 0.7 (kept, not above), [2, 10] 0.8 (dropped), [5, 20] 0.25 (kept).
        let kept = TemporalNMS.suppress([ScoredWindow(start: 2, end: 10, score: 0.8), ScoredWindow(start: 0, end: 10, score: 0.9),
                                         ScoredWindow(start: 3, end: 10, score: 0.7), ScoredWindow(start: 5, end: 20, score: 0.6)],
                                        threshold: 0.7)
        XCTAssertEqual(kept.map(\.window), [TimeWindow(start: 0, end: 10), TimeWindow(start: 3, end: 10), TimeWindow(start: 5, end: 20)])
    }

    func testTopWindowIsTheBestScoredNotTheFirstListed() throws {
        let metrics = try GroundingMetrics.evaluate(predictions: [prediction("1", [(20, 30, 0.1), (0, 10, 0.9)])],
                                                    annotations: [annotation("1", 0, 10)])
        XCTAssertEqual(metrics.recall(rank: 1, threshold: 0.7), 100)
        XCTAssertEqual(metrics.meanIoU, 100)
    }

    func testQueryWithoutPredictionsIsAMiss() throws {
        let metrics = try GroundingMetrics.evaluate(predictions: [prediction("1", [(0, 10, 0.9)]), prediction("2", [])],
                                                    annotations: [annotation("1", 0, 10), annotation("2", 0, 10)])
        XCTAssertEqual(metrics.recalls.map(\.value), [50, 50, 50, 50, 50, 50])
        XCTAssertEqual(metrics.meanIoU, 50)
    }

    func testTACoSStyleFilesScoreThroughTheLoader() throws {
        let annotations = try MomentJSONL.parseAnnotations(Data("""
            {"qid": "s34-d28_0", "query": "The person gets out a knife.", "duration": 401.3605442176871, "vid": "s34-d28", "relevant_windows": [[6.836734693877552, 16.564625850340136]]}
            {"qid": "s34-d28_1", "query": "The person gets out a plate.", "duration": 401.3605442176871, "vid": "s34-d28", "relevant_windows": [[17.040816326530614, 32.44897959183674]]}
            """.utf8), source: "tacos.jsonl")
        let predictions = try MomentJSONL.parsePredictions(Data("""
            {"qid": "s34-d28_1", "pred_relevant_windows": [[17.040816326530614, 32.44897959183674, 0.8]]}
            {"qid": "s34-d28_0", "pred_relevant_windows": [[0.0, 11.700680272108844, 0.8]]}
            """.utf8), source: "preds.jsonl")
        let metrics = try GroundingMetrics.evaluate(predictions: predictions, annotations: annotations)
        // Query 0: intersection 4.8639, union 16.5646: IoU 0.2936, below 0.3. Query 1: exact.
        XCTAssertEqual(metrics.recall(rank: 1, threshold: 0.3), 50)
        XCTAssertEqual(metrics.meanIoU, 64.68)
    }

    func testQIDMismatchIsReported() {
        XCTAssertThrowsError(try GroundingMetrics.evaluate(predictions: [prediction("1", [(0, 1, 1)])],
                                                           annotations: [annotation("2", 0, 1)])) {
            XCTAssertEqual($0 as? EvaluationError, .qidMismatch(missing: ["2"], extra: ["1"]))
        }
    }
}

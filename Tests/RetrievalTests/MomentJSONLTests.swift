import Foundation
import XCTest

@testable import Retrieval

/// The JSONL loader: what it accepts, and the one-line errors it gives for what it does not.
final class MomentJSONLTests: XCTestCase {
    private func predictions(_ lines: [String]) throws -> [MomentPrediction] {
        try MomentJSONL.parsePredictions(Data(lines.joined(separator: "\n").utf8), source: "preds.jsonl")
    }

    private func annotations(_ lines: [String]) throws -> [MomentAnnotation] {
        try MomentJSONL.parseAnnotations(Data(lines.joined(separator: "\n").utf8), source: "gt.jsonl")
    }

    private func assertError(_ expression: @autoclosure () throws -> some Any, _ expected: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            XCTAssertTrue(error is EvaluationError, file: file, line: line)
            XCTAssertEqual(String(describing: error), expected, file: file, line: line)
        }
    }

    func testParsesAQVHighlightsPredictionLine() throws {
        let parsed = try predictions([
            #"{"qid": 2579, "query": "A girl cooks.", "vid": "NUsG9BgSes0_210.0_360.0", "#
                + #""pred_relevant_windows": [[0.0, 70.0, 0.9986], [78.0, 146.0, 0.4138]], "#
                + #""pred_saliency_scores": [-0.2452392578125, 0.0751953125, 1e-3]}"#,
        ])
        XCTAssertEqual(parsed, [MomentPrediction(
            qid: "2579", query: "A girl cooks.", vid: "NUsG9BgSes0_210.0_360.0",
            windows: [ScoredWindow(start: 0, end: 70, score: 0.9986), ScoredWindow(start: 78, end: 146, score: 0.4138)],
            saliencyScores: [-0.2452392578125, 0.0751953125, 0.001])])
    }

    func testParsesQVHighlightsCharadesAndTACoSAnnotations() throws {
        let parsed = try annotations([
            #"{"qid": 8737, "query": "A family plays.", "duration": 126, "vid": "bP5KfdFJzC4_660.0_810.0", "#
                + #""relevant_windows": [[0, 16]], "relevant_clip_ids": [0, 1], "saliency_scores": [[4, 1, 1], [4, 2, 1]]}"#,
            #"{"qid": 12404, "query": "person turn a light on.", "duration": 30.96, "vid": "3MSZA", "relevant_windows": [[24.3, 30.4]]}"#,
            "",
            #"{"qid": "s34-d28_0", "query": "The person gets out a knife.", "duration": 401.3605442176871, "#
                + #""vid": "s34-d28", "relevant_windows": [[6.836734693877552, 16.564625850340136]]}"#,
        ])
        XCTAssertEqual(parsed.map(\.qid), ["8737", "12404", "s34-d28_0"])
        XCTAssertEqual(parsed[0].clipCount, 63)
        XCTAssertEqual(parsed[0].saliencyScores, [[4, 1, 1], [4, 2, 1]])
        XCTAssertEqual(parsed[1].duration, 30.96)
        XCTAssertNil(parsed[1].saliencyScores)
        XCTAssertEqual(parsed[2].relevantWindows, [TimeWindow(start: 6.836734693877552, end: 16.564625850340136)])
    }

    func testNumbersAreCorrectlyRounded() throws {
        // Long mantissas and exponents go through the library conversion; short ones through the exact fast path.
        let parsed = try predictions([
            #"{"qid": "a", "pred_relevant_windows": [[0.1, 1.7976931348623157e308, 3.141592653589793238462643]], "#
                + #""pred_saliency_scores": [-0.0, 5e-324, 123456789012345678901234567890, 0.30000000000000004, -2.5E+3]}"#,
        ])
        XCTAssertEqual(parsed[0].windows?[0], ScoredWindow(start: 0.1, end: .greatestFiniteMagnitude, score: Double.pi))
        XCTAssertEqual(parsed[0].saliencyScores, [0, .leastNonzeroMagnitude, 1.2345678901234568e29, 0.1 + 0.2, -2500])
    }

    func testEscapedStringsAreDecoded() throws {
        let parsed = try predictions([#"{"qid": "caf\u00e9 \ud83d\ude00 \"q\"\n", "pred_relevant_windows": []}"#])
        XCTAssertEqual(parsed[0].qid, "café 😀 \"q\"\n")
    }

    func testMalformedLineNamesFileAndLine() {
        assertError(try predictions([#"{"qid": 1, "pred_relevant_windows": []}"#, #"{"qid": 2, "pred_relevant_windows": [[0, 1, 0.5]"#]),
                    "preds.jsonl:2: not valid JSON: unterminated array at column 49")
        assertError(try predictions(["[1, 2]"]), "preds.jsonl:1: not a JSON object")
    }

    func testStartAfterEndNamesTheQID() {
        assertError(try predictions([#"{"qid": 7, "pred_relevant_windows": [[0, 4, 0.9], [5, 3, 0.5]]}"#]),
                    "preds.jsonl:1 (qid 7): 'pred_relevant_windows[1]' has start 5.0 after end 3.0")
        assertError(try annotations([#"{"qid": "x", "duration": 10, "relevant_windows": [[8, 2]]}"#]),
                    "gt.jsonl:1 (qid x): 'relevant_windows[0]' has start 8.0 after end 2.0")
    }

    func testNaNScoresAreRejectedWithTheirQID() {
        assertError(try predictions(["", #"{"qid": 3, "pred_relevant_windows": [[0, 2, NaN]]}"#]),
                    "preds.jsonl:2 (qid 3): 'pred_relevant_windows[0]' is NaN")
        assertError(try predictions([#"{"qid": 4, "pred_relevant_windows": [], "pred_saliency_scores": [0.5, NaN]}"#]),
                    "preds.jsonl:1 (qid 4): 'pred_saliency_scores[1]' is NaN")
        assertError(try predictions([#"{"qid": 5, "pred_relevant_windows": [[0, Infinity, 1]]}"#]),
                    "preds.jsonl:1 (qid 5): 'pred_relevant_windows[0]' is infinite")
    }

    func testWindowsMustHoldStartEndAndScore() {
        assertError(try predictions([#"{"qid": 1, "pred_relevant_windows": [[0, 2]]}"#]),
                    "preds.jsonl:1 (qid 1): 'pred_relevant_windows[0]' must be a list of 3 numbers")
        assertError(try predictions([#"{"qid": 1, "pred_relevant_windows": [[0, "2", 1]]}"#]),
                    "preds.jsonl:1 (qid 1): 'pred_relevant_windows[0]' must be a number")
    }

    func testQIDMustBeAnIntegerOrAString() {
        assertError(try predictions([#"{"qid": 1.5, "pred_relevant_windows": []}"#]),
                    "preds.jsonl:1: qid must be an integer or a string")
        assertError(try predictions([#"{"pred_relevant_windows": []}"#]), "preds.jsonl:1: missing field 'qid'")
    }

    func testDuplicateQIDNamesBothLines() {
        assertError(try predictions([#"{"qid": 1, "pred_relevant_windows": []}"#, #"{"qid": 2, "pred_relevant_windows": []}"#,
                                     #"{"qid": 1, "pred_relevant_windows": []}"#]),
                    "preds.jsonl:3 (qid 1): qid already used on line 1")
    }

    func testClipIDsMustLieInsideTheVideoAndMatchTheScores() {
        assertError(try annotations([#"{"qid": 1, "duration": 10, "relevant_windows": [[0, 2]], "relevant_clip_ids": [5], "saliency_scores": [[1, 1, 1]]}"#]),
                    "gt.jsonl:1 (qid 1): relevant clip id 5 is outside the video's 5 clips (duration 10.0)")
        assertError(try annotations([#"{"qid": 1, "duration": 10, "relevant_windows": [[0, 2]], "relevant_clip_ids": [0, 1], "saliency_scores": [[1, 1, 1]]}"#]),
                    "gt.jsonl:1 (qid 1): 2 relevant_clip_ids but 1 saliency_scores rows")
        assertError(try annotations([#"{"qid": 1, "duration": 10, "relevant_windows": [[0, 2]], "relevant_clip_ids": [0], "saliency_scores": [[1, 1]]}"#]),
                    "gt.jsonl:1 (qid 1): 'saliency_scores[0]' must be a list of 3 numbers")
    }

    func testEmptyFileIsAnError() {
        assertError(try predictions(["", "  "]), "preds.jsonl: no records")
    }

    func testMissingFileIsAnError() {
        XCTAssertThrowsError(try MomentJSONL.loadPredictions(from: URL(fileURLWithPath: "/nonexistent/preds.jsonl"))) {
            XCTAssertTrue(String(describing: $0).hasPrefix("/nonexistent/preds.jsonl: cannot read the file"))
        }
    }
}

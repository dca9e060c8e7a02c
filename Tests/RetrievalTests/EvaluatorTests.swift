import Foundation
import Shards
import XCTest

@testable import Retrieval

/// The official QVHighlights evaluation reproduced on the real files: each prediction file scored against the
/// validation annotations must give every number of the metrics file the official script wrote for it.
final class EvaluatorTests: XCTestCase {
    private static let groundTruthName = "highlight_val_release.jsonl"

    func testSampleValPredsReproduceOfficialMetrics() throws {
        try assertReproducesOfficialMetrics(predictions: "sample_val_preds.jsonl",
                                            metrics: "sample_val_preds_metrics_raw.json")
    }

    func testMomentDETRPredsReproduceOfficialMetrics() throws {
        try assertReproducesOfficialMetrics(predictions: "moment_detr_ckpt_hl_val_preds.jsonl",
                                            metrics: "moment_detr_ckpt_hl_val_preds_metrics.json")
    }

    func testQDDETRVideoPredsReproduceOfficialMetrics() throws {
        try assertReproducesOfficialMetrics(predictions: "qd_detr_video_checkpoint_best_hl_val_preds.jsonl",
                                            metrics: "qd_detr_video_checkpoint_best_hl_val_preds_metrics.json")
    }

    func testQDDETROnlyCLIPPredsReproduceOfficialMetrics() throws {
        try assertReproducesOfficialMetrics(predictions: "qd_detr_QDDETR_onlyclip_best_hl_val_preds.jsonl",
                                            metrics: "qd_detr_QDDETR_onlyclip_best_hl_val_preds_metrics.json")
    }

    func testQDDETRAudioPredsReproduceOfficialMetrics() throws {
        try assertReproducesOfficialMetrics(predictions: "qd_detr_audio_checkpoint_best_hl_val_preds.jsonl",
                                            metrics: "qd_detr_audio_checkpoint_best_hl_val_preds_metrics.json")
    }

    func testExtendedRecallAddsKeysWithoutChangingOfficialOnes() throws {
        let annotations = try Fixtures.annotations(Self.groundTruthName)
        let predictions = try Fixtures.predictions("sample_val_preds.jsonl")
        let official = try QVHighlightsEvaluator().evaluate(predictions: predictions, annotations: annotations).tree()
        let extended = try QVHighlightsEvaluator(options: .init(includeExtendedRecall: true))
            .evaluate(predictions: predictions, annotations: annotations).tree()

        let addedKeys: Set<String> = ["MR-R1-extended", "MR-mIoU", "MR-full-mIoU", "MR-full-R1@0.1", "MR-full-R1@0.2",
                                      "MR-full-R1@0.3", "MR-full-R1@0.4", "MR-full-R1@0.6", "MR-full-R1@0.8",
                                      "MR-full-R1@0.9"]
        XCTAssertEqual(Self.removing(addedKeys, from: extended), official)
        XCTAssertEqual(extended["brief"]?.keys.suffix(8),
                       ["MR-full-R1@0.1", "MR-full-R1@0.2", "MR-full-R1@0.3", "MR-full-R1@0.4", "MR-full-R1@0.6",
                        "MR-full-R1@0.8", "MR-full-R1@0.9", "MR-full-mIoU"])
        for bucket in ["full", "long", "middle", "short"] {
            XCTAssertEqual(extended[bucket]?.keys, ["MR-mAP", "MR-R1", "MR-R1-extended", "MR-mIoU"])
            // The shared thresholds must agree with the official block, and recall can only fall as t rises.
            let recall = try XCTUnwrap(extended[bucket]?["MR-R1-extended"])
            XCTAssertEqual(recall["0.5"], extended[bucket]?["MR-R1"]?["0.5"])
            XCTAssertEqual(recall["0.7"], extended[bucket]?["MR-R1"]?["0.7"])
            let values = recall.keys.compactMap { recall[$0]?.number }
            XCTAssertEqual(values.count, 9)
            XCTAssertEqual(values, values.sorted(by: >))
        }
    }

    func testTopOneMeanIoUAndExtendedRecallEqualTheirDefinitionOnTheSampleFile() throws {
        let annotations = try Fixtures.annotations(Self.groundTruthName)
        let predictions = try Fixtures.predictions("sample_val_preds.jsonl")
        let brief = try XCTUnwrap(try QVHighlightsEvaluator(options: .init(includeExtendedRecall: true))
            .evaluate(predictions: predictions, annotations: annotations).tree()["brief"])
        // Recomputed from the files: per query, the first listed window's IoU with its best ground-truth window.
        var byQid: [String: MomentPrediction] = [:]
        for p in predictions { byQid[p.qid] = p }
        let ious = annotations.map { a -> Double in
            guard let top = byQid[a.qid]?.windows?.first?.window else { return 0 }
            return a.relevantWindows.map { g in
                let intersection = max(0, min(top.end, g.end) - max(top.start, g.start))
                return intersection / ((top.end - top.start) + (g.end - g.start) - intersection)
            }.max() ?? 0
        }
        XCTAssertEqual(ious.count, 1550)
        let meanIoU = 100 * ious.reduce(0, +) / Double(ious.count)
        XCTAssertEqual(try XCTUnwrap(brief["MR-full-mIoU"]?.number), meanIoU, accuracy: 0.005 + 1e-9)
        for threshold in [0.1, 0.3, 0.9] {
            let recall = 100 * Double(ious.filter { $0 >= threshold }.count) / Double(ious.count)
            XCTAssertEqual(try XCTUnwrap(brief["MR-full-R1@\(threshold)"]?.number), recall, accuracy: 0.005 + 1e-9, "R1@\(threshold)")
        }
    }

    func testBriefTableListsTheFourteenHeadlineNumbers() throws {
        let metrics = try QVHighlightsEvaluator().evaluate(
            predictions: Fixtures.predictions("sample_val_preds.jsonl"),
            annotations: Fixtures.annotations(Self.groundTruthName))
        let lines = metrics.briefTable().split(separator: "\n")
        XCTAssertEqual(lines.count, 14)
        XCTAssertEqual(lines[0], "MR-full-R1@0.5        53.94")
        XCTAssertEqual(lines[2], "MR-full-mAP           32.20")
        XCTAssertEqual(lines[13], "HL-min-VeryGood-Hit1  55.55")
    }

    // MARK: - Helpers

    private func assertReproducesOfficialMetrics(predictions: String, metrics: String,
                                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let expectedText = String(decoding: try Fixtures.data(metrics), as: UTF8.self)
        let expected = try OrderedJSONReader.parse(expectedText)
        let result = try QVHighlightsEvaluator().evaluate(
            predictions: Fixtures.predictions(predictions), annotations: Fixtures.annotations(Self.groundTruthName))
        let actual = result.tree()

        var compared = 0
        Self.assertSameTree(actual, expected, path: metrics, compared: &compared, file: file, line: line)
        XCTAssertEqual(compared, 104, "numbers compared", file: file, line: line)
        XCTAssertEqual(result.jsonString(), expectedText, "byte-identical to the official file", file: file, line: line)
    }

    /// Asserts the same keys in the same order at every level and exactly equal numbers.
    private static func assertSameTree(_ actual: MetricsTree, _ expected: MetricsTree, path: String,
                                       compared: inout Int, file: StaticString, line: UInt) {
        switch (actual, expected) {
        case let (.number(actualValue), .number(expectedValue)):
            XCTAssertEqual(actualValue, expectedValue, path, file: file, line: line)
            compared += 1
        case let (.object(actualEntries), .object(expectedEntries)):
            XCTAssertEqual(actualEntries.map(\.key), expectedEntries.map(\.key), "keys of \(path)", file: file, line: line)
            for (actualEntry, expectedEntry) in zip(actualEntries, expectedEntries) where actualEntry.key == expectedEntry.key {
                assertSameTree(actualEntry.value, expectedEntry.value, path: path + "/" + actualEntry.key,
                               compared: &compared, file: file, line: line)
            }
        default:
            XCTFail("\(path): a number on one side, an object on the other", file: file, line: line)
        }
    }

    private static func removing(_ keys: Set<String>, from tree: MetricsTree) -> MetricsTree {
        guard case let .object(entries) = tree else { return tree }
        return .object(entries.filter { !keys.contains($0.key) }
            .map { MetricsTree.Entry($0.key, removing(keys, from: $0.value)) })
    }
}

/// The fixture files next to this source file, zstd-compressed.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The decompressed bytes of `name` (stored as `name.zst`).
    static func data(_ name: String) throws -> Data {
        try Zstd.decompress(Data(contentsOf: directory.appendingPathComponent(name + ".zst")))
    }

    static func predictions(_ name: String) throws -> [MomentPrediction] {
        try MomentJSONL.parsePredictions(data(name), source: name)
    }

    static func annotations(_ name: String) throws -> [MomentAnnotation] {
        try MomentJSONL.parseAnnotations(data(name), source: name)
    }
}

/// Reads a metrics file into a `MetricsTree`, keeping key order (which `JSONSerialization` loses).
enum OrderedJSONReader {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ text: String) throws -> MetricsTree {
        var scalars = Substring(text)
        let tree = try value(&scalars)
        guard scalars.allSatisfy(\.isWhitespace) else { throw Failure(description: "trailing text") }
        return tree
    }

    private static func value(_ text: inout Substring) throws -> MetricsTree {
        text = text.drop(while: \.isWhitespace)
        if text.first == "{" {
            text.removeFirst()
            var entries: [MetricsTree.Entry] = []
            while true {
                text = text.drop(while: \.isWhitespace)
                if text.first == "}" {
                    text.removeFirst()
                    return .object(entries)
                }
                if text.first == "," {
                    text.removeFirst()
                    continue
                }
                guard text.first == "\"", let close = text.dropFirst().firstIndex(of: "\"") else {
                    throw Failure(description: "expected a key")
                }
                let key = String(text[text.index(after: text.startIndex)..<close])
                text = text[text.index(after: close)...].drop(while: \.isWhitespace)
                guard text.first == ":" else { throw Failure(description: "expected ':' after \(key)") }
                text.removeFirst()
                entries.append(MetricsTree.Entry(key, try value(&text)))
            }
        }
        let numberText = text.prefix { "0123456789+-.eE".contains($0) }
        guard let number = Double(numberText) else { throw Failure(description: "expected a number") }
        text = text.dropFirst(numberText.count)
        return .number(number)
    }
}

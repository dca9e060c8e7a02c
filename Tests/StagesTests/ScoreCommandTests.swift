import Foundation
import Shards
import XCTest

/// `mask-eval score` run as a user runs it, on the official sample predictions.
final class ScoreCommandTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("RetrievalTests/Fixtures")

    func unpack(_ name: String, into dir: URL) throws -> URL {
        let data = try Zstd.decompress(Data(contentsOf: fixtures.appendingPathComponent(name + ".zst")))
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    func runScore(_ args: [String]) throws -> StageProcess.Result {
        try StageProcess.run("mask-eval", ["score"] + args)
    }

    func testScoreWritesTheOfficialMetricsFileByteForByte() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("score-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let gt = try unpack("highlight_val_release.jsonl", into: dir)
        let preds = try unpack("sample_val_preds.jsonl", into: dir)
        let expected = try unpack("sample_val_preds_metrics_raw.json", into: dir)
        let out = dir.appendingPathComponent("metrics.json")
        let result = try runScore(["--submission", preds.path, "--gt", gt.path, "--out", out.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("MR-full-mAP"), result.stdout)
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), try String(contentsOf: expected, encoding: .utf8))
    }

    func testMismatchedQidsFailWithOneLineAndWriteNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("score-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let gt = try unpack("highlight_val_release.jsonl", into: dir)
        let preds = try unpack("sample_val_preds.jsonl", into: dir)
        let lines = try String(contentsOf: preds, encoding: .utf8).split(separator: "\n")
        let cut = dir.appendingPathComponent("cut.jsonl")
        try lines.dropFirst().joined(separator: "\n").write(to: cut, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("metrics.json")
        let result = try runScore(["--submission", cut.path, "--gt", gt.path, "--out", out.path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("2579"), "names the missing qid: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains(cut.path + ": submission qids do not match"), "names the submission: \(result.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func scoreFailure(_ label: String, editGroundTruth: (inout [String]) -> Void = { _ in },
                      editSubmission: (inout [String]) -> Void = { _ in }) throws -> (result: StageProcess.Result, gt: URL, preds: URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("score-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let gt = try unpack("highlight_val_release.jsonl", into: dir)
        let preds = try unpack("sample_val_preds.jsonl", into: dir)
        var gtLines = try String(contentsOf: gt, encoding: .utf8).split(separator: "\n").map(String.init)
        editGroundTruth(&gtLines)
        try (gtLines.joined(separator: "\n") + "\n").write(to: gt, atomically: true, encoding: .utf8)
        var predLines = try String(contentsOf: preds, encoding: .utf8).split(separator: "\n").map(String.init)
        editSubmission(&predLines)
        try (predLines.joined(separator: "\n") + "\n").write(to: preds, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("metrics.json")
        let result = try runScore(["--submission", preds.path, "--gt", gt.path, "--out", out.path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        return (result, gt, preds)
    }

    func testAGroundTruthDurationThatWouldSizeHugeBuffersIsRefused() throws {
        // 1e13 used to abort allocating 120 TB; 1e300 trapped.
        for duration in ["1e13", "1e300"] {
            // Labelled: in the Swift 5 language mode an unlabelled trailing closure binds to the last closure
            // parameter, the submission's.
            let (result, gt, _) = try scoreFailure("duration", editGroundTruth: { lines in
                lines[0] = lines[0].replacingOccurrences(of: #""duration": 150"#, with: #""duration": "# + duration)
            })
            XCTAssertTrue(result.stderr.contains(gt.path + ":1"), result.stderr)
            XCTAssertTrue(result.stderr.contains("over the 1000000 s limit"), result.stderr)
        }
    }

    func testAnEmptySaliencyListNamesTheSubmissionLineAndQid() throws {
        let (result, _, preds) = try scoreFailure("saliency", editSubmission: { lines in
            let range = lines[4].range(of: #""pred_saliency_scores": \[[^\]]*\]"#, options: .regularExpression)!
            lines[4].replaceSubrange(range, with: #""pred_saliency_scores": []"#)
        })
        XCTAssertTrue(result.stderr.contains(preds.path + ":5: qid "), result.stderr)
    }
}

import Foundation
import XCTest

/// The README's promise for every stage: an unknown param, a missing input or a corrupt shard stops it with
/// one line naming the param, the input or the file, a non-zero exit, and no output left behind.
final class StageFailureTests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        root = try StageProcess.temporaryDirectory("stage-failures", for: self)
        let ingest = try StageProcess.run("feature-ingest", ["synthetic", "--out", data.path, "--params",
            #"{"train_videos": 16, "val_videos": 4, "shifted_videos": 4, "video_dim": 8, "text_dim": 4, "max_clips": 20}"#])
        XCTAssertEqual(ingest.status, 0, ingest.stderr)
        let pairs = try StageProcess.run("pair-mining", ["--out", root.appendingPathComponent("pairs").path, "--params", #"{"k": 2}"#,
                                                         "--in", "videos=\(data.path)/train.videos.tshard"])
        XCTAssertEqual(pairs.status, 0, pairs.stderr)
    }

    /// A copy of the shard at `url` cut to half its length.
    func truncated(_ url: URL) throws -> String {
        let bytes = try Data(contentsOf: url)
        let copy = root.appendingPathComponent("truncated-" + url.lastPathComponent)
        try bytes.prefix(bytes.count / 2).write(to: copy)
        return copy.path
    }

    /// Runs `command` into a fresh output folder and checks that it fails with one error line containing
    /// every string of `naming`, leaving no file behind.
    func assertFails(_ command: [String], _ arguments: [String], naming: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let out = root.appendingPathComponent("out-\(UUID().uuidString)")
        let result = try StageProcess.run(command[0], Array(command.dropFirst()) + ["--out", out.path] + arguments)
        XCTAssertNotEqual(result.status, 0, "\(command) succeeded", file: file, line: line)
        XCTAssertEqual(result.errorLines.count, 1, result.stderr, file: file, line: line)
        for text in naming {
            XCTAssertTrue(result.errorLines.first?.contains(text) == true, "\(command): '\(text)' not in \(result.errorLines)", file: file, line: line)
        }
        XCTAssertEqual(StageProcess.files(in: out), [], "\(command) left output behind", file: file, line: line)
    }

    func testPairMiningAndVideoSynthesisRefuseUnknownParamsMissingInputsAndCorruptShards() throws {
        let videos = "videos=\(data.path)/train.videos.tshard", queries = "queries=\(data.path)/train.queries.tshard"
        let pairs = "pairs=\(root.path)/pairs/pairs.tshard"
        try assertFails(["pair-mining"], ["--params", #"{"kk": 2}"#, "--in", videos], naming: ["kk"])
        try assertFails(["pair-mining"], [], naming: ["--in videos=PATH"])
        let badVideos = try truncated(data.appendingPathComponent("train.videos.tshard"))
        try assertFails(["pair-mining"], ["--in", "videos=\(badVideos)"], naming: [badVideos])

        try assertFails(["video-synthesis"], ["--params", #"{"alfa": 0.3}"#, "--in", videos, "--in", queries, "--in", pairs], naming: ["alfa"])
        try assertFails(["video-synthesis"], ["--in", videos, "--in", queries], naming: ["--in pairs=PATH"])
        let badPairs = try truncated(root.appendingPathComponent("pairs/pairs.tshard"))
        try assertFails(["video-synthesis"], ["--in", videos, "--in", queries, "--in", "pairs=\(badPairs)"], naming: [badPairs])
    }

    func testTrainMaskEvalAndReportRefuseUnknownParamsMissingInputsAndCorruptFiles() throws {
        let split = ["--in", "train_videos=\(data.path)/train.videos.tshard", "--in", "train_queries=\(data.path)/train.queries.tshard",
                     "--in", "val_videos=\(data.path)/val.videos.tshard"]
        let valQueries = ["--in", "val_queries=\(data.path)/val.queries.tshard"]
        let tiny = #""model": "qd-detr", "hidden": 8, "heads": 2, "ffn": 8, "t2v_layers": 1, "enc_layers": 1, "dec_layers": 1, "queries": 2, "epochs": 1, "batch_size": 8, "threads": 1"#
        try assertFails(["train"], ["--params", "{\(tiny), \"epoch\": 3}"] + split + valQueries, naming: ["epoch"])
        try assertFails(["train"], ["--params", "{\(tiny)}"] + split, naming: ["--in val_queries=PATH"])
        let badQueries = try truncated(data.appendingPathComponent("train.queries.tshard"))
        try assertFails(["train"], ["--params", "{\(tiny)}", "--in", "train_videos=\(data.path)/train.videos.tshard",
                                    "--in", "train_queries=\(badQueries)", "--in", "val_videos=\(data.path)/val.videos.tshard"] + valQueries,
                        naming: [badQueries])

        let eval = ["--in", "videos=\(data.path)/val.videos.tshard", "--in", "queries=\(data.path)/val.queries.tshard"]
        try assertFails(["mask-eval", "run"], ["--params", #"{"maks": ["zero"]}"#] + eval, naming: ["maks"])
        try assertFails(["mask-eval", "run"], eval, naming: ["--in checkpoint=PATH"])
        let badCheckpoint = try truncated(data.appendingPathComponent("val.videos.tshard"))
        try assertFails(["mask-eval", "run"], ["--in", "checkpoint=\(badCheckpoint)"] + eval, naming: [badCheckpoint])

        let summary = root.appendingPathComponent("summary.json")
        try #"{"model": "qd-detr", "splits": "#.write(to: summary, atomically: true, encoding: .utf8)
        try assertFails(["report"], ["--params", #"{"titel": "x"}"#], naming: ["titel"])
        try assertFails(["report"], ["--in", "summaries=\(summary.path)"], naming: [summary.path])
    }
}

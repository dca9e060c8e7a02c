import Foundation
import Stages
import XCTest

/// A failed stage leaves nothing in `--out`: neither the files it wrote nor a directory it made; a directory
/// that was there before stays.
final class StageOutputsTests: XCTestCase {
    func testDiscardRemovesTheDirectoriesTheStageMadeButNeverOneThatExisted() throws {
        let root = try StageProcess.temporaryDirectory("stage-outputs", for: self)
        let made = try StageOutputs(directory: root.appendingPathComponent("new/out"))
        try made.write(Data("{}".utf8), as: "metrics.json")
        try Data("partial".utf8).write(to: made.url(".stream.tmp"))
        made.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("new").path),
                       "the output directory and the parent the stage made for it are gone")

        let existing = root.appendingPathComponent("existing")
        try FileManager.default.createDirectory(at: existing, withIntermediateDirectories: false)
        try Data("mine".utf8).write(to: existing.appendingPathComponent("notes.txt"))
        let kept = try StageOutputs(directory: existing)
        try kept.write(Data("{}".utf8), as: "metrics.json")
        kept.discard()
        XCTAssertEqual(StageProcess.files(in: existing), ["notes.txt"], "only the stage's own output goes")
    }

    func testAFailedStageLeavesNoOutDirectoryBehind() throws {
        let root = try StageProcess.temporaryDirectory("stage-outputs", for: self)
        let input = root.appendingPathComponent("videos.tshard")
        try Data("not a shard".utf8).write(to: input)
        let out = root.appendingPathComponent("out")
        let result = try StageProcess.run("pair-mining", ["--out", out.path, "--in", "videos=\(input.path)"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.errorLines.count, 1, result.stderr)
        XCTAssertTrue(result.errorLines.first?.contains(input.path) ?? false, result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "--out was made by the failed stage and is removed")
    }
}

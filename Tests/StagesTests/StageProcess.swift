import Foundation
import XCTest

/// Runs the package's stage executables as a user does, and finds the committed fixtures.
enum StageProcess {
    /// The folder holding the built executables: the test bundle's folder (or the bundle itself on
    /// platforms where it is a directory that holds them).
    static var productsDirectory: URL {
        let bundle = Bundle(for: BundleMarker.self).bundleURL
        return FileManager.default.fileExists(atPath: bundle.appendingPathComponent("feature-ingest").path)
            ? bundle : bundle.deletingLastPathComponent()
    }

    /// The repository root (for `stages/*.json`).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String

        /// The `error: ...` lines a failing stage printed (progress lines are not errors).
        var errorLines: [String] { stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("error:") } }
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent(executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Drain stderr on another thread while reading stdout, so a chatty child cannot block on a full pipe.
        let errData = DataBox()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errData.data = err.fileHandleForReading.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self))
    }

    /// A fresh temporary directory, removed when the test ends.
    static func temporaryDirectory(_ label: String, for test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// The regular files under `dir` (relative paths, sorted); empty when `dir` does not exist.
    static func files(in dir: URL) -> [String] {
        let walker = FileManager.default.enumerator(atPath: dir.path)
        return ((walker?.allObjects as? [String]) ?? []).filter { path in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path, isDirectory: &isDir) && !isDir.boolValue
        }.sorted()
    }
}

private final class BundleMarker {}

/// Bytes handed from the reading thread back to the caller, which waits for it before reading.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}

extension StageProcess {
    /// A small synthetic dataset for train-stage tests (40 training videos, pairs and VSDC samples) under `root`,
    /// and the train stage's `--in` arguments for it with `params` as its params.
    static func trainingData(_ root: URL, params: String) throws -> [String] {
        let data = root.appendingPathComponent("data")
        let ingest = try StageProcess.run("feature-ingest", ["synthetic", "--out", data.path, "--params",
            #"{"train_videos": 40, "val_videos": 8, "shifted_videos": 4, "video_dim": 12, "text_dim": 8, "max_clips": 24}"#])
        XCTAssertEqual(ingest.status, 0, ingest.stderr)
        let pairs = try StageProcess.run("pair-mining", ["--out", root.appendingPathComponent("pairs").path,
                                                         "--in", "videos=\(data.path)/train.videos.tshard"])
        XCTAssertEqual(pairs.status, 0, pairs.stderr)
        let synth = try StageProcess.run("video-synthesis", ["--out", root.appendingPathComponent("synth").path,
            "--in", "videos=\(data.path)/train.videos.tshard", "--in", "queries=\(data.path)/train.queries.tshard",
            "--in", "pairs=\(root.path)/pairs/pairs.tshard"])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        return ["--in", "train_videos=\(data.path)/train.videos.tshard", "--in", "train_queries=\(data.path)/train.queries.tshard",
                "--in", "val_videos=\(data.path)/val.videos.tshard", "--in", "val_queries=\(data.path)/val.queries.tshard",
                "--in", "synth_videos=\(root.path)/synth/synthesized.videos.tshard",
                "--in", "synth_queries=\(root.path)/synth/synthesized.queries.tshard", "--params", params]
    }
}

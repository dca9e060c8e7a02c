import Foundation
import Lineage
import PipelineDriver
import XCTest

/// A stage lives no longer than its driver, owns its scratch directory while it lives, and a failure is
/// reported by the line the stage gave as its error.
final class StageLifetimeTests: XCTestCase {
    /// Pids of the processes whose command line contains `marker` (zombies have none).
    static func processes(containing marker: String) -> [pid_t] {
        let own = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry), pid != own,
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let text = String(decoding: cmdline.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return text.contains(marker) ? pid : nil
        }
    }

    func testAKilledDriverLeavesNoStageRunning() throws {
        let p = try TestProject()
        // The stage's script, the launcher and a grandchild all carry the project's unique path.
        try p.writeStage("b", running: #"python3 -c 'import time; time.sleep(120)' "$(dirname "$0")""#)
        let driver = Process()
        driver.executableURL = TestProject.binary
        driver.arguments = ["run", "--no-build"]
        driver.currentDirectoryURL = p.root
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        let marker = p.root.path
        let started = Date()
        while Self.processes(containing: "time.sleep(120) \(marker)").isEmpty {
            guard driver.isRunning, Date().timeIntervalSince(started) < 60 else { return XCTFail("stage b never started") }
            usleep(20_000)
        }
        XCTAssertGreaterThanOrEqual(Self.processes(containing: marker).count, 3, "launcher, stage script and its grandchild")

        kill(driver.processIdentifier, SIGKILL)
        driver.waitUntilExit()
        var survivors = Self.processes(containing: marker)
        let killed = Date()
        while !survivors.isEmpty && Date().timeIntervalSince(killed) < 10 {
            usleep(20_000)
            survivors = Self.processes(containing: marker)
        }
        XCTAssertEqual(survivors, [], "processes of stage b outlived the driver")
        survivors.forEach { kill($0, SIGKILL) }

        try p.writeStage("b", running: "true")
        XCTAssertTrue(try p.run().contains("b"))
        XCTAssertTrue(try p.pipeline().status().allSatisfy { $0.stateRunID != nil }, "the rerun finished what the killed one did not")
    }

    func testAStageHoldsItsScratchLockAndARerunAvoidsOneAStaleChildHolds() throws {
        let p = try TestProject()
        try p.writeStage("a", running: #"""
            echo "$PIPELINE_SCRATCH" > "$(dirname "$0")/a.scratch"
            if flock -n "$PIPELINE_SCRATCH/.lock" true; then echo free; else echo held; fi >> "$(dirname "$0")/a.scratch"
            """#)
        let key = try XCTUnwrap(try p.pipeline().status().first { $0.node == "a" }?.cacheKey)
        let primary = p.artifacts.appendingPathComponent("scratch/\(key)")
        // A child of an earlier driver that is still alive holds a's scratch directory.
        try FileManager.default.createDirectory(at: primary, withIntermediateDirectories: true)
        let stale = open(primary.appendingPathComponent(".lock").path, O_RDWR | O_CREAT, 0o644)
        XCTAssertEqual(flock(stale, LOCK_EX | LOCK_NB), 0)
        defer { close(stale) }

        try p.run()
        let seen = try String(contentsOf: p.root.appendingPathComponent("a.scratch"), encoding: .utf8)
        XCTAssertEqual(seen, "\(primary.path).1\nheld\n", "a used another directory, and held its lock while it ran")
        XCTAssertTrue(FileManager.default.fileExists(atPath: primary.path), "the stale child's directory is left alone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: primary.path + ".1"), "a succeeded: its scratch directory is gone")

        let report = try p.pipeline().gc(workspace: true, dryRun: false)
        XCTAssertTrue(report.contains("kept \(primary.path): a process of an earlier run still uses it"), "\(report)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: primary.path))
        flock(stale, LOCK_UN)
        _ = try p.pipeline().gc(workspace: true, dryRun: false)
        XCTAssertFalse(FileManager.default.fileExists(atPath: primary.path), "once free, gc --workspace removes it")
    }

    func testTheFailureShowsTheStagesErrorLineNotItsLastOutput() throws {
        let p = try TestProject()
        // Like a Swift stage: the error on stderr, buffered progress on stdout flushed after it at exit.
        try p.writeStage("b", running: #"""
            echo "working" >&2
            echo "error: val.jsonl line 3: duration 1e300 is out of range" >&2
            echo "epoch 1/1 done"
            exit 1
            """#)
        var lines: [String] = []
        let pipeline = try Pipeline(pipelineFile: p.pipelineFile, artifacts: p.artifacts, log: { lines.append($0) })
        var options = RunOptions()
        options.build = false
        XCTAssertThrowsError(try pipeline.run(options))
        let failed = try XCTUnwrap(lines.first { $0.hasPrefix("FAILED") }, "\(lines)")
        let log = p.artifacts.appendingPathComponent("logs/b.log").path
        XCTAssertEqual(failed, "FAILED     b: exit 1: val.jsonl line 3: duration 1e300 is out of range (log: \(log))")
        let b = try p.pipeline().status().first { $0.node == "b" }!
        XCTAssertEqual(b.state, .stale(reason: "last run failed: exit 1: val.jsonl line 3: duration 1e300 is out of range (log: \(log))"))
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertTrue(text.contains("working") && text.contains("epoch 1/1 done"), "the log keeps both streams: \(text)")
    }
}

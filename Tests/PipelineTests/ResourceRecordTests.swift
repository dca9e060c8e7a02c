import Foundation
import Lineage
import PipelineDriver
import XCTest

/// What each stage run's child process used: recorded in the manifest, shown by `status`, `lineage` and `runs`.
final class ResourceRecordTests: XCTestCase {
    override func tearDown() {
        unsetenv("FAIL_STAGE")
        unsetenv("CRASH_STAGE")
    }

    func latest(_ p: TestProject, _ node: String) throws -> RunRecord {
        try XCTUnwrap(try p.manifest().latestRun(node: node, succeededOnly: false), "no run of \(node)")
    }

    func testEveryRunRecordsPositiveWallTimeAndPeakRSS() throws {
        let p = try TestProject()
        try p.run()
        let runs = try p.manifest().allRuns()
        XCTAssertEqual(runs.count, 5)
        for run in runs {
            let used = try XCTUnwrap(run.resources, "\(run.node) has no resources")
            XCTAssertGreaterThan(used.wallSeconds, 0, run.node)
            // The child lives between the driver's start and finish stamps of the run.
            XCTAssertLessThanOrEqual(used.wallSeconds, run.finishedAt! - run.startedAt + 0.001, run.node)
            XCTAssertGreaterThanOrEqual(used.cpuSeconds, 0, run.node)
            XCTAssertLessThanOrEqual(used.cpuSeconds, used.wallSeconds + 0.01, "\(run.node): a sequential bash script")
            // bash with cat and friends: a few MB (in bytes, not the KiB the kernel reports).
            XCTAssertGreaterThan(used.peakRSSBytes, 1_000_000, run.node)
            XCTAssertLessThan(used.peakRSSBytes, 50_000_000, run.node)
        }
    }

    func testPeakRSSIsPerChildWhenABigStageRunsBesideASmallOne() throws {
        let p = try TestProject()
        // b touches every byte of 200 MiB; d, running beside it, only sleeps and is reaped after b.
        try p.writeStage("b", running: #"python3 -c 'b = bytearray(b"\x01") * (200 * 1024 * 1024)'"#)
        try p.writeStage("d", running: "sleep 2")
        try p.run { $0.jobs = 2 }
        let b = try latest(p, "b")
        let d = try latest(p, "d")
        XCTAssertLessThan(d.startedAt, b.finishedAt!, "b and d ran at the same time")
        XCTAssertGreaterThan(d.finishedAt!, b.finishedAt!, "d was reaped after b")
        let big = try XCTUnwrap(b.resources).peakRSSBytes
        XCTAssertGreaterThanOrEqual(big, 200 * 1024 * 1024)
        XCTAssertLessThan(big, 300 * 1024 * 1024)
        // A measure over all of the driver's children (RUSAGE_CHILDREN) would give d b's peak here.
        XCTAssertLessThan(try XCTUnwrap(d.resources).peakRSSBytes, 20_000_000)
        XCTAssertLessThan(try XCTUnwrap(try latest(p, "a").resources).peakRSSBytes, 20_000_000)
    }

    func testCPUTimeCountsBusyTimeButNotSleep() throws {
        let p = try TestProject()
        // b burns one second of its own CPU time (python starts in about 0.1 s); d sleeps one second beside it.
        try p.writeStage("b", running: #"python3 -c $'import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass'"#)
        try p.writeStage("d", running: "sleep 1")
        try p.run { $0.jobs = 2 }
        let busy = try XCTUnwrap(try latest(p, "b").resources)
        XCTAssertGreaterThanOrEqual(busy.cpuSeconds, 1.0)
        XCTAssertLessThan(busy.cpuSeconds, 1.5)
        XCTAssertGreaterThanOrEqual(busy.wallSeconds, busy.cpuSeconds - 0.01, "one thread cannot use more CPU than wall time")
        let sleeper = try XCTUnwrap(try latest(p, "d").resources)
        XCTAssertGreaterThanOrEqual(sleeper.wallSeconds, 1.0)
        XCTAssertLessThan(sleeper.wallSeconds, 3.0)
        XCTAssertLessThan(sleeper.cpuSeconds, 0.2, "sleeping costs no CPU, and b's CPU is not d's")
    }

    func testFailedAndKilledRunsRecordWhatTheirChildUsed() throws {
        let p = try TestProject()
        setenv("FAIL_STAGE", "b", 1)
        XCTAssertThrowsError(try p.run())
        let failed = try latest(p, "b")
        XCTAssertEqual(failed.status, RunRecord.failed)
        XCTAssertTrue(failed.error!.hasPrefix("exit 3"), failed.error!)
        XCTAssertGreaterThan(try XCTUnwrap(failed.resources).wallSeconds, 0)
        XCTAssertGreaterThan(try XCTUnwrap(failed.resources).peakRSSBytes, 1_000_000)

        unsetenv("FAIL_STAGE")
        setenv("CRASH_STAGE", "b", 1)
        XCTAssertThrowsError(try p.run())
        let killed = try latest(p, "b")
        XCTAssertNotEqual(killed.id, failed.id)
        XCTAssertTrue(killed.error!.hasPrefix("killed by signal 9"), killed.error!)
        XCTAssertGreaterThan(try XCTUnwrap(killed.resources).wallSeconds, 0)
        XCTAssertGreaterThan(try XCTUnwrap(killed.resources).peakRSSBytes, 1_000_000)
    }

    func testAStageThatCannotStartRecordsNoResources() throws {
        let p = try TestProject()
        chmod(p.root.appendingPathComponent("a.sh").path, 0o644)
        XCTAssertThrowsError(try p.run())
        let a = try latest(p, "a")
        XCTAssertEqual(a.status, RunRecord.failed)
        XCTAssertTrue(a.error!.hasPrefix("exit 127: cannot start \(p.root.path)/./a.sh: Permission denied"), a.error!)
        XCTAssertNil(a.resources, "no child ran")
        let (status, output) = try p.command(["runs"])
        XCTAssertEqual(status, 0)
        let row = output.split(separator: "\n")[1].split(separator: " ", omittingEmptySubsequences: true)
        XCTAssertEqual(Array(row[1...5]), ["a", "failed", "-", "-", "-"], output)
    }

    func testAMissingLauncherIsNamedBeforeAnyStageRunsButANoOpRunNeedsNone() throws {
        let p = try TestProject()
        let bin = p.root.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        var options = RunOptions()
        options.build = false
        func pipeline() throws -> Pipeline {
            try Pipeline(pipelineFile: p.pipelineFile, artifacts: p.artifacts, binDirectory: bin, log: { _ in })
        }
        XCTAssertThrowsError(try pipeline().run(options)) { e in
            XCTAssertEqual("\(e)", "\(bin.path)/stage-launcher is missing; stages run through it so that each records its own "
                           + "CPU time and peak memory (build it with `swift build --product stage-launcher`)")
        }
        XCTAssertEqual(p.executed(), [])
        XCTAssertEqual(try p.manifest().allRuns().count, 0, "no run is recorded")
        try p.run()
        XCTAssertEqual(try pipeline().run(options), [], "everything is fresh, so nothing needs the launcher")
    }

    func testRunsListsRecentRunsNewestFirstWithWhatTheyUsed() throws {
        let p = try TestProject()
        try p.writePipeline(dMatrix: [1, 2])
        try p.run()
        let records = try p.manifest().allRuns()
        XCTAssertEqual(records.count, 6)

        let (status, output) = try p.command(["runs"])
        XCTAssertEqual(status, 0)
        let lines = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 7, output)
        XCTAssertEqual(lines[0].split(separator: " ", omittingEmptySubsequences: true),
                       ["RUN", "NODE", "STATUS", "WALL", "CPU", "PEAK", "RSS", "STARTED"])
        let rows = lines.dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        // One job at a time, in dependency order, so the newest started is the last stage.
        XCTAssertEqual(rows.map { $0[1] }, ["e", "d@k=2", "d@k=1", "c", "b", "a"])
        let formatter = ISO8601DateFormatter()
        for row in rows {
            let record = try XCTUnwrap(records.first { String($0.id!) == row[0] }, row.joined(separator: " "))
            let used = try XCTUnwrap(record.resources)
            XCTAssertEqual(row, [String(record.id!), record.node, "ok", RunResources.duration(used.wallSeconds),
                                 RunResources.duration(used.cpuSeconds)]
                           + RunResources.size(used.peakRSSBytes).split(separator: " ").map(String.init)
                           + [formatter.string(from: Date(timeIntervalSince1970: record.startedAt))])
        }

        func nodes(_ arguments: [String]) throws -> [String] {
            let (status, output) = try p.command(["runs"] + arguments)
            XCTAssertEqual(status, 0, output)
            return output.split(separator: "\n").dropFirst().map { String($0.split(separator: " ", omittingEmptySubsequences: true)[1]) }
        }
        XCTAssertEqual(try nodes(["--limit", "2"]), ["e", "d@k=2"])
        XCTAssertEqual(try nodes(["--node", "d"]), ["d@k=2", "d@k=1"], "a stage name keeps every sweep point")
        XCTAssertEqual(try nodes(["--node", "d@k=1"]), ["d@k=1"])
        XCTAssertEqual(try nodes(["--node", "*@k=2"]), ["d@k=2"], "a glob")
        XCTAssertEqual(try p.command(["runs", "--node", "zz"]).output, "no recorded runs match 'zz'\n")
        XCTAssertNotEqual(try p.command(["runs", "--limit", "0"]).status, 0)
    }

    func testStatusAndLineageShowWhatTheProducingRunUsed() throws {
        let p = try TestProject()
        try p.run()
        let (status, output) = try p.command(["status"])
        XCTAssertEqual(status, 0)
        let lines = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5)
        for (node, line) in zip(["a", "b", "c", "d", "e"], lines) {
            let run = try latest(p, node)
            XCTAssertEqual(line, "\(node)  fresh  (run \(run.id!), \(try XCTUnwrap(run.resources).summary))")
        }
        let lineage = try p.pipeline().lineage(of: "e")
        for node in ["a", "b", "c", "d", "e"] {
            let run = try latest(p, node)
            XCTAssertTrue(lineage.contains("code \(run.codeFingerprint.prefix(12)), \(run.resources!.summary))"),
                          "no resources of \(node) in:\n\(lineage)")
        }
    }

    func testSummaryIsCompactWithDecimalMegabytes() {
        XCTAssertEqual(RunResources(wallSeconds: 12.34, cpuSeconds: 20.06, peakRSSBytes: 812_400_000).summary,
                       "wall 12.3s cpu 20.1s rss 812 MB")
        XCTAssertEqual(RunResources.duration(0.043), "0.04s")
        XCTAssertEqual(RunResources.duration(247.9), "4m07s")
        XCTAssertEqual(RunResources.duration(7530), "2h05m")
        XCTAssertEqual(RunResources.size(3_640_000), "3.6 MB")
        XCTAssertEqual(RunResources.size(209_715_200), "210 MB")
        XCTAssertEqual(RunResources.size(12_400_000_000), "12.4 GB")
    }
}

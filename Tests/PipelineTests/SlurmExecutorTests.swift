import Foundation
import Lineage
import PipelineDriver
import Shards
import XCTest

/// The single-node Slurm cluster of `scripts/slurm-local.sh`, started (and installed, when missing) once
/// per test process.
enum LocalSlurm {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Nil once the cluster takes jobs; otherwise what `slurm-local.sh start` said.
    static let problem: String? = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", repositoryRoot.appendingPathComponent("scripts/slurm-local.sh").path, "start"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return "cannot run scripts/slurm-local.sh: \(error)" }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            return "scripts/slurm-local.sh start exited \(process.terminationStatus): \(text.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        if SlurmClient.which("sbatch") == nil { return "sbatch is not on PATH after scripts/slurm-local.sh start" }
        return nil
    }()

    struct Unavailable: Error, CustomStringConvertible {
        let description: String
    }

    /// Throws (failing the test, never skipping it) unless the cluster is up.
    static func require() throws {
        if let problem { throw Unavailable(description: "the local Slurm cluster cannot be started: \(problem)") }
    }

    /// Polls `condition` every 50 ms for up to `seconds`.
    static func wait(_ seconds: Double, for condition: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }
}

/// `pipeline run --executor slurm` against a real (single-node) Slurm: the same results as the local
/// executor, cancelled jobs are failed runs, a restarted driver re-attaches to its jobs, and a stopped one
/// cancels them.
final class SlurmExecutorTests: XCTestCase {
    override func setUpWithError() throws {
        try LocalSlurm.require()
    }

    override func tearDown() {
        unsetenv("SLOW_STAGE")
    }

    var slurmOptions: SlurmOptions {
        var options = SlurmOptions()
        options.maxPollInterval = 0.5
        return options
    }

    func pipeline(_ p: TestProject, log: @escaping (String) -> Void = { _ in }) throws -> Pipeline {
        try Pipeline(pipelineFile: p.pipelineFile, artifacts: p.artifacts, log: log)
    }

    /// Runs the driver with the Slurm executor on another thread; `finished` is signalled when it returns.
    final class BackgroundRun: @unchecked Sendable {
        let finished = DispatchSemaphore(value: 0)
        var error: Error?
        var ran: [String] = []
        private let lock = NSLock()
        private var lines: [String] = []

        var log: [String] {
            lock.lock()
            defer { lock.unlock() }
            return lines
        }

        func append(_ line: String) {
            lock.lock()
            lines.append(line)
            lock.unlock()
        }
    }

    func startInBackground(_ p: TestProject, configure: @escaping (inout RunOptions) -> Void = { _ in }) throws -> BackgroundRun {
        let background = BackgroundRun()
        let pipeline = try self.pipeline(p, log: background.append)
        var options = RunOptions()
        options.build = false
        options.slurm = slurmOptions
        configure(&options)
        let run = options
        Thread.detachNewThread {
            do { background.ran = try pipeline.run(run) } catch { background.error = error }
            background.finished.signal()
        }
        return background
    }

    func runOnSlurm(_ p: TestProject, log: @escaping (String) -> Void = { _ in }) throws -> [String] {
        var options = RunOptions()
        options.build = false
        options.slurm = slurmOptions
        return try pipeline(p, log: log).run(options)
    }

    /// `pipeline run --executor slurm --no-build` on `p` as a separate process (not started), its stages each
    /// taking `slowStage` seconds and the queue polled every 0.5 s.
    func slurmDriver(_ p: TestProject, slowStage: String) -> Process {
        let driver = Process()
        driver.executableURL = TestProject.binary
        driver.arguments = ["run", "--executor", "slurm", "--no-build"]
        driver.currentDirectoryURL = p.root
        driver.environment = ProcessInfo.processInfo.environment.merging(["SLOW_STAGE": slowStage, "PIPELINE_SLURM_POLL": "0.5"]) { _, new in new }
        return driver
    }

    /// `squeue -h --states=all ARGS`, trimmed.
    func squeue(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = try XCTUnwrap(SlurmClient.which("squeue"))
        process.arguments = ["-h", "--states=all"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func scancel(_ job: String) throws {
        let process = Process()
        process.executableURL = try XCTUnwrap(SlurmClient.which("scancel"))
        process.arguments = [job]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "scancel \(job)")
    }

    // MARK: the same results as the local executor

    /// The end-to-end pipeline of real stages (ingest, pairs, synthesis, a QD-DETR sweep of two seeds as a
    /// job array, TD-DETR data-parallel on 2 MPI ranks, mask-eval per checkpoint, report) at a tiny size.
    func writeRealPipeline(_ root: URL) throws {
        let train = #""hidden": 16, "heads": 2, "ffn": 32, "t2v_layers": 1, "enc_layers": 1, "dec_layers": 1, "queries": 5, "epochs": 2, "batch_size": 8, "lr": 0.001, "threads": 1"#
        let data = #""train_videos": "ingest/train.videos.tshard", "train_queries": "ingest/train.queries.tshard", "val_videos": "ingest/val.videos.tshard", "val_queries": "ingest/val.queries.tshard""#
        let eval = #""videos": ["ingest/val.videos.tshard", "ingest/shifted.videos.tshard"], "queries": ["ingest/val.queries.tshard", "ingest/shifted.queries.tshard"]"#
        let text = """
            {"version": 1, "stages": {
              "ingest": {"uses": "stages/synthetic-benchmark.json",
                         "params": {"train_videos": 24, "val_videos": 8, "shifted_videos": 8, "video_dim": 12, "text_dim": 8, "max_clips": 20}},
              "pairs": {"uses": "stages/pair-mining.json", "inputs": {"videos": "ingest/train.videos.tshard"}, "params": {"k": 2, "batch_size": 8},
                        "resources": {"cpus": 1, "mem": "512M", "time": "00:10:00"}},
              "synthesis": {"uses": "stages/video-synthesis.json",
                            "inputs": {"videos": "ingest/train.videos.tshard", "queries": "ingest/train.queries.tshard", "pairs": "pairs/pairs.tshard"}},
              "train_qd": {"uses": "stages/train.json", "params": {"model": "qd-detr", \(train)}, "inputs": {\(data)}, "matrix": {"seed": [1, 2]}},
              "train_td": {"uses": "stages/train.json", "params": {"model": "td-detr", "ranks": 2, \(train)},
                           "inputs": {\(data), "synth_videos": "synthesis/synthesized.videos.tshard", "synth_queries": "synthesis/synthesized.queries.tshard"}},
              "eval_qd": {"uses": "stages/mask-eval.json", "foreach": "train_qd", "inputs": {"checkpoint": "train_qd/checkpoint.tshard", \(eval)}, "params": {"threads": 1}},
              "eval_td": {"uses": "stages/mask-eval.json", "inputs": {"checkpoint": "train_td/checkpoint.tshard", \(eval)}, "params": {"threads": 1}},
              "report": {"uses": "stages/report.json",
                         "inputs": {"summaries": ["eval_qd/summary.json", "eval_td/summary.json"], "logs": ["train_qd/log.jsonl", "train_td/log.jsonl"]}}
            }}
            """
        try text.write(to: root.appendingPathComponent("pipeline.json"), atomically: true, encoding: .utf8)
    }

    /// Outputs that hold wall-clock or memory figures of the run that made them (so no two runs agree on
    /// their bytes, on any executor): train's per-epoch log, mask-eval's summary, and the report that
    /// tabulates both.
    static let measuring: Set<String> = ["log.jsonl", "summary.json", "report.md", "report.html"]

    /// A JSON or JSON-lines file without its time and memory figures, as canonical JSON lines.
    static func withoutMeasurements(_ url: URL) throws -> [String] {
        let measured: Set<String> = ["seconds", "train_seconds", "wall_seconds", "cpu_seconds", "peak_rss_bytes", "resources"]
        func strip(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(let fields): return .object(fields.filter { !measured.contains($0.key) }.mapValues(strip))
            case .array(let items): return .array(items.map(strip))
            default: return value
            }
        }
        let text = try String(contentsOf: url, encoding: .utf8)
        if url.pathExtension == "jsonl" {
            return try text.split(separator: "\n").map { try strip(JSONValue.parse(String($0), source: url.path)).canonical }
        }
        return [strip(try JSONValue.parse(text, source: url.path)).canonical]
    }

    func testTheEndToEndPipelineThroughSlurmGivesTheLocalExecutorsContentHashes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-end-to-end-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        for link in ["stages", "Sources"] {
            try FileManager.default.createSymbolicLink(at: root.appendingPathComponent(link),
                                                       withDestinationURL: LocalSlurm.repositoryRoot.appendingPathComponent(link))
        }
        try writeRealPipeline(root)
        let file = root.appendingPathComponent("pipeline.json")
        func open(_ artifacts: String) throws -> Pipeline {
            try Pipeline(pipelineFile: file, artifacts: root.appendingPathComponent(artifacts), binDirectory: TestProject.binary.deletingLastPathComponent(),
                         log: { _ in })
        }
        var options = RunOptions()
        options.build = false
        let local = try open("local")
        XCTAssertEqual(try local.run(options).count, 10)

        options.slurm = slurmOptions
        let cluster = try open("cluster")
        XCTAssertEqual(try cluster.run(options).count, 10)

        let localStatus = Dictionary(uniqueKeysWithValues: try local.status().map { ($0.node, $0) })
        let clusterStatus = try cluster.status()
        XCTAssertEqual(clusterStatus.count, 10)
        var compared = 0
        for e in clusterStatus {
            XCTAssertNotNil(e.stateRunID, "\(e.node) is fresh after the Slurm run")
            let mine = try XCTUnwrap(localStatus[e.node], e.node)
            if e.node != "report" {
                // The report's inputs include the measuring files, so its cache key differs as they do.
                XCTAssertEqual(e.cacheKey, mine.cacheKey, "\(e.node): the same inputs, params and code")
            }
            XCTAssertEqual(Set(e.outputs.keys), Set(mine.outputs.keys), e.node)
            for (file, ref) in e.outputs {
                let theirs = try XCTUnwrap(mine.outputs[file])
                if Self.measuring.contains(file) {
                    // Wall times and memory differ from run to run on any executor: the rest must agree.
                    if file.hasPrefix("report.") { continue }
                    let a = try Self.withoutMeasurements(root.appendingPathComponent("cluster/stages/\(ArtifactStore.safeName(e.node))/\(file)"))
                    let b = try Self.withoutMeasurements(root.appendingPathComponent("local/stages/\(ArtifactStore.safeName(e.node))/\(file)"))
                    XCTAssertEqual(a, b, "\(e.node)/\(file) apart from its time and memory figures")
                } else {
                    XCTAssertEqual(ref.hash, theirs.hash, "\(e.node)/\(file): the same content hash as the local executor's")
                }
                compared += 1
            }
        }
        XCTAssertGreaterThanOrEqual(compared, 30)
        let manifest = try Manifest(url: root.appendingPathComponent("cluster/manifest.sqlite"))
        let runs = try manifest.allRuns()
        XCTAssertEqual(runs.count, 10)
        for run in runs {
            let job = try XCTUnwrap(run.slurmJobID, "\(run.node) ran as a Slurm job")
            XCTAssertEqual(run.logPath, "logs/slurm/\(job).log")
            XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("cluster/\(run.logPath!)").path))
            XCTAssertNotNil(run.resources, "\(run.node): the launcher's report came back from the job")
        }
        // The two seeds of the sweep are tasks 0 and 1 of one job array, and so are their evaluations.
        for stage in ["train_qd", "eval_qd"] {
            let jobs = runs.filter { $0.stage == stage }.compactMap(\.slurmJobID).sorted()
            XCTAssertEqual(jobs.count, 2, stage)
            let arrays = Set(jobs.map { $0.split(separator: "_").first.map(String.init) ?? "" })
            XCTAssertEqual(arrays.count, 1, "\(stage): \(jobs)")
            XCTAssertEqual(jobs.map { $0.split(separator: "_").last.map(String.init) ?? "" }, ["0", "1"], "\(stage): \(jobs)")
        }
        // pairs asked for its stage's resources (the controller still holds the finished job).
        let pairs = try XCTUnwrap(runs.first { $0.node == "pairs" }?.slurmJobID)
        XCTAssertEqual(try squeue(["-j", pairs, "-o", "%l|%m|%C"]), "10:00|512M|1", "time limit, memory and CPUs of pairs' job")

        // train_td ran on 2 ranks: under mpirun locally, as a 2-task srun step of a 2-task job on Slurm.
        let trainTD = try XCTUnwrap(runs.first { $0.node == "train_td" })
        let clusterLog = try String(contentsOf: root.appendingPathComponent("cluster/\(try XCTUnwrap(trainTD.logPath))"), encoding: .utf8)
        let localLog = try String(contentsOf: root.appendingPathComponent("local/logs/train_td.log"), encoding: .utf8)
        XCTAssertTrue(clusterLog.contains("x 2 MPI ranks"), clusterLog)
        XCTAssertTrue(localLog.contains("x 2 MPI ranks"), localLog)
        XCTAssertEqual(try squeue(["-j", try XCTUnwrap(trainTD.slurmJobID), "-o", "%D|%C"]), "1|2", "nodes and CPUs of train_td's job")

        XCTAssertEqual(try manifest.submissions(), [], "every job was collected")
        let jobsLeft = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("cluster/jobs").path)
        XCTAssertEqual(jobsLeft, [], "job directories go once nothing reads them")
        XCTAssertEqual(try cluster.run(options), [], "a second run through Slurm is a no-op")
    }

    // MARK: failures

    func testAJobCancelledWithScancelIsAFailedRunAndTheNextRunCompletesIt() throws {
        let p = try TestProject()
        try p.writeStage("b", running: "sleep 60")
        let background = try startInBackground(p)
        let manifest = try p.manifest()
        var job: String?
        let running = try LocalSlurm.wait(60) {
            job = try manifest.submissions().first { $0.node == "b" }?.jobID
            // Running in Slurm's eyes, and the stage's script has started.
            guard let job, p.executed().contains("b") else { return false }
            return SlurmClient().states(of: [job])?[job]?.state == "RUNNING"
        }
        XCTAssertTrue(running, "b's job never started")
        let cancelled = try XCTUnwrap(job)
        try scancel(cancelled)
        XCTAssertEqual(background.finished.wait(timeout: .now() + 60), .success, "the driver did not finish")
        XCTAssertTrue("\(background.error.map { "\($0)" } ?? "no error")".contains("stage b failed"), "\(String(describing: background.error))")

        let failed = try XCTUnwrap(try manifest.latestRun(node: "b", succeededOnly: false))
        XCTAssertEqual(failed.status, RunRecord.failed)
        XCTAssertEqual(failed.slurmJobID, cancelled)
        let error = try XCTUnwrap(failed.error)
        XCTAssertTrue(error.hasPrefix("slurm job \(cancelled) CANCELLED"), error)
        XCTAssertTrue(error.contains("*** JOB \(cancelled) ON ") && error.contains(" CANCELLED AT "), "Slurm's own line from the job's log: \(error)")
        XCTAssertTrue(error.contains("(log: \(p.artifacts.path)/logs/slurm/\(cancelled).log)"), error)
        let b = try p.pipeline().status().first { $0.node == "b" }!
        XCTAssertEqual(b.state, .stale(reason: "last run failed: \(error)"))
        XCTAssertEqual(p.executed().sorted(), ["a", "b", "d"], "c and e waited for b and never ran")
        XCTAssertNil(try manifest.latestRun(node: "c", succeededOnly: false), "a job that never started is no run")
        XCTAssertEqual(try manifest.submissions(), [], "the cancelled dependents were collected too")

        try p.writeStage("b", running: "true")
        try? FileManager.default.removeItem(at: p.runLog)
        let ran = try runOnSlurm(p)
        XCTAssertEqual(ran.sorted(), ["b", "c", "e"], "the next run completes what the cancelled job stopped")
        XCTAssertEqual(p.executed().sorted(), ["b", "c", "e"])
        XCTAssertTrue(try p.output("e").contains("b done"))
        XCTAssertTrue(try p.pipeline().status().allSatisfy { $0.stateRunID != nil })
    }

    // MARK: the driver's life

    func testADriverSIGKILLedMidDAGReattachesToItsJobsWithoutSubmittingAnyTwice() throws {
        let p = try TestProject()
        let driver = slurmDriver(p, slowStage: "2")
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        let manifest = try p.manifest()
        // Mid-DAG: a has been collected, the four others are queued or running.
        let midway = try LocalSlurm.wait(60) {
            try manifest.latestRun(node: "a", succeededOnly: true) != nil
                && manifest.submissions().filter { $0.jobID != nil }.count == 4
        }
        XCTAssertTrue(midway, "the driver never got past a")

        let status = try p.command(["status"])
        XCTAssertEqual(status.status, 0)
        let lines = status.output.split(separator: "\n").map(String.init)
        for node in ["b", "c", "d", "e"] {
            let line = try XCTUnwrap(lines.first { $0.hasPrefix("\(node) ") }, status.output)
            XCTAssertTrue(line.contains("queued") || line.contains("running"), line)
            XCTAssertTrue(line.contains("slurm job "), line)
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("c ") && $0.contains("queued") && $0.contains("(Dependency)") }, status.output)

        kill(driver.processIdentifier, SIGKILL)
        driver.waitUntilExit()
        let submitted = Set(try manifest.submissions().compactMap(\.jobID))
        XCTAssertEqual(submitted.count, 4)
        // While no driver watches, b's job ends; c's starts from b's output directory.
        let b = try XCTUnwrap(try manifest.submissions().first { $0.node == "b" }?.jobID)
        XCTAssertTrue(LocalSlurm.wait(30) { SlurmClient().states(of: [b])?[b]?.hasEnded == true }, "b's job never ended")

        var log: [String] = []
        let ran = try runOnSlurm(p) { log.append($0) }
        XCTAssertEqual(ran.sorted(), ["b", "c", "d", "e"])
        XCTAssertFalse(log.contains { $0.hasPrefix("submitted") }, "nothing submitted again: \(log)")
        XCTAssertEqual(log.filter { $0.hasPrefix("attached") }.count, 4, "\(log)")
        XCTAssertEqual(p.executed().sorted(), ["a", "b", "c", "d", "e"], "every stage ran exactly once")
        let runs = try manifest.allRuns()
        XCTAssertEqual(runs.count, 5)
        XCTAssertTrue(runs.allSatisfy { $0.status == RunRecord.succeeded })
        XCTAssertEqual(Set(runs.filter { $0.node != "a" }.compactMap(\.slurmJobID)), submitted,
                       "the restarted driver recorded the first driver's jobs")
        XCTAssertEqual(try manifest.submissions(), [])
    }

    func testSIGTERMCancelsTheDriversJobs() throws {
        let p = try TestProject()
        let driver = slurmDriver(p, slowStage: "30")
        let errors = Pipe()
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = errors
        try driver.run()
        let manifest = try p.manifest()
        var jobs: [String] = []
        let queued = try LocalSlurm.wait(60) {
            jobs = try manifest.submissions().compactMap(\.jobID)
            return jobs.count == 5
        }
        XCTAssertTrue(queued, "the driver never queued the five jobs")
        kill(driver.processIdentifier, SIGTERM)
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        driver.waitUntilExit()
        XCTAssertEqual(driver.terminationStatus, 1)
        XCTAssertTrue(text.contains("stopped by SIGTERM: cancelled 5 Slurm job(s)"), text)
        let states = try XCTUnwrap(SlurmClient().states(of: jobs))
        for job in jobs {
            XCTAssertEqual(states[job]?.state, "CANCELLED", "job \(job): \(String(describing: states[job]))")
        }
        XCTAssertEqual(try manifest.submissions(), [])
        XCTAssertEqual(try manifest.allRuns().count, 0)
    }
}

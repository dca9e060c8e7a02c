import Foundation
import Lineage
import PipelineDriver
import XCTest

final class PipelineCachingTests: XCTestCase {
    override func tearDown() {
        unsetenv("FAIL_STAGE")
        unsetenv("CRASH_STAGE")
        unsetenv("SLOW_STAGE")
    }

    func testUnchangedPipelineRerunsNothing() throws {
        let p = try TestProject()
        XCTAssertEqual(try p.run().sorted(), ["a", "b", "c", "d", "e"])
        XCTAssertEqual(try p.run(), [])
        XCTAssertTrue(try p.output("e").contains("params {\"title\":\"report\"}"))
    }

    func testParamChangeRerunsTheStageAndOnlyItsDownstream() throws {
        let p = try TestProject()
        try p.run()
        try p.writePipeline(params: ["b": "\"alpha\": 0.3"])
        XCTAssertEqual(try p.run(), ["b", "c", "e"])
        XCTAssertTrue(try p.output("b").contains("\"alpha\":0.3"))
        let status = try p.pipeline().status()
        XCTAssertTrue(status.allSatisfy { if case .fresh = $0.state { return true } else { return false } })
    }

    func testUpstreamChangeRerunsEverythingAfterIt() throws {
        let p = try TestProject()
        try p.run()
        try p.writePipeline(params: ["a": "\"seed\": 2"])
        XCTAssertEqual(try p.run().sorted(), ["a", "b", "c", "d", "e"])
    }

    func testGoingBackToAnEarlierValueReusesTheCachedRuns() throws {
        let p = try TestProject()
        try p.run()
        let first = try p.output("e")
        try p.writePipeline(params: ["b": "\"alpha\": 0.3"])
        try p.run()
        try p.writePipeline(params: ["b": "\"alpha\": 0.5"])
        XCTAssertEqual(try p.run(), [], "every run for alpha 0.5 is in the run cache")
        XCTAssertEqual(try p.output("e"), first, "the workspace links point at the cached results again")
    }

    func testStatusNamesTheChangedParam() throws {
        let p = try TestProject()
        try p.run()
        try p.writePipeline(params: ["b": "\"alpha\": 0.25"])
        let rows = try p.pipeline().status()
        let b = rows.first { $0.node == "b" }!
        XCTAssertEqual(b.state, .stale(reason: "params.alpha changed 0.5 -> 0.25"))
        XCTAssertEqual(rows.first { $0.node == "c" }!.state, .waiting(upstream: "b"))
        XCTAssertEqual(rows.first { $0.node == "d" }!.state, .fresh(runID: rows.first { $0.node == "d" }!.stateRunID!))
    }

    func testCodeChangeRerunsTheStageButARebuildOfTheSameCodeDoesNot() throws {
        let p = try TestProject()
        try p.run()
        // Same bytes, new mtime (what a rebuild or a checkout does): nothing reruns.
        let b = p.root.appendingPathComponent("b.sh")
        let text = try String(contentsOf: b, encoding: .utf8)
        try text.write(to: b, atomically: false, encoding: .utf8)
        XCTAssertEqual(try p.run(), [])
        // Different code: b reruns; its output is byte-identical, so nothing downstream needs to.
        try (text + "\n# a comment changes the code\n").write(to: b, atomically: false, encoding: .utf8)
        let status = try p.pipeline().status()
        XCTAssertEqual(status.first { $0.node == "b" }!.state, .stale(reason: "code changed (./b.sh)"))
        XCTAssertEqual(try p.run(), ["b"])
    }

    func testSIGKILLedStageLeavesNoOutputAndIsRedoneAlone() throws {
        let p = try TestProject()
        try p.run()
        let objects = p.objectCount()
        try p.writePipeline(params: ["e": "\"title\": \"second\""])
        setenv("CRASH_STAGE", "e", 1)
        XCTAssertThrowsError(try p.run()) { error in XCTAssertTrue("\(error)".contains("stage e failed"), "\(error)") }
        XCTAssertEqual(p.objectCount(), objects, "a killed stage adds nothing to the store")
        XCTAssertFalse(FileManager.default.fileExists(atPath: p.artifacts.appendingPathComponent("tmp").path + "/e.\(getpid())"))
        let e = try p.pipeline().status().first { $0.node == "e" }!
        guard case .stale(let reason) = e.state else { return XCTFail("e should be stale") }
        XCTAssertTrue(reason.contains("killed by signal 9"), reason)
        unsetenv("CRASH_STAGE")
        XCTAssertEqual(try p.run(), ["e"])
        XCTAssertTrue(try p.output("e").contains("second"))
    }

    func testFailingStageKeepsEarlierResultsAndStatusSaysWhy() throws {
        let p = try TestProject()
        try p.run()
        let before = try p.output("b")
        try p.writePipeline(params: ["b": "\"alpha\": 0.9"])
        setenv("FAIL_STAGE", "b", 1)
        XCTAssertThrowsError(try p.run()) { error in XCTAssertTrue("\(error)".contains("stage b failed"), "\(error)") }
        XCTAssertEqual(p.executed(), ["b"], "nothing downstream of a failed stage runs")
        XCTAssertEqual(try p.output("b"), before, "the earlier result stays in place")
        let b = try p.pipeline().status().first { $0.node == "b" }!
        XCTAssertEqual(b.state, .stale(reason: "last run failed: exit 3: stage b: refusing on purpose (log: \(p.artifacts.path)/logs/b.log)"))
    }

    func testSweepPointsAreSeparateCachedRuns() throws {
        let p = try TestProject()
        try p.writePipeline(dMatrix: [1, 2])
        XCTAssertEqual(try p.run().sorted(), ["a", "b", "c", "d", "d", "e"])
        let nodes = try p.pipeline().plan.nodes.map(\.id)
        XCTAssertEqual(nodes, ["a", "b", "c", "d@k=1", "d@k=2", "e"])
        XCTAssertTrue(try p.output("e").contains("\"k\":2"), "e gathers every sweep point")
        try p.writePipeline(dMatrix: [1, 2, 3])
        XCTAssertEqual(try p.run(), ["d", "e"], "adding a value runs only the new point and the gatherer")
    }

    func testDryRunOnlyAndForce() throws {
        let p = try TestProject()
        XCTAssertEqual(try p.run { $0.dryRun = true }, [])
        try p.run { $0.only = ["a"] }
        XCTAssertEqual(p.executed(), ["a"])
        XCTAssertThrowsError(try p.run { $0.only = ["c"] }) { e in
            XCTAssertTrue("\(e)".contains("not available"), "\(e)")
        }
        try p.run()
        XCTAssertEqual(try p.run { $0.force = ["d"] }, ["d"])
    }

    func testLineageOfTheFinalArtifactReachesTheFirstStage() throws {
        let p = try TestProject()
        try p.run()
        let text = try p.pipeline().lineage(of: p.artifacts.appendingPathComponent("stages/e/out.txt").path)
        for stage in ["<- e (run", "<- c (run", "<- b (run", "<- d (run", "<- a (run"] {
            XCTAssertTrue(text.contains(stage), "missing \(stage) in:\n\(text)")
        }
        XCTAssertTrue(text.contains("params {\"seed\":1}"), text)
        XCTAssertTrue(try p.pipeline().lineage(of: "e").contains("<- a (run"))
    }

    func testGCRemovesWhatNoRunReferences() throws {
        let p = try TestProject()
        try p.run()
        try p.writePipeline(params: ["a": "\"seed\": 7"])
        try p.run()
        let before = p.objectCount()
        _ = try p.pipeline().gc(workspace: false, dryRun: false)
        XCTAssertEqual(p.objectCount(), before, "plain gc keeps the run cache")
        _ = try p.pipeline().gc(workspace: true, dryRun: false)
        XCTAssertLessThan(p.objectCount(), before)
        XCTAssertEqual(try p.run(), [], "current results survive gc")
    }
}

extension NodeEvaluation {
    var stateRunID: Int64? { if case .fresh(let id) = state { return id } else { return nil } }
}

final class PipelineSpecValidationTests: XCTestCase {
    func assertRejected(_ pipeline: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try TestProject()
        try p.write("pipeline.json", pipeline)
        XCTAssertThrowsError(try p.pipeline(), file: file, line: line) { e in
            XCTAssertEqual("\(e)", expected, file: file, line: line)
        }
    }

    func testUnknownKeyIsNamed() throws {
        try assertRejected(#"{"version": 1, "stages": {"a": {"uses": "stages/a.json", "parms": {}}}}"#,
                           "pipeline.json: stages.a.parms: unknown key (expected foreach, inputs, matrix, params, resources, uses)")
    }

    func testCycleIsNamed() throws {
        try assertRejected(#"""
            {"version": 1, "stages": {
              "b": {"uses": "stages/b.json", "inputs": {"src": "c/out.txt"}},
              "c": {"uses": "stages/c.json", "inputs": {"src": "b/out.txt"}}}}
            """#, "pipeline.json: stages: cycle: b -> c -> b")
    }

    func testMissingInputIsNamed() throws {
        try assertRejected(#"{"version": 1, "stages": {"b": {"uses": "stages/b.json"}}}"#,
                           "pipeline.json: stages.b.inputs: missing input 'src' (a's output)")
        try assertRejected(#"""
            {"version": 1, "stages": {"a": {"uses": "stages/a.json"},
             "b": {"uses": "stages/b.json", "inputs": {"src": "a/nope.txt"}}}}
            """#, "pipeline.json: stages.b.inputs.src: 'a/nope.txt' is not an output of stage 'a' (it writes: out.txt)")
    }

    func testParamOfTheWrongTypeOrUnknownIsNamed() throws {
        try assertRejected(#"{"version": 1, "stages": {"a": {"uses": "stages/a.json", "params": {"seed": "one"}}}}"#,
                           "pipeline.json: stages.a.params.seed: expected integer, got string \"one\"")
        try assertRejected(#"{"version": 1, "stages": {"a": {"uses": "stages/a.json", "params": {"seed": 1.5}}}}"#,
                           "pipeline.json: stages.a.params.seed: expected integer, got number 1.5")
        try assertRejected(#"{"version": 1, "stages": {"a": {"uses": "stages/a.json", "params": {"sed": 1}}}}"#,
                           "pipeline.json: stages.a.params.sed: unknown param (stages/a.json declares: seed)")
        try assertRejected(#"""
            {"version": 1, "stages": {"a": {"uses": "stages/a.json"},
             "b": {"uses": "stages/b.json", "inputs": {"src": "a/out.txt"}, "params": {"alpha": 2}}}}
            """#, "pipeline.json: stages.b.params.alpha: 2 is above the maximum 1")
    }

    func testResourcesOfAStageAreCheckedAndNamed() throws {
        func stage(_ resources: String) -> String {
            #"{"version": 1, "stages": {"a": {"uses": "stages/a.json", "resources": "# + resources + "}}}"
        }
        try assertRejected(stage(#"{"cpu": 2}"#), "pipeline.json: stages.a.resources.cpu: unknown key (expected cpus, mem, partition, time)")
        try assertRejected(stage(#"{"cpus": 0}"#), "pipeline.json: stages.a.resources.cpus: expected an integer of at least 1, got 0")
        try assertRejected(stage(#"{"mem": "4GB"}"#),
                           "pipeline.json: stages.a.resources.mem: '4GB' is not a memory size (a number of megabytes, or a number with K, M, G or T, e.g. 4G)")
        try assertRejected(stage(#"{"time": "1h"}"#),
                           "pipeline.json: stages.a.resources.time: '1h' is not a time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
        try assertRejected(stage(#"[2]"#),
                           #"pipeline.json: stages.a.resources: must be an object such as {"cpus": 2, "mem": "4G", "time": "01:00:00"}"#)
        let p = try TestProject()
        try p.write("pipeline.json", stage(#"{"cpus": 2, "mem": "4G", "time": "1-00:30", "partition": "gpu"}"#))
        let resources = try XCTUnwrap(try p.pipeline().plan.spec.stages.first?.resources)
        XCTAssertEqual(resources, StageResources(cpus: 2, mem: "4G", time: "1-00:30", partition: "gpu"))
        XCTAssertEqual(StageResources(cpus: 1, time: "10").overridden(by: resources).sbatchArguments,
                       ["--partition=gpu", "--time=1-00:30", "--cpus-per-task=2", "--mem=4G"], "the stage's resources win")
    }
}

/// The real `pipeline` executable, run as a user runs it.
final class PipelineCommandTests: XCTestCase {
    var binary: URL { TestProject.binary }

    func launch(_ args: [String], in dir: URL, env: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = binary
        process.arguments = args + ["--no-build"]
        process.currentDirectoryURL = dir
        process.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func testTwoConcurrentDriversDoNotCorruptTheManifest() throws {
        let p = try TestProject()
        let first = try launch(["run"], in: p.root, env: ["SLOW_STAGE": "0.2"])
        let second = try launch(["run"], in: p.root, env: ["SLOW_STAGE": "0.2"])
        first.waitUntilExit()
        second.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)
        XCTAssertEqual(second.terminationStatus, 0)
        XCTAssertEqual(p.executed().sorted(), ["a", "b", "c", "d", "e"], "the second driver waited, then found everything fresh")
        let manifest = try Manifest(url: p.artifacts.appendingPathComponent("manifest.sqlite"))
        XCTAssertEqual(try manifest.allRuns().count, 5)
        XCTAssertEqual(try p.run(), [])
    }

    /// Runs `pipeline ARGS` in `dir` with `environment` added; exit status and standard error.
    func failing(_ args: [String], in dir: URL, environment: [String: String] = [:]) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = args
        process.currentDirectoryURL = dir
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    func testSlurmWithoutSbatchOrSlurmOptionsWithoutSlurmAreOneLineErrors() throws {
        let p = try TestProject()
        let missing = try failing(["run", "--executor", "slurm", "--no-build"], in: p.root, environment: ["PATH": "/nonexistent"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.errors, "error: --executor slurm needs sbatch on PATH\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: p.artifacts.path), "nothing was started")

        let local = try failing(["run", "--mem", "4G", "--no-build"], in: p.root)
        XCTAssertNotEqual(local.status, 0)
        XCTAssertTrue(local.errors.hasPrefix("Error: --mem needs --executor slurm"), local.errors)
        let badTime = try failing(["run", "--executor", "slurm", "--time-limit", "2 hours", "--no-build"], in: p.root)
        XCTAssertNotEqual(badTime.status, 0)
        XCTAssertTrue(badTime.errors.hasPrefix("Error: --time-limit: '2 hours' is not a time limit"), badTime.errors)
        let unknown = try failing(["run", "--executor", "pbs", "--no-build"], in: p.root)
        XCTAssertTrue(unknown.errors.hasPrefix("Error: --executor must be 'local' or 'slurm', not 'pbs'"), unknown.errors)
    }

    func testBadPipelineFileExitsNonZeroWithOneLine() throws {
        let p = try TestProject()
        try p.write("pipeline.json", #"{"version": 1, "stages": {"a": {"uses": "stages/a.json", "params": {"seed": true}}}}"#)
        let process = Process()
        process.executableURL = binary
        process.arguments = ["status"]
        process.currentDirectoryURL = p.root
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        XCTAssertTrue(text.contains("pipeline.json: stages.a.params.seed: expected integer, got boolean true"), text)
    }
}

final class PipelineStoreIntegrityTests: XCTestCase {
    func testAnEditedStoreObjectIsRedoneAndReplaced() throws {
        let p = try TestProject()
        try p.run()
        let object = p.artifacts.appendingPathComponent("stages/a/out.txt").resolvingSymlinksInPath()
        chmod(object.path, 0o644)
        try "tampered\n".write(to: object, atomically: false, encoding: .utf8)
        let a = try p.pipeline().status().first { $0.node == "a" }!
        XCTAssertEqual(a.state, .stale(reason: "output out.txt was modified in the store"))
        XCTAssertEqual(try p.run(), ["a"], "only the node whose output was damaged reruns; its bytes are the same as before")
        XCTAssertTrue(try p.output("a").hasPrefix("params"), "the store holds the good bytes again")
        XCTAssertEqual(try p.run(), [])
    }

    func testAnOutputThatIsADirectoryFailsTheRun() throws {
        let p = try TestProject()
        try p.write("a.sh", """
            #!/usr/bin/env bash
            while [ $# -gt 0 ]; do case "$1" in --out) out="$2"; shift 2;; *) shift;; esac; done
            mkdir -p "$out/out.txt"
            """)
        chmod(p.root.appendingPathComponent("a.sh").path, 0o755)
        XCTAssertThrowsError(try p.run()) { e in XCTAssertTrue("\(e)".contains("stage a failed"), "\(e)") }
        let a = try p.pipeline().status().first { $0.node == "a" }!
        guard case .stale(let reason) = a.state else { return XCTFail("a should be stale") }
        XCTAssertTrue(reason.contains("not a regular file"), reason)
    }

    func testAStageThatGainsAnOutputIsStale() throws {
        let p = try TestProject()
        try p.run()
        try p.write("stages/a.json", """
            {"version": 1, "command": "./a.sh", "outputs": ["out.txt", "extra.txt"],
             "params": {"seed": {"type": "integer", "default": 1, "doc": "generator seed"}}}
            """)
        let a = try p.pipeline().status().first { $0.node == "a" }!
        XCTAssertEqual(a.state, .stale(reason: "the cached run has no output extra.txt (the stage's outputs changed)"))
    }
}

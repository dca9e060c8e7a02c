import Foundation
import Lineage
import PipelineDriver
import Shards
import XCTest

/// The driver's commands and run options that users read the output of: `dag`, `status`, `run --dry-run`,
/// `gc --dry-run`, `--jobs N`, `foreach`, `file:` inputs, and the failures of a stage that exits 0.
final class DriverTests: XCTestCase {
    override func tearDown() {
        unsetenv("FAIL_STAGE")
        unsetenv("SLOW_STAGE")
    }

    /// A driver over `p` whose log lines are collected.
    func pipeline(_ p: TestProject, log: LogLines) throws -> Pipeline {
        try Pipeline(pipelineFile: p.pipelineFile, artifacts: p.artifacts, log: { log.append($0) })
    }

    func testDagListsEveryEdgeWithItsFileAndRole() throws {
        let p = try TestProject()
        XCTAssertEqual(try p.pipeline().dag(dot: false).split(separator: "\n"), [
            "a  (no inputs)",
            "a -> b  [out.txt as src]",
            "b -> c  [out.txt as src]",
            "a -> d  [out.txt as src]",
            "c -> e  [out.txt as parts]",
            "d -> e  [out.txt as parts]",
        ])
        let dot = try p.command(["dag", "--dot"])
        XCTAssertEqual(dot.status, 0)
        XCTAssertTrue(dot.output.hasPrefix("digraph pipeline {\n  \"a\";\n  \"b\";\n  \"a\" -> \"b\" [label=\"out.txt\"];\n"), dot.output)
        XCTAssertTrue(dot.output.hasSuffix("  \"d\" -> \"e\" [label=\"out.txt\"];\n}\n"), dot.output)
        XCTAssertEqual(try p.command(["dag"]).output, try p.pipeline().dag(dot: false) + "\n")
    }

    func testStatusSaysWhichInputChangedAndWhichUpstreamMustRunFirst() throws {
        let p = try TestProject()
        try p.run()
        let oldA = try ContentHasher.computeHash(of: p.artifacts.appendingPathComponent("stages/a/out.txt"))
        try p.writePipeline(params: ["a": "\"seed\": 2"])
        try p.run { $0.only = ["a"] }
        let newA = try ContentHasher.computeHash(of: p.artifacts.appendingPathComponent("stages/a/out.txt"))
        let status = try p.command(["status"])
        XCTAssertEqual(status.status, 0)
        let lines = status.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("a  fresh  (run 6, "), lines[0])
        XCTAssertEqual(lines[1], "b  stale  input src changed \(oldA.prefix(8)) -> \(newA.prefix(8))")
        XCTAssertEqual(lines[2], "c  stale  upstream b must run first")
        XCTAssertEqual(lines[3], "d  stale  input src changed \(oldA.prefix(8)) -> \(newA.prefix(8))")
        XCTAssertEqual(lines[4], "e  stale  upstream c must run first")
    }

    func testDryRunSaysWhatWouldRunAndWhyAndRunsNothing() throws {
        let p = try TestProject()
        try p.run()
        try p.writePipeline(params: ["b": "\"alpha\": 0.3"])
        let log = LogLines()
        var options = RunOptions()
        options.dryRun = true
        options.build = false
        try? FileManager.default.removeItem(at: p.runLog)
        XCTAssertEqual(try pipeline(p, log: log).run(options), [])
        XCTAssertEqual(log.lines, ["fresh      a", "would run  b  (params.alpha changed 0.5 -> 0.3)", "would run  c  (after b runs)",
                                   "fresh      d", "would run  e  (after c runs)"])
        XCTAssertEqual(p.executed(), [], "a dry run runs nothing")
        let never = try TestProject()
        let first = LogLines()
        _ = try pipeline(never, log: first).run(options)
        XCTAssertEqual(first.lines, ["would run  a  (never run)", "would run  b  (after a runs)", "would run  c  (after b runs)",
                                     "would run  d  (after a runs)", "would run  e  (after c runs)"])
    }

    func testGCDryRunCountsWhatItWouldForgetAndRemovesNothing() throws {
        let p = try TestProject()
        try p.run()
        try p.writePipeline(params: ["a": "\"seed\": 2"])
        try p.run()
        try p.writePipeline(params: ["a": "\"seed\": 2", "e": "\"title\": \"new\""])
        setenv("FAIL_STAGE", "e", 1)
        XCTAssertThrowsError(try p.run())
        unsetenv("FAIL_STAGE")
        let objects = p.objectCount()
        XCTAssertEqual(try p.manifest().allRuns().count, 11)
        // Plain gc forgets the failed run; --workspace also the five runs of seed 1, which no node uses now.
        XCTAssertEqual(try p.command(["gc", "--dry-run"]).output, "runs to forget: 1\n")
        XCTAssertEqual(try p.pipeline().gc(workspace: true, dryRun: true), ["runs to forget: 6"])
        XCTAssertEqual(try p.manifest().allRuns().count, 11, "a dry run forgets nothing")
        XCTAssertEqual(p.objectCount(), objects, "a dry run deletes nothing")
        _ = try p.pipeline().gc(workspace: false, dryRun: false)
        XCTAssertEqual(try p.manifest().allRuns().count, 10)
        _ = try p.pipeline().gc(workspace: true, dryRun: false)
        XCTAssertEqual(try p.manifest().allRuns().count, 5)
    }

    func testJobsRunIndependentStagesAtOnce() throws {
        let p = try TestProject()
        for name in ["b", "d"] {
            try p.writeStage(name, running: "sleep 2; echo \"\(name) end jobs=${PIPELINE_JOBS:-unset}\" >> \"$(dirname \"$0\")/runs.log\"")
        }
        try p.run { $0.jobs = 2 }
        let order = p.executed()
        XCTAssertEqual(order.count, 7, "\(order)")
        // Each stage learns that it shares the cores with another (its threads: 0 then takes half).
        XCTAssertEqual(order.filter { $0.hasSuffix("end jobs=2") }.count, 2, "\(order)")
        XCTAssertEqual(order.filter { $0.contains("jobs=") }.count, 2, "\(order)")
        let started = [order.firstIndex(of: "b")!, order.firstIndex(of: "d")!].max()!
        let ended = [order.firstIndex(of: "b end jobs=2")!, order.firstIndex(of: "d end jobs=2")!].min()!
        XCTAssertLessThan(started, ended, "b and d both started before either finished: \(order)")
        // One at a time, one of them ends before the other starts.
        try p.writeStage("b", running: "sleep 1; echo \"b end jobs=${PIPELINE_JOBS:-unset}\" >> \"$(dirname \"$0\")/runs.log\"")
        try p.writeStage("d", running: "sleep 1; echo \"d end\" >> \"$(dirname \"$0\")/runs.log\"")
        let serial = try p.run { $0.jobs = 1 }
        XCTAssertTrue(serial.contains("b end jobs=unset"), "one stage at a time has the cores to itself: \(serial)")
        XCTAssertLessThan([serial.firstIndex(of: "b end jobs=unset")!, serial.firstIndex(of: "d end")!].min()!,
                          [serial.firstIndex(of: "b")!, serial.firstIndex(of: "d")!].max()!, "\(serial)")
    }

    /// With more ready nodes than jobs, the longest chain goes first: c (then d) starts before the second b, where
    /// dependency order alone would run both b points, then c, then d, one wave each.
    func testJobsStartTheLongestChainFirst() throws {
        let p = try TestProject()
        for name in ["b", "c", "d"] { try p.writeStage(name, running: "sleep 1") }
        try p.write("pipeline.json", """
            {"version": 1, "stages": {
              "a": {"uses": "stages/a.json"},
              "b": {"uses": "stages/b.json", "inputs": {"src": "a/out.txt"}, "matrix": {"alpha": [0.1, 0.2]}},
              "c": {"uses": "stages/c.json", "inputs": {"src": "a/out.txt"}},
              "d": {"uses": "stages/d.json", "inputs": {"src": "c/out.txt"}}
            }}
            """)
        let plan = try p.pipeline().plan
        XCTAssertEqual(plan.nodes.map(\.id), ["a", "b@alpha=0.1", "b@alpha=0.2", "c", "d"])
        XCTAssertEqual(plan.criticalPathOrder().map(\.id), ["a", "c", "d", "b@alpha=0.1", "b@alpha=0.2"])
        try p.run { $0.jobs = 2 }
        let order = p.executed()
        XCTAssertEqual(order.sorted(), ["a", "b", "b", "c", "d"])
        let beforeC = order.prefix(while: { $0 != "c" }).filter { $0 == "b" }.count
        XCTAssertLessThanOrEqual(beforeC, 1, "c starts in the first wave, beside one b: \(order)")
    }

    func testNodesWithTheSameCacheKeyRunOnceEvenWhenReadyTogether() throws {
        // d ignores its swept k, so both points write the same bytes and f, run per point of d, has the same
        // cache key at both: with two jobs the second waits for the first's result instead of running.
        let p = try TestProject()
        try p.writeStage("d", running: "sleep 0.2")
        try p.writeStage("f", running: "sleep 2")
        try p.write("stages/f.json", #"{"version": 1, "command": "./f.sh", "outputs": ["out.txt"], "inputs": {"src": {}}, "params": {}}"#)
        try p.write("pipeline.json", """
            {"version": 1, "stages": {
              "a": {"uses": "stages/a.json"},
              "d": {"uses": "stages/d.json", "inputs": {"src": "a/out.txt"}, "matrix": {"k": [1, 2]}},
              "f": {"uses": "stages/f.json", "inputs": {"src": "d/out.txt"}, "foreach": "d"}
            }}
            """)
        XCTAssertEqual(try p.run { $0.jobs = 2 }.sorted(), ["a", "d", "d", "f"])
        let status = try p.pipeline().status()
        let f1 = status.first { $0.node == "f@k=1" }!, f2 = status.first { $0.node == "f@k=2" }!
        XCTAssertNotNil(f1.stateRunID)
        XCTAssertEqual(f1.stateRunID, f2.stateRunID, "one run serves both nodes")
        XCTAssertEqual(try p.output("f@k=1"), try p.output("f@k=2"))
    }

    func testForeachRunsOncePerUpstreamSweepPointOnThatPointsOutput() throws {
        let p = try TestProject()
        try p.write("stages/f.json", #"{"version": 1, "command": "./f.sh", "outputs": ["out.txt"], "inputs": {"src": {}}, "params": {}}"#)
        try TestProject.script.write(to: p.root.appendingPathComponent("f.sh"), atomically: true, encoding: .utf8)
        chmod(p.root.appendingPathComponent("f.sh").path, 0o755)
        try p.write("pipeline.json", """
            {"version": 1, "stages": {
              "a": {"uses": "stages/a.json"},
              "d": {"uses": "stages/d.json", "inputs": {"src": "a/out.txt"}, "matrix": {"k": [1, 2]}},
              "f": {"uses": "stages/f.json", "inputs": {"src": "d/out.txt"}, "foreach": "d"}
            }}
            """)
        let plan = try p.pipeline().plan
        XCTAssertEqual(plan.nodes.map(\.id), ["a", "d@k=1", "d@k=2", "f@k=1", "f@k=2"])
        XCTAssertEqual(plan.node("f@k=2")!.inputs.map { $0.source }, [.output(node: "d@k=2", file: "out.txt")])
        XCTAssertEqual(plan.node("f@k=2")!.params, .object([:]), "the upstream's sweep labels the node, not its params")
        XCTAssertEqual(try p.run().sorted(), ["a", "d", "d", "f", "f"])
        XCTAssertTrue(try p.output("f@k=1").contains("\"k\":1") && !p.output("f@k=1").contains("\"k\":2"))
        XCTAssertTrue(try p.output("f@k=2").contains("\"k\":2") && !p.output("f@k=2").contains("\"k\":1"))
        // Without foreach, a role that takes one input cannot take a sweep.
        try p.write("pipeline.json", """
            {"version": 1, "stages": {
              "a": {"uses": "stages/a.json"},
              "d": {"uses": "stages/d.json", "inputs": {"src": "a/out.txt"}, "matrix": {"k": [1, 2]}},
              "f": {"uses": "stages/f.json", "inputs": {"src": "d/out.txt"}}
            }}
            """)
        XCTAssertThrowsError(try p.pipeline()) { error in
            XCTAssertEqual("\(error)", #"pipeline.json: stages.f.inputs.src: 'd' is a sweep of 2 points; add "foreach": "d" or use an input that takes many"#)
        }
    }

    func testAForeachNodeTakesFromAnEarlierSweepThePointItDescendsFrom() throws {
        // a is swept over seed; b runs per a point; g runs per b point with seeds of its own, and also reads a:
        // g@seed=2,k=... must read a@seed=2, the point its b point was made from, not every point of a.
        let p = try TestProject()
        try p.write("stages/g.json", """
            {"version": 1, "command": "./e.sh", "outputs": ["out.txt"], "inputs": {"src": {}, "raw": {}},
             "params": {"k": {"type": "integer", "default": 0}}}
            """)
        try p.write("pipeline.json", """
            {"version": 1, "stages": {
              "a": {"uses": "stages/a.json", "matrix": {"seed": [1, 2]}},
              "b": {"uses": "stages/b.json", "inputs": {"src": "a/out.txt"}, "foreach": "a"},
              "g": {"uses": "stages/g.json", "inputs": {"src": "b/out.txt", "raw": "a/out.txt"}, "foreach": "b", "matrix": {"k": [7, 8]}}
            }}
            """)
        let plan = try p.pipeline().plan
        XCTAssertEqual(plan.nodes.map(\.id), ["a@seed=1", "a@seed=2", "b@seed=1", "b@seed=2",
                                              "g@seed=1,k=7", "g@seed=1,k=8", "g@seed=2,k=7", "g@seed=2,k=8"])
        XCTAssertEqual(plan.node("g@seed=2,k=8")!.inputs.map { $0.source }, [.output(node: "a@seed=2", file: "out.txt"),
                                                                         .output(node: "b@seed=2", file: "out.txt")])
        XCTAssertEqual(try p.run().count, 8)
        XCTAssertTrue(try p.output("g@seed=1,k=7").contains("\"seed\":1") && !p.output("g@seed=1,k=7").contains("\"seed\":2"))
        // A sweep the node does not descend from is still an error for a role that takes one input.
        try p.write("pipeline.json", """
            {"version": 1, "stages": {
              "a": {"uses": "stages/a.json", "matrix": {"seed": [1, 2]}},
              "d": {"uses": "stages/d.json", "inputs": {"src": "a/out.txt"}, "foreach": "a"},
              "b": {"uses": "stages/b.json", "inputs": {"src": "a/out.txt"}, "matrix": {"alpha": [0.1, 0.2]}, "foreach": "a"},
              "g": {"uses": "stages/g.json", "inputs": {"src": "d/out.txt", "raw": "b/out.txt"}, "foreach": "d"}
            }}
            """)
        XCTAssertThrowsError(try p.pipeline()) { error in
            XCTAssertTrue("\(error)".contains("stages.g.inputs.raw: 'b' is a sweep of 4 points"), "\(error)")
        }
    }

    func testFileInputsAreHashedByContent() throws {
        let p = try TestProject()
        try FileManager.default.createDirectory(at: p.root.appendingPathComponent("data/sub"), withIntermediateDirectories: true)
        try "hello\n".write(to: p.root.appendingPathComponent("data/x.txt"), atomically: true, encoding: .utf8)
        try "folder file\n".write(to: p.root.appendingPathComponent("data/sub/y.txt"), atomically: true, encoding: .utf8)
        // e takes a folder, which the default script would try to cat.
        try p.writeStage("e", running: "ls \"$(dirname \"$0\")/data/sub\" > /dev/null")
        try p.write("pipeline.json", """
            {"version": 1, "stages": {
              "b": {"uses": "stages/b.json", "inputs": {"src": "file:data/x.txt"}},
              "e": {"uses": "stages/e.json", "inputs": {"parts": ["file:data/sub", "b/out.txt"]}}
            }}
            """)
        XCTAssertEqual(try p.pipeline().dag(dot: false).split(separator: "\n"),
                       ["file:data/x.txt -> b  [as src]", "file:data/sub -> e  [as parts]", "b -> e  [out.txt as parts]"])
        XCTAssertEqual(try p.run(), ["b", "e"])
        XCTAssertTrue(try p.output("b").contains("input src\nhello\n"))
        // Rewriting the same bytes (a new mtime) changes nothing; new bytes rerun what reads them.
        let x = p.root.appendingPathComponent("data/x.txt")
        let before = try ContentHasher.computeHash(of: x)
        try "hello\n".write(to: x, atomically: false, encoding: .utf8)
        XCTAssertEqual(try p.run(), [])
        try "goodbye\n".write(to: x, atomically: false, encoding: .utf8)
        let after = try ContentHasher.computeHash(of: x)
        let b = try p.pipeline().status().first { $0.node == "b" }!
        XCTAssertEqual(b.state, .stale(reason: "input src changed \(before.prefix(8)) -> \(after.prefix(8))"))
        XCTAssertEqual(try p.run(), ["b", "e"])
        // A folder is hashed by its files: a new file reruns its reader, an editor's dotfile does not.
        try "swap".write(to: p.root.appendingPathComponent("data/sub/.y.txt.swp"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try p.run(), [])
        try "more".write(to: p.root.appendingPathComponent("data/sub/z.txt"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try p.run(), ["e"])
        try FileManager.default.removeItem(at: x)
        XCTAssertThrowsError(try p.run()) { error in
            XCTAssertEqual("\(error)", "pipeline.json: stages.b.inputs.src: input file 'data/x.txt' does not exist")
        }
    }

    func testAStageThatExitsZeroWithoutItsOutputFailsAndSaysSo() throws {
        let p = try TestProject()
        try p.write("a.sh", "#!/usr/bin/env bash\nexit 0\n")
        chmod(p.root.appendingPathComponent("a.sh").path, 0o755)
        XCTAssertThrowsError(try p.run()) { error in XCTAssertEqual("\(error)", "stage a failed; earlier results are kept (see `pipeline status`)") }
        let a = try p.pipeline().status().first { $0.node == "a" }!
        XCTAssertEqual(a.state, .stale(reason: "last run failed: exited 0 but did not write its output out.txt (log: \(p.artifacts.path)/logs/a.log)"))
        XCTAssertEqual(try p.manifest().allRuns().map(\.status), [RunRecord.failed])
        XCTAssertEqual(p.objectCount(), 0)
    }

    func testAShardOutputThatDoesNotVerifyFailsTheRun() throws {
        let p = try TestProject()
        try p.write("stages/a.json", #"{"version": 1, "command": "./a.sh", "outputs": ["out.tshard"], "params": {}}"#)
        try p.write("a.sh", """
            #!/usr/bin/env bash
            while [ $# -gt 0 ]; do case "$1" in --out) out="$2"; shift 2;; *) shift;; esac; done
            printf 'TSHARD\\0\\2 not really a shard' > "$out/out.tshard"
            """)
        chmod(p.root.appendingPathComponent("a.sh").path, 0o755)
        try p.write("pipeline.json", #"{"version": 1, "stages": {"a": {"uses": "stages/a.json"}}}"#)
        XCTAssertThrowsError(try p.run())
        let a = try p.pipeline().status().first { $0.node == "a" }!
        guard case .stale(let reason) = a.state else { return XCTFail("a should be stale") }
        XCTAssertTrue(reason.hasPrefix("last run failed: output out.tshard does not verify: "), reason)
        XCTAssertTrue(reason.contains("out.tshard"), reason)
        XCTAssertEqual(p.objectCount(), 0, "nothing that fails verification enters the store")
    }

    func testANoOpRunReadsNoFileWhoseStatIsUnchanged() throws {
        // The manifest remembers each file's hash by (path, inode, mtime, size). Once every file is older than
        // the racy-clean window, a no-op run trusts that state: a same-size edit of a stage's code with its
        // mtime put back goes unseen, which is only possible if the file was not read.
        let p = try TestProject()
        try p.run()
        let past = Int(Date().timeIntervalSince1970) - 60
        func backdate() {
            let walker = FileManager.default.enumerator(atPath: p.root.path)!
            for case let path as String in walker {
                var times = [timeval(tv_sec: past, tv_usec: 0), timeval(tv_sec: past, tv_usec: 0)]
                _ = utimes(p.root.appendingPathComponent(path).path, &times)
            }
        }
        backdate()
        XCTAssertEqual(try p.run(), [], "new mtimes, same bytes: nothing reruns, and the states are stored")
        let states = try p.manifest().allFileStates()
        let script = p.root.appendingPathComponent("b.sh")
        XCTAssertNotNil(states[script.standardizedFileURL.path])
        XCTAssertNotNil(states.keys.first { $0.contains("/objects/") }, "store objects are remembered too")
        let text = try String(contentsOf: script, encoding: .utf8)
        let handle = try FileHandle(forWritingTo: script)
        try handle.write(contentsOf: Data(text.replacingOccurrences(of: "set -euo", with: "set -eeo").utf8))
        try handle.close()
        backdate()
        XCTAssertEqual(try p.run(), [], "the edit is invisible to a run that reads nothing")
        XCTAssertNotEqual(try ContentHasher.computeHash(of: script), states[script.standardizedFileURL.path]!.hash)
    }
}

/// Lines a driver logs, collected for a test.
final class LogLines: @unchecked Sendable {
    private(set) var lines: [String] = []
    private let lock = NSLock()

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }
}

/// The pipelines shipped at the repository root, loaded by the driver: their graphs as the README describes them.
final class ShippedPipelineTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func plan(_ file: String) throws -> PipelinePlan {
        try PipelinePlan(spec: PipelineSpec(url: Self.root.appendingPathComponent(file)))
    }

    /// Every output input names a node of the plan that writes that file, and every node's upstream comes first.
    func assertInputsResolve(_ plan: PipelinePlan, file: StaticString = #filePath, line: UInt = #line) {
        var seen = Set<String>()
        for node in plan.nodes {
            for (role, source) in node.inputs {
                guard case let .output(up, output) = source else { continue }
                XCTAssertTrue(seen.contains(up), "\(node.id).\(role): \(up) is not an earlier node", file: file, line: line)
                XCTAssertTrue(plan.node(up)?.stage.definition.outputs.contains(output) == true,
                              "\(node.id).\(role): \(up) does not write \(output)", file: file, line: line)
            }
            seen.insert(node.id)
        }
    }

    func count(_ plan: PipelinePlan) -> [String: Int] {
        Dictionary(grouping: plan.nodes, by: \.stage.name).mapValues(\.count)
    }

    func testDefaultPipelineTrainsThreeModelsOverFiveSeedsAndEvaluatesEach() throws {
        let plan = try plan("pipeline.json")
        XCTAssertEqual(plan.nodes.count, 34)
        XCTAssertEqual(count(plan), ["ingest": 1, "pairs": 1, "synthesis": 1, "train_qd": 5, "train_td": 5, "train_cd": 5,
                                     "eval_qd": 5, "eval_td": 5, "eval_cd": 5, "report": 1])
        assertInputsResolve(plan)
        let eval = try XCTUnwrap(plan.node("eval_td@seed=2"))
        XCTAssertEqual(eval.inputs.map { $0.role }, ["checkpoint", "queries", "queries", "videos", "videos"])
        XCTAssertEqual(eval.inputs[0].source, .output(node: "train_td@seed=2", file: "checkpoint.tshard"))
        // val then shifted, in the same order for queries and videos: mask-eval pairs them by position.
        XCTAssertEqual(eval.inputs[1...].map { $0.source }, [.output(node: "ingest", file: "val.queries.tshard"),
                                                         .output(node: "ingest", file: "shifted.queries.tshard"),
                                                         .output(node: "ingest", file: "val.videos.tshard"),
                                                         .output(node: "ingest", file: "shifted.videos.tshard")])
        let report = try XCTUnwrap(plan.node("report"))
        XCTAssertEqual(report.inputs.filter { $0.role == "summaries" }.count, 15)
        XCTAssertEqual(report.inputs.filter { $0.role == "logs" }.count, 15)
        XCTAssertEqual(Set(plan.nodes.filter { $0.stage.name.hasPrefix("train") }.map { $0.params["model"]!.stringValue! }),
                       ["qd-detr", "td-detr", "cdnet"])
    }

    func testExperimentsPipelineSweepsTheGridAlphaBetaAndCDNetAblations() throws {
        let plan = try plan("experiments.json")
        // Ten seeds per configuration; the difficulty sweep: 4 rho x 3 train_videos, 5 seeds of three models.
        XCTAssertEqual(count(plan), ["ingest": 1, "pairs": 1, "synthesis": 1, "synthesis_alpha": 5, "train_grid": 40,
                                     "train_alpha": 50, "train_beta": 50, "train_cd": 160, "eval_grid": 40, "eval_alpha": 50,
                                     "eval_beta": 50, "eval_cd": 160,
                                     "ingest_sweep": 12, "pairs_sweep": 12, "synthesis_sweep": 12, "train_sweep": 120,
                                     "train_cd_sweep": 60, "eval_sweep": 120, "eval_cd_sweep": 60, "report": 1])
        XCTAssertEqual(plan.nodes.count, 1005)
        // Each point of the sweep trains and evaluates on its own data, the one its synthesis was made from.
        let point = "rho=0.6,train_videos=250"
        let td = try XCTUnwrap(plan.node("train_sweep@\(point),model=td-detr,seed=3"))
        XCTAssertEqual(Set(td.upstream), ["ingest_sweep@\(point)", "synthesis_sweep@\(point)"])
        let eval = try XCTUnwrap(plan.node("eval_cd_sweep@\(point),seed=5"))
        XCTAssertEqual(Set(eval.upstream), ["train_cd_sweep@\(point),seed=5", "ingest_sweep@\(point)"])
        let data = try XCTUnwrap(plan.node("ingest_sweep@\(point)"))
        XCTAssertEqual(data.params["rho"], .number(0.6))
        XCTAssertEqual(data.params["train_videos"], .number(250))
        // The default data is a point of the sweep: the same params, so the same cache key and the same runs.
        XCTAssertEqual(plan.node("ingest_sweep@rho=0.9,train_videos=500")!.params, plan.node("ingest")!.params)
        XCTAssertEqual(plan.node("train_sweep@rho=0.9,train_videos=500,model=qd-detr,seed=2")!.params,
                       plan.node("train_grid@model=qd-detr,seed=2")!.params)
        assertInputsResolve(plan)
        let alphas = Set(plan.nodes.filter { $0.stage.name == "synthesis_alpha" }.map { $0.params["alpha"]!.doubleValue! })
        // The grid's TD-DETR runs use the default synthesis (alpha 0.5); the sweep adds the other values.
        XCTAssertEqual(alphas, [0.1, 0.3, 0.7, 0.9, 1.0])
        XCTAssertEqual(plan.nodes.first { $0.stage.name == "synthesis" }!.params["alpha"]!.doubleValue, 0.5)
        let trainAlpha = try XCTUnwrap(plan.node("train_alpha@alpha=0.3,seed=2"))
        XCTAssertTrue(trainAlpha.inputs.contains { $0.source == .output(node: "synthesis_alpha@alpha=0.3", file: "synthesized.videos.tshard") })
        XCTAssertEqual(Set(plan.nodes.filter { $0.stage.name == "train_beta" }.map { $0.params["beta"]!.doubleValue! }), [0.1, 0.3, 0.7, 0.9, 1.0])
        XCTAssertEqual(Set(plan.nodes.filter { $0.stage.name == "train_grid" }.map { $0.params["model"]!.stringValue! }),
                       ["qd-detr", "td-detr", "vsdc-only", "tdem-only"])
        XCTAssertEqual(plan.node("report")!.inputs.filter { $0.role == "summaries" }.count, 40 + 50 + 50 + 160 + 120 + 60)
    }

    /// difficulty.json is experiments.json's difficulty sweep alone: the same nodes with the same params and inputs (so
    /// the same cache keys: running either fills the other's cache), plus a report of its own.
    func testTheDifficultyPipelineIsTheExperimentsSweepNodeForNode() throws {
        let sweep = try plan("difficulty.json"), full = try plan("experiments.json")
        XCTAssertEqual(count(sweep), ["ingest_sweep": 12, "pairs_sweep": 12, "synthesis_sweep": 12, "train_sweep": 120,
                                      "train_cd_sweep": 60, "eval_sweep": 120, "eval_cd_sweep": 60, "report": 1])
        assertInputsResolve(sweep)
        for node in sweep.nodes where node.stage.name != "report" {
            let twin = try XCTUnwrap(full.node(node.id), node.id)
            XCTAssertEqual(twin.params, node.params, node.id)
            XCTAssertEqual(twin.inputs.map(\.source), node.inputs.map(\.source), node.id)
        }
        XCTAssertEqual(sweep.node("report")!.inputs.filter { $0.role == "summaries" }.count, 180)
    }

    func testQVHighlightsPipelineReadsThePublicLayoutAndScaleRunsOneConfigurationEach() throws {
        let qv = try plan("qvhighlights.json")
        XCTAssertEqual(Set(qv.nodes.map(\.id)), ["ingest", "train_qd", "train_td", "train_td_authors", "train_cd", "eval_qd", "eval_td",
                                                 "eval_td_authors", "eval_cd", "report"])
        assertInputsResolve(qv)
        // Each model with its own paper's settings; val every 5 epochs as the reference; VSDC within each batch.
        let params = { (id: String) in qv.node(id)!.params }
        XCTAssertEqual(params("train_qd")["loss_preset"]?.stringValue, "qd-detr")
        XCTAssertEqual(params("train_td")["loss_preset"]?.stringValue, "paper")
        XCTAssertEqual(params("train_td")["vsdc_source"]?.stringValue, "batch")
        XCTAssertEqual(params("train_cd")["hidden"]?.intValue, 1024)
        XCTAssertEqual(params("train_td_authors")["recipe"]?.stringValue, "authors-code")
        XCTAssertEqual(Set(["train_qd", "train_td", "train_cd"].map { params($0)["eval_every"]?.intValue }), [5])
        XCTAssertEqual(qv.node("ingest")!.inputs.map { $0.source }, [
            .file(path: "data/qvhighlights/annotations"),
            .file(path: "data/qvhighlights/features/clip_text_features"),
            .file(path: "data/qvhighlights/features/slowfast_features"),
            .file(path: "data/qvhighlights/features/clip_features"),
        ])
        for (file, clip, evaluated) in [("charades-sta.json", 1.0, "val"), ("tacos.json", 2.0, "test")] {
            let grounding = try plan(file)
            XCTAssertEqual(Set(grounding.nodes.map(\.id)), ["ingest", "train_qd", "train_td", "eval_qd", "eval_td", "report"], file)
            assertInputsResolve(grounding)
            XCTAssertEqual(grounding.node("ingest")!.params["clip_length"]?.doubleValue, clip, file)
            for id in ["train_qd", "train_td"] {
                let p = grounding.node(id)!.params
                XCTAssertEqual([p["t2v_layers"], p["enc_layers"], p["dec_layers"], p["epochs"]].map { $0?.intValue }, [3, 3, 3, 100], file)
                XCTAssertEqual([p["lr"], p["saliency_weight"]].map { $0?.doubleValue }, [0.0002, 4], file)
                XCTAssertEqual(p["loss_preset"]?.stringValue, "qd-detr", "\(file): span 10 / gIoU 1")
            }
            XCTAssertEqual(grounding.node("eval_td")!.inputs.first { $0.role == "videos" }?.source,
                           .output(node: "ingest", file: "\(evaluated).videos.tshard"), file)
        }
        let scale = try plan("scale.json")
        XCTAssertEqual(Set(scale.nodes.map(\.id)), ["ingest", "pairs", "synthesis", "train_qd", "train_td", "eval_qd", "eval_td"])
        assertInputsResolve(scale)
    }
}

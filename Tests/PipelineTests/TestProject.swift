import Foundation
import Lineage
import PipelineDriver
import Shards

/// A throw-away project with bash stages: a -> b -> c, a -> d, {c, d} -> e (e gathers). Each stage
/// appends its name to `runs.log`, writes `out.txt` from its params and inputs, and can be told through
/// the environment to fail (`FAIL_STAGE`) or to SIGKILL itself (`CRASH_STAGE`).
final class TestProject {
    let root: URL
    var artifacts: URL { root.appendingPathComponent("artifacts") }
    var runLog: URL { root.appendingPathComponent("runs.log") }
    var pipelineFile: URL { root.appendingPathComponent("pipeline.json") }

    static let script = """
        #!/usr/bin/env bash
        set -euo pipefail
        out=""; params=""; inputs=()
        while [ $# -gt 0 ]; do
          case "$1" in
            --out) out="$2"; shift 2;;
            --params) params="$2"; shift 2;;
            --in) inputs+=("$2"); shift 2;;
            *) echo "unknown argument $1" >&2; exit 2;;
          esac
        done
        name=$(basename "$0" .sh)
        echo "$name" >> "$(dirname "$0")/runs.log"
        if [ "${CRASH_STAGE:-}" = "$name" ]; then echo "partial" > "$out/out.txt"; kill -9 $$; fi
        if [ "${FAIL_STAGE:-}" = "$name" ]; then echo "stage $name: refusing on purpose" >&2; exit 3; fi
        if [ -n "${SLOW_STAGE:-}" ]; then sleep "$SLOW_STAGE"; fi
        { echo "params $params"; for i in "${inputs[@]+"${inputs[@]}"}"; do echo "input ${i%%=*}"; cat "${i#*=}"; done; } > "$out/out.txt"
        """

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("stages"), withIntermediateDirectories: true)
        for name in ["a", "b", "c", "d", "e"] {
            let url = root.appendingPathComponent("\(name).sh")
            try Self.script.write(to: url, atomically: true, encoding: .utf8)
            chmod(url.path, 0o755)
        }
        try write("stages/a.json", """
            {"version": 1, "command": "./a.sh", "outputs": ["out.txt"],
             "params": {"seed": {"type": "integer", "default": 1, "doc": "generator seed"}}}
            """)
        try write("stages/b.json", """
            {"version": 1, "command": "./b.sh", "outputs": ["out.txt"],
             "inputs": {"src": {"doc": "a's output"}},
             "params": {"alpha": {"type": "number", "default": 0.5, "min": 0, "max": 1}}}
            """)
        try write("stages/c.json", """
            {"version": 1, "command": "./c.sh", "outputs": ["out.txt"], "inputs": {"src": {}},
             "params": {"mode": {"type": "string", "default": "x", "enum": ["x", "y"]}}}
            """)
        try write("stages/d.json", """
            {"version": 1, "command": "./d.sh", "outputs": ["out.txt"], "inputs": {"src": {}},
             "params": {"k": {"type": "integer", "default": 5}}}
            """)
        try write("stages/e.json", """
            {"version": 1, "command": "./e.sh", "outputs": ["out.txt"], "inputs": {"parts": {"many": true}},
             "params": {"title": {"type": "string", "default": "report"}}}
            """)
        try writePipeline()
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func write(_ path: String, _ text: String) throws {
        try text.write(to: root.appendingPathComponent(path), atomically: true, encoding: .utf8)
    }

    /// pipeline.json with optional param overrides per stage and an optional sweep of d's `k`.
    func writePipeline(params: [String: String] = [:], dMatrix: [Int]? = nil) throws {
        func p(_ s: String) -> String { params[s].map { ", \"params\": {\($0)}" } ?? "" }
        let matrix = dMatrix.map { ", \"matrix\": {\"k\": [\($0.map(String.init).joined(separator: ", "))]}" } ?? ""
        try write("pipeline.json", """
            {"version": 1, "stages": {
              "a": {"uses": "stages/a.json"\(p("a"))},
              "b": {"uses": "stages/b.json", "inputs": {"src": "a/out.txt"}\(p("b"))},
              "c": {"uses": "stages/c.json", "inputs": {"src": "b/out.txt"}\(p("c"))},
              "d": {"uses": "stages/d.json", "inputs": {"src": "a/out.txt"}\(p("d"))\(matrix)},
              "e": {"uses": "stages/e.json", "inputs": {"parts": ["c/out.txt", "d/out.txt"]}\(p("e"))}
            }}
            """)
    }

    /// Replaces stage `name`'s script with one that logs its name, runs `body` (bash), then writes its output.
    func writeStage(_ name: String, running body: String) throws {
        try write("\(name).sh", """
            #!/usr/bin/env bash
            set -euo pipefail
            while [ $# -gt 0 ]; do case "$1" in --out) out="$2"; shift 2;; *) shift;; esac; done
            echo "\(name)" >> "$(dirname "$0")/runs.log"
            \(body)
            echo "\(name) done" > "$out/out.txt"
            """)
        chmod(root.appendingPathComponent("\(name).sh").path, 0o755)
    }

    func manifest() throws -> Manifest {
        try Manifest(url: artifacts.appendingPathComponent("manifest.sqlite"))
    }

    func pipeline() throws -> Pipeline {
        try Pipeline(pipelineFile: pipelineFile, artifacts: artifacts, log: { _ in })
    }

    /// Runs the pipeline and returns the stages that executed, in order (from the stages' own log).
    @discardableResult
    func run(_ configure: (inout RunOptions) -> Void = { _ in }) throws -> [String] {
        try? FileManager.default.removeItem(at: runLog)
        var options = RunOptions()
        options.build = false
        configure(&options)
        _ = try pipeline().run(options)
        return executed()
    }

    /// The real `pipeline` executable; the products directory holds the test bundle (or is its bundle URL,
    /// depending on the platform).
    static var binary: URL {
        let bundle = Bundle(for: TestProject.self).bundleURL
        let beside = bundle.appendingPathComponent("pipeline")
        return FileManager.default.fileExists(atPath: beside.path) ? beside
            : bundle.deletingLastPathComponent().appendingPathComponent("pipeline")
    }

    /// Runs `pipeline ARGS` in the project as a user would; returns its exit status and standard output.
    func command(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.currentDirectoryURL = root
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func executed() -> [String] {
        ((try? String(contentsOf: runLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func output(_ node: String) throws -> String {
        try String(contentsOf: artifacts.appendingPathComponent("stages/\(node)/out.txt"), encoding: .utf8)
    }

    func objectCount() -> Int {
        let walker = FileManager.default.enumerator(atPath: artifacts.appendingPathComponent("objects").path)
        return (walker?.allObjects as? [String])?.filter { $0.contains(".") }.count ?? 0
    }
}

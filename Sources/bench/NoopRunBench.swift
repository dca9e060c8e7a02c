import ArgumentParser
import Foundation
import Lineage
import PipelineDriver

/// Wall time of a `pipeline run` that finds everything fresh: a 6-stage pipeline over a manifest of
/// at least 100 artifacts, measured in-process (what the driver costs beyond process start).
struct NoopRunBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "noop-run", abstract: "No-op pipeline run time.")

    @Option(help: "Timed repetitions (median reported).")
    var repeats = 20

    func run() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bench-noop-\(getpid())")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("stages"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let script = """
            #!/bin/sh
            while [ $# -gt 0 ]; do case "$1" in --out) out="$2";; esac; shift; done
            echo "$$ $(date +%s%N)" > "$out/out.txt"
            """
        let names = ["ingest", "pairs", "synth", "train", "eval", "report"]
        for name in names {
            let url = root.appendingPathComponent("\(name).sh")
            try script.write(to: url, atomically: true, encoding: .utf8)
            chmod(url.path, 0o755)
            let inputs = name == "ingest" ? "" : #", "inputs": {"src": {"many": true}}"#
            try """
                {"version": 1, "command": "./\(name).sh", "outputs": ["out.txt"]\(inputs),
                 "params": {"seed": {"type": "integer", "default": 0}}}
                """.write(to: root.appendingPathComponent("stages/\(name).json"), atomically: true, encoding: .utf8)
        }
        // train is a sweep of 24 points and eval runs once per point: 1 + 1 + 1 + 24 + 24 + 1 = 52 runs.
        try """
            {"version": 1, "stages": {
              "ingest": {"uses": "stages/ingest.json"},
              "pairs": {"uses": "stages/pairs.json", "inputs": {"src": "ingest/out.txt"}},
              "synth": {"uses": "stages/synth.json", "inputs": {"src": ["ingest/out.txt", "pairs/out.txt"]}},
              "train": {"uses": "stages/train.json", "inputs": {"src": "synth/out.txt"}, "matrix": {"seed": [\((0..<24).map(String.init).joined(separator: ","))]}},
              "eval": {"uses": "stages/eval.json", "inputs": {"src": "train/out.txt"}, "foreach": "train"},
              "report": {"uses": "stages/report.json", "inputs": {"src": "eval/out.txt"}}
            }}
            """.write(to: root.appendingPathComponent("pipeline.json"), atomically: true, encoding: .utf8)
        let file = root.appendingPathComponent("pipeline.json")
        let artifacts = root.appendingPathComponent("artifacts")
        var options = RunOptions()
        options.build = false
        // Fill the manifest: the first run, then a second seed for ingest (everything reruns), then back.
        _ = try Pipeline(pipelineFile: file, artifacts: artifacts, log: { _ in }).run(options)
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: #""uses": "stages/ingest.json"}"#, with: #""uses": "stages/ingest.json", "params": {"seed": 1}}"#)
            .write(to: file, atomically: true, encoding: .utf8)
        _ = try Pipeline(pipelineFile: file, artifacts: artifacts, log: { _ in }).run(options)
        try text.write(to: file, atomically: true, encoding: .utf8)
        let manifest = try Manifest(url: artifacts.appendingPathComponent("manifest.sqlite"))
        let artifactCount = try manifest.allArtifacts().count
        let runCount = try manifest.allRuns().count

        var ran: [String] = []
        let time = try Measure.median(repeats: repeats) {
            ran = try Pipeline(pipelineFile: file, artifacts: artifacts, log: { _ in }).run(options)
        }
        guard ran.isEmpty else { throw ValidationError("the no-op run ran \(ran)") }
        print("6 stages (52 nodes with a 24-point sweep), manifest of \(artifactCount) artifacts and \(runCount) runs")
        print("in-process: open manifest, parse pipeline.json, fingerprint code, hash inputs (state cache), verify outputs, lock")
        print(String(format: "no-op run: %.1f ms (median of %d); target < 300 ms beyond process start", time * 1000, repeats))
        Measure.figure("noop-run.ms", time * 1000, "ms", digits: 1)
    }
}

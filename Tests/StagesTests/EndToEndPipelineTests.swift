import Foundation
import PipelineDriver
import Retrieval
import Shards
@testable import Stages
import XCTest

/// All six stages under the real driver on a tiny configuration: the report's lineage reaches the
/// ingest params, a rerun is a no-op, and a TD-DETR parameter reruns only TD-DETR's branch.
final class EndToEndPipelineTests: XCTestCase {
    func writePipeline(_ root: URL, beta: Double) throws {
        let train = #""hidden": 16, "heads": 2, "ffn": 32, "t2v_layers": 1, "enc_layers": 1, "dec_layers": 1, "queries": 5, "epochs": 2, "batch_size": 8, "lr": 0.001, "threads": 1"#
        let data = #""train_videos": "ingest/train.videos.tshard", "train_queries": "ingest/train.queries.tshard", "val_videos": "ingest/val.videos.tshard", "val_queries": "ingest/val.queries.tshard""#
        let eval = #""videos": ["ingest/val.videos.tshard", "ingest/shifted.videos.tshard"], "queries": ["ingest/val.queries.tshard", "ingest/shifted.queries.tshard"]"#
        let text = """
            {"version": 1, "stages": {
              "ingest": {"uses": "stages/synthetic-benchmark.json",
                         "params": {"train_videos": 24, "val_videos": 8, "shifted_videos": 8, "video_dim": 12, "text_dim": 8, "max_clips": 20}},
              "pairs": {"uses": "stages/pair-mining.json", "inputs": {"videos": "ingest/train.videos.tshard"}, "params": {"k": 2, "batch_size": 8}},
              "synthesis": {"uses": "stages/video-synthesis.json",
                            "inputs": {"videos": "ingest/train.videos.tshard", "queries": "ingest/train.queries.tshard", "pairs": "pairs/pairs.tshard"}},
              "train_qd": {"uses": "stages/train.json", "params": {"model": "qd-detr", \(train)}, "inputs": {\(data)}},
              "train_td": {"uses": "stages/train.json", "params": {"model": "td-detr", "beta": \(beta), \(train)},
                           "inputs": {\(data), "synth_videos": "synthesis/synthesized.videos.tshard", "synth_queries": "synthesis/synthesized.queries.tshard"}},
              "eval_qd": {"uses": "stages/mask-eval.json", "inputs": {"checkpoint": "train_qd/checkpoint.tshard", \(eval)}, "params": {"threads": 1}},
              "eval_td": {"uses": "stages/mask-eval.json", "inputs": {"checkpoint": "train_td/checkpoint.tshard", \(eval)}, "params": {"threads": 1}},
              "report": {"uses": "stages/report.json",
                         "inputs": {"summaries": ["eval_qd/summary.json", "eval_td/summary.json"], "logs": ["train_qd/log.jsonl", "train_td/log.jsonl"]}}
            }}
            """
        try text.write(to: root.appendingPathComponent("pipeline.json"), atomically: true, encoding: .utf8)
    }

    func pipeline(_ root: URL) throws -> Pipeline {
        try Pipeline(pipelineFile: root.appendingPathComponent("pipeline.json"), artifacts: root.appendingPathComponent("artifacts"),
                     binDirectory: StageProcess.productsDirectory, log: { _ in })
    }

    func run(_ root: URL) throws -> [String] {
        var options = RunOptions()
        options.build = false
        return try pipeline(root).run(options).sorted()
    }

    func testAllSixStagesRunCacheAndRerunOnlyWhatABetaChangeTouches() throws {
        let root = try StageProcess.temporaryDirectory("end-to-end", for: self)
        for link in ["stages", "Sources"] {
            try FileManager.default.createSymbolicLink(at: root.appendingPathComponent(link),
                                                       withDestinationURL: StageProcess.repositoryRoot.appendingPathComponent(link))
        }
        try writePipeline(root, beta: 0.5)
        XCTAssertEqual(try run(root), ["eval_qd", "eval_td", "ingest", "pairs", "report", "synthesis", "train_qd", "train_td"])

        let reportDir = root.appendingPathComponent("artifacts/stages/report")
        let markdown = try String(contentsOf: reportDir.appendingPathComponent("report.md"), encoding: .utf8)
        for section in ["table 1 style", "table 2 style", "Query grounding", "Training curves", "Appendix: lineage"] {
            XCTAssertTrue(markdown.contains(section), "the report lacks '\(section)'")
        }
        XCTAssertTrue(markdown.contains("QD-DETR") && markdown.contains("TD-DETR"))
        let html = try String(contentsOf: reportDir.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"), "figures are inline SVG")
        XCTAssertFalse(html.contains("<script") || html.contains("src=\"http"), "the page loads nothing from the network")

        // The report's lineage reaches the ingest stage and its params.
        let lineage = try pipeline(root).lineage(of: reportDir.appendingPathComponent("report.md").path)
        XCTAssertTrue(lineage.contains("<- ingest (run"), lineage)
        XCTAssertTrue(lineage.contains("\"train_videos\":24"), lineage)

        XCTAssertEqual(try run(root), [], "a rerun is a no-op")

        try writePipeline(root, beta: 0.7)
        XCTAssertEqual(try run(root), ["eval_td", "report", "train_td"], "beta reruns TD-DETR's train, its mask-eval and the report only")
        let summary = try JSONValue.parse(Data(contentsOf: root.appendingPathComponent("artifacts/stages/eval_td/summary.json")), source: "summary")
        XCTAssertEqual(summary["params"]?["beta"], .number(0.7))
        // The data it was trained on travels with it (train's checkpoint and log, then mask-eval's summary), so a
        // report can tell apart runs on different data.
        XCTAssertEqual(summary["dataset"]?["train_videos"], .number(24))
        XCTAssertEqual(summary["dataset"]?["rho"], .number(0.9))
        XCTAssertNotNil(summary["splits"]?["shifted"]?["untrained"]?["erase"]?["R1@0.3"], "the untrained control is evaluated under every mask")

        // The reported erase R1@0.3 on shifted, recomputed: the trained checkpoint's top windows on the shifted split
        // with each query's moment erased (mask-eval's default seed and batch size), scored by IoU here.
        let artifacts = root.appendingPathComponent("artifacts/stages")
        let loaded = try LoadedCheckpoint(url: artifacts.appendingPathComponent("train_td/checkpoint.tshard"))
        var shifted = try DatasetShards.readSplit(videos: artifacts.appendingPathComponent("ingest/shifted.videos.tshard"),
                                                  queries: artifacts.appendingPathComponent("ingest/shifted.queries.tshard"), name: "eval")
        shifted.name = "shifted"
        let defaults = try JSONValue.parse(Data(contentsOf: StageProcess.repositoryRoot.appendingPathComponent("stages/mask-eval.json")),
                                           source: "mask-eval.json")["params"]
        let erased = GroundTruthMask.erase.apply(to: shifted, seed: UInt64(try XCTUnwrap(defaults?["mask_seed"]?["default"]?.intValue)))
        let predictions = try loaded.trained.submission(for: erased, builder: BatchBuilder(maxClips: loaded.maxClips, maxTokens: loaded.maxTokens),
                                                        batchSize: try XCTUnwrap(defaults?["batch_size"]?["default"]?.intValue))
        XCTAssertEqual(predictions.count, 8)
        let hits = zip(predictions, erased.queries.windows).filter { prediction, windows in
            guard let top = prediction.windows?.first?.window else { return false }
            return windows.contains { w in
                let intersection = max(0, min(top.end, w[1]) - max(top.start, w[0]))
                return intersection / ((top.end - top.start) + (w[1] - w[0]) - intersection) >= 0.3
            }
        }.count
        let reported = try XCTUnwrap(summary["splits"]?["shifted"]?["trained"]?["erase"]?["R1@0.3"]?.doubleValue)
        XCTAssertEqual(reported, 100 * Double(hits) / 8, accuracy: 0.005)
    }
}

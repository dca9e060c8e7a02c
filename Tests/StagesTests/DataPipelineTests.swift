import Foundation
import PipelineDriver
import Retrieval
import Shards
import XCTest

/// The three data stages under the real driver, with the real stage files and executables: a small
/// project whose `stages` and `Sources` are the repository's, so code fingerprints are the real ones.
final class DataPipelineTests: XCTestCase {
    func writePipeline(_ root: URL, alpha: Double) throws {
        let text = """
            {"version": 1, "stages": {
              "ingest": {"uses": "stages/synthetic-benchmark.json",
                         "params": {"train_videos": 30, "val_videos": 6, "shifted_videos": 6, "video_dim": 16, "text_dim": 8}},
              "pairs": {"uses": "stages/pair-mining.json", "inputs": {"videos": "ingest/train.videos.tshard"}, "params": {"k": 3}},
              "synthesis": {"uses": "stages/video-synthesis.json", "params": {"alpha": \(alpha)},
                            "inputs": {"videos": "ingest/train.videos.tshard", "queries": "ingest/train.queries.tshard",
                                       "pairs": "pairs/pairs.tshard"}}
            }}
            """
        try text.write(to: root.appendingPathComponent("pipeline.json"), atomically: true, encoding: .utf8)
    }

    func run(_ root: URL) throws -> [String] {
        let pipeline = try Pipeline(pipelineFile: root.appendingPathComponent("pipeline.json"),
                                    artifacts: root.appendingPathComponent("artifacts"),
                                    binDirectory: StageProcess.productsDirectory, log: { _ in })
        var options = RunOptions()
        options.build = false
        return try pipeline.run(options)
    }

    func testParamChangeInSynthesisRerunsOnlySynthesis() throws {
        let root = try StageProcess.temporaryDirectory("data-pipeline", for: self)
        for link in ["stages", "Sources"] {
            try FileManager.default.createSymbolicLink(at: root.appendingPathComponent(link),
                                                       withDestinationURL: StageProcess.repositoryRoot.appendingPathComponent(link))
        }
        try writePipeline(root, alpha: 0.5)
        XCTAssertEqual(try run(root), ["ingest", "pairs", "synthesis"])

        let synthesized = root.appendingPathComponent("artifacts/stages/synthesis/synthesized.videos.tshard")
        XCTAssertEqual(try ShardReader(url: synthesized).meta["params"]?["alpha"], .number(0.5))
        let videos = try DatasetShards.readVideos(root.appendingPathComponent("artifacts/stages/ingest/train.videos.tshard"))
        XCTAssertEqual(videos.count, 30)

        try writePipeline(root, alpha: 0.3)
        XCTAssertEqual(try run(root), ["synthesis"])
        XCTAssertEqual(try ShardReader(url: synthesized).meta["params"]?["alpha"], .number(0.3),
                       "the workspace link points at the new output")
        XCTAssertEqual(try run(root), [], "an unchanged pipeline reruns nothing")
    }
}

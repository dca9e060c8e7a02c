import XCTest
@testable import Retrieval

/// VSDC on the fly: each batch query gets one sample built from its own video and its most similar
/// video of the same batch, with its moment kept whole.
final class InBatchSynthesisTests: XCTestCase {
    func testEachBatchQueryGetsOneSampleWithPartnerFromTheBatch() throws {
        var config = SyntheticBenchmark.Config()
        config.trainVideos = 12
        config.videoDim = 8
        config.textDim = 4
        let split = SyntheticBenchmark(config: config).split("train")
        let batch = [7, 2, 9, 4, 11]
        var synthesizer = VideoSynthesizer()
        synthesizer.alpha = 0.5
        synthesizer.seed = 3
        let out = try Trainer.synthesizeInBatch(split, queries: batch, synthesizer: synthesizer)
        XCTAssertEqual(out.queries.count, batch.count)
        for (i, q) in batch.enumerated() {
            XCTAssertEqual(out.queries.qids[i], split.queries.qids[q] + "_syn0")
            XCTAssertEqual(try out.queries.tokens(i), try split.queries.tokens(q), "the query text is the original's")
            // The partner is another video of the batch, named in the synthesized video's id.
            let parts = out.videos.vids[i].split(separator: "#")[0].split(separator: "+").map(String.init)
            XCTAssertEqual(parts[0], split.videos.vids[split.queries.videoIndex[q]])
            let batchVids = Set(batch.map { split.videos.vids[split.queries.videoIndex[$0]] })
            XCTAssertTrue(batchVids.contains(parts[1]) && parts[1] != parts[0], "partner \(parts[1]) is another video of the batch")
            // The moment survives whole: the window keeps its length.
            let original = split.queries.windows[q][0], moved = out.queries.windows[i][0]
            XCTAssertEqual(moved[1] - moved[0], original[1] - original[0], accuracy: 1e-9)
        }
        let again = try Trainer.synthesizeInBatch(split, queries: batch, synthesizer: synthesizer)
        XCTAssertEqual(try again.videos.allRows(), try out.videos.allRows(), "seeded: the same batch and seed give the same samples")
    }
}

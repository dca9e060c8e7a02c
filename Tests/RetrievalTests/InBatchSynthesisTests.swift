import XCTest
@testable import Retrieval

/// VSDC on the fly: each batch query gets one sample built from its own video and its most similar
/// video of the same batch, with its moment kept whole.
final class InBatchSynthesisTests: XCTestCase {
    func testEachBatchQueryGetsOneSampleWithTheMostSimilarVideoOfTheBatchAsPartner() throws {
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
        let d = split.videos.featureDim, width = split.videos.dim
        func clips(_ v: Int) throws -> [[Double]] {
            let rows = try split.videos.clips(v)
            return (0..<split.videos.length(v)).map { c in (0..<d).map { Double(rows[c * width + $0]) } }
        }
        func cosine(_ a: [Double], _ b: [Double]) -> Double {
            zip(a, b).map { $0 * $1 }.reduce(0, +) / (a.map { $0 * $0 }.reduce(0, +) * b.map { $0 * $0 }.reduce(0, +)).squareRoot()
        }
        XCTAssertEqual(out.queries.count, batch.count)
        for (i, q) in batch.enumerated() {
            XCTAssertEqual(out.queries.qids[i], split.queries.qids[q] + "_syn0")
            XCTAssertEqual(try out.queries.tokens(i), try split.queries.tokens(q), "the query text is the original's")
            // The partner, named in the synthesized video's id, is the batch's most similar other video by the
            // paper's similarity: the mean cosine over every pair of their clips (tef dims left out).
            let parts = out.videos.vids[i].split(separator: "#")[0].split(separator: "+").map(String.init)
            XCTAssertEqual(parts[0], split.videos.vids[split.queries.videoIndex[q]])
            let own = try clips(split.queries.videoIndex[q])
            let others = batch.filter { $0 != q }.map { split.queries.videoIndex[$0] }
            let similarities = try others.map { v -> Double in
                let theirs = try clips(v)
                var total = 0.0
                for a in own { for b in theirs { total += cosine(a, b) } }
                return total / Double(own.count * theirs.count)
            }
            let best = others[similarities.indices.max { similarities[$0] < similarities[$1] }!]
            XCTAssertEqual(parts[1], split.videos.vids[best], "query \(q): partner vs the most similar video of the batch")
            let runnerUp = similarities.sorted(by: >)[1]
            XCTAssertGreaterThan(similarities.max()! - runnerUp, 1e-4, "query \(q): the most similar video is unambiguous")
            // The moment survives whole: the window keeps its length.
            let original = split.queries.windows[q][0], moved = out.queries.windows[i][0]
            XCTAssertEqual(moved[1] - moved[0], original[1] - original[0], accuracy: 1e-9)
        }
        let again = try Trainer.synthesizeInBatch(split, queries: batch, synthesizer: synthesizer)
        XCTAssertEqual(try again.videos.allRows(), try out.videos.allRows(), "seeded: the same batch and seed give the same samples")
    }
}

/// One synthesizer serves the video-synthesis stage and the in-batch path: the same query, partner and seed
/// give the same sample either way.
final class SynthesisPathEquivalenceTests: XCTestCase {
    func testStageAndInBatchPathsGiveTheSameSampleForTheSameVideoPartnerAndSeed() throws {
        var config = SyntheticBenchmark.Config()
        config.trainVideos = 12
        config.videoDim = 8
        config.textDim = 4
        let split = SyntheticBenchmark(config: config).split("train")
        var synthesizer = VideoSynthesizer()
        synthesizer.seed = 11
        synthesizer.symmetric = false
        let pairs = try PairMiner(k: 1).mine(split.videos)
        let stage = try synthesizer.synthesize(split, pairs: pairs)
        XCTAssertEqual(stage.split.queries.count, split.queries.count)
        var compared = 0
        for q in [0, 3, 5, 8] {
            let video = split.queries.videoIndex[q], partner = Int(pairs.partners[video])
            let partnerQuery = split.queries.videoIndex.firstIndex(of: partner)!
            // In a batch of the query and its partner's query, the partner is the most similar video of the batch.
            let inBatch = try Trainer.synthesizeInBatch(split, queries: [q, partnerQuery], synthesizer: synthesizer)
            let s = stage.sourceQuery.firstIndex(of: Int32(q))!
            XCTAssertEqual(Int(stage.partnerVideo[s]), partner)
            XCTAssertEqual(try inBatch.videos.clips(0), try stage.split.videos.clips(s), "query \(q): the clips")
            XCTAssertEqual(inBatch.videos.durations[0], stage.split.videos.durations[s])
            XCTAssertEqual(inBatch.queries.windows[0], stage.split.queries.windows[s], "query \(q): the windows")
            let rows = { (set: QuerySet, i: Int) in Array(set.saliency[(set.clipOffsets[i] * 3)..<(set.clipOffsets[i + 1] * 3)]) }
            XCTAssertEqual(rows(inBatch.queries, 0), rows(stage.split.queries, s), "query \(q): the saliency")
            XCTAssertEqual(try inBatch.queries.tokens(0), try split.queries.tokens(q))
            compared += 1
        }
        XCTAssertEqual(compared, 4)
        // And another seed gives another sample, so the equality above is not vacuous.
        var other = synthesizer
        other.seed = 12
        let again = try other.synthesize(split, pairs: pairs)
        XCTAssertNotEqual(try again.split.videos.allRows(), try stage.split.videos.allRows())
    }
}

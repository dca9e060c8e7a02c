import Foundation
import Retrieval
import XCTest

/// Pair mining against brute force: the paper's double sum of clip cosines, and the authors' code's
/// top-k mean, each computed pair by pair in Float64.
final class PairMiningTests: XCTestCase {
    /// Ragged random videos; the two tef dims hold large values, so using them would change every score.
    static func randomVideos(count: Int, dim: Int, maxClips: Int = 9, seed: UInt64) -> VideoSet {
        var g = TestRandom(seed: seed)
        var v = VideoSet(vids: [], durations: [], clipLength: 2, featureDim: dim, tef: true, features: [], offsets: [0])
        for i in 0..<count {
            let length = Int.random(in: 1...maxClips, using: &g)
            var rows: [Float] = []
            for _ in 0..<length {
                // A shared direction makes scores positive and spread, as real features are.
                rows += (0..<dim).map { j in g.normal() + (j == 0 ? 1.5 : 0) } + [100 * g.normal(), 100 * g.normal()]
            }
            v.append(vid: "v\(i)", duration: Double(length) * 2, rows: rows)
        }
        return v
    }

    static func row(_ v: VideoSet, _ video: Int, _ clip: Int) -> [Double] {
        let start = clip * v.dim
        return try! v.clips(video)[start..<(start + v.featureDim)].map(Double.init)
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// `a_kj = 1/(L_k L_j) sum_i sum_j cos(v_k^i, v_j^j)`, literally.
    static func meanCosine(_ v: VideoSet) -> [[Double]] {
        let n = v.count
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for k in 0..<n {
            for j in 0..<n where j != k {
                var sum = 0.0
                for x in 0..<v.length(k) {
                    let p = row(v, k, x)
                    for y in 0..<v.length(j) {
                        let q = row(v, j, y)
                        sum += dot(p, q) / (dot(p, p).squareRoot() * dot(q, q).squareRoot())
                    }
                }
                a[k][j] = sum / Double(v.length(k) * v.length(j))
            }
        }
        return a
    }

    /// The authors' code's similarity: every video zero-padded to the longest, the `entries` largest entries of
    /// the padded clip-to-clip dot-product matrix, halved, summed and divided by `entries`.
    static func topkMean(_ v: VideoSet, entries: Int) -> [[Double]] {
        let n = v.count
        let longest = (0..<n).map { v.length($0) }.max()!
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for k in 0..<n {
            for j in 0..<n where j != k {
                var products: [Double] = []
                for x in 0..<longest {
                    for y in 0..<longest {
                        products.append(x < v.length(k) && y < v.length(j) ? dot(row(v, k, x), row(v, j, y)) : 0)
                    }
                }
                let top = products.map { $0 / 2 }.sorted(by: >).prefix(entries)
                a[k][j] = top.reduce(0, +) / Double(entries)
            }
        }
        return a
    }

    /// Checks each video's partners against brute-force similarities restricted to `candidates(i)`: the
    /// partners are the best ones in order (ties aside), their scores the brute-force values, and missing
    /// slots are -1 only when there are fewer than k candidates.
    func assertTopK(_ result: PairMiner.Result, similarity a: [[Double]], candidates: (Int) -> [Int], tolerance: Double = 2e-5,
                    file: StaticString = #filePath, line: UInt = #line) {
        let k = result.k
        for i in 0..<a.count {
            let ranked = candidates(i).filter { $0 != i }.sorted { a[i][$0] != a[i][$1] ? a[i][$0] > a[i][$1] : $0 < $1 }
            let partners = (0..<k).map { Int(result.partners[i * k + $0]) }
            let scores = (0..<k).map { Double(result.scores[i * k + $0]) }
            XCTAssertEqual(partners, (0..<k).map { $0 < ranked.count ? ranked[$0] : -1 }, "video \(i)", file: file, line: line)
            for j in 0..<k {
                if j < ranked.count {
                    XCTAssertEqual(scores[j], a[i][ranked[j]], accuracy: tolerance, "video \(i) rank \(j)", file: file, line: line)
                } else {
                    XCTAssertEqual(scores[j], -.infinity, file: file, line: line)
                }
            }
            // Robust to near-ties: what was returned is never beaten by what was left out.
            let kept = Set(partners)
            if let worst = scores.last, worst.isFinite, let better = ranked.first(where: { !kept.contains($0) }) {
                XCTAssertLessThanOrEqual(a[i][better], worst + tolerance, "video \(i)", file: file, line: line)
            }
        }
    }

    func testGlobalMeanCosineEqualsTheDoubleSumOfClipCosines() throws {
        let videos = Self.randomVideos(count: 41, dim: 6, seed: 11)
        let brute = Self.meanCosine(videos)
        for block in [7, 16, 2048] {
            var miner = PairMiner(k: 5)
            miner.scope = .global
            miner.block = block
            let result = try miner.mine(videos)
            XCTAssertEqual(result.batch, [Int32](repeating: 0, count: 41))
            assertTopK(result, similarity: brute, candidates: { _ in Array(0..<41) })
        }
    }

    func testSmallBlocksGiveTheSameResultAsOneBlock() throws {
        let videos = Self.randomVideos(count: 70, dim: 12, seed: 12)
        var miner = PairMiner(k: 4)
        miner.scope = .global
        let whole = try miner.mine(videos)
        miner.block = 9
        let blocked = try miner.mine(videos)
        XCTAssertEqual(blocked.partners, whole.partners)
        for (b, w) in zip(blocked.scores, whole.scores) { XCTAssertEqual(b, w, accuracy: 1e-6) }
    }

    func testBatchScopeFindsPartnersOnlyInsideTheBatch() throws {
        let n = 37
        let videos = Self.randomVideos(count: n, dim: 6, seed: 13)
        let brute = Self.meanCosine(videos)
        var miner = PairMiner(k: 5)
        miner.scope = .batch
        miner.batchSize = 8
        miner.seed = 3
        miner.block = 3
        let result = try miner.mine(videos)
        let batch = result.batch.map(Int.init)
        // A seeded shuffle cut into batches of 8: sizes 8, 8, 8, 8, 5.
        XCTAssertEqual((0..<5).map { b in batch.filter { $0 == b }.count }, [8, 8, 8, 8, 5])
        XCTAssertNotEqual(batch, (0..<n).map { $0 / 8 }, "batches come from a shuffle")
        // In the batch of 5 a video has only 4 candidates: its 5th slot stays empty.
        assertTopK(result, similarity: brute, candidates: { i in (0..<n).filter { batch[$0] == batch[i] } })
        for i in 0..<n { for j in 0..<5 where result.partners[i * 5 + j] >= 0 { XCTAssertEqual(batch[Int(result.partners[i * 5 + j])], batch[i]) } }

        var other = miner
        other.seed = 4
        XCTAssertNotEqual(try other.mine(videos).batch, result.batch, "another seed, other batches")
    }

    func testTopkMeanEqualsBruteForce() throws {
        let videos = Self.randomVideos(count: 12, dim: 5, maxClips: 8, seed: 14)
        for entries in [1, 5, 200] {
            var miner = PairMiner(k: 3)
            miner.scope = .global
            miner.similarity = .topkMean
            miner.topkEntries = entries
            // 200 is more than any pair's padded products: all of them, summed and divided by 200.
            assertTopK(try miner.mine(videos), similarity: Self.topkMean(videos, entries: entries), candidates: { _ in Array(0..<12) },
                       tolerance: 1e-4)
        }
    }

    func testTopkMeanInBatchScope() throws {
        let videos = Self.randomVideos(count: 20, dim: 5, maxClips: 6, seed: 15)
        var miner = PairMiner(k: 2)
        miner.scope = .batch
        miner.batchSize = 6
        miner.similarity = .topkMean
        miner.topkEntries = 4
        let result = try miner.mine(videos)
        let batch = result.batch.map(Int.init)
        assertTopK(result, similarity: Self.topkMean(videos, entries: 4), candidates: { i in (0..<20).filter { batch[$0] == batch[i] } },
                   tolerance: 1e-4)
    }
}

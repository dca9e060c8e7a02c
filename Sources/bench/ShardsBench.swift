import ArgumentParser
import CZstd
import Foundation
import Shards

/// Shard write and read throughput against bare zstd at the same level on the same bytes.
struct ShardsBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shards", abstract: "Shard write/read MB/s vs raw zstd.")

    @Option(help: "Videos in the benchmark shard (75 clips x 2818 dims each).")
    var videos = 64
    @Option(help: "zstd level.")
    var level: Int32 = 3
    @Option(help: "Timed repetitions (median reported).")
    var repeats = 5

    func run() throws {
        let clips = 75, dim = 2818
        // Feature-like data: per-video smooth structure plus small noise, stored as Float32 (about as
        // compressible as real pooled CNN features, which plain random floats are not).
        var rng = SystemRandomNumberGenerator()
        var values = [Float](repeating: 0, count: videos * clips * dim)
        var base = [Float](repeating: 0, count: dim)
        for v in 0..<videos {
            for d in 0..<dim { base[d] = Float.random(in: 0..<1, using: &rng) > 0.6 ? Float.random(in: 0..<2, using: &rng) : 0 }
            for c in 0..<clips {
                let row = (v * clips + c) * dim
                for d in 0..<dim where base[d] != 0 { values[row + d] = base[d] + Float(Int.random(in: -8...8, using: &rng)) / 64 }
            }
        }
        let offsets = (0...videos).map { Int64($0 * clips) }
        let rawBytes = Double(values.count * 4 + offsets.count * 8)
        let mb = rawBytes / 1e6
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-shards-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("features.tshard")

        var writer = ShardWriter(meta: ["split": "bench"], level: level)
        try writer.addRagged("features", values: values, offsets: offsets, dim: dim)
        let writeTime = try Measure.median(repeats: repeats) { try writer.write(to: url) }
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! NSNumber).doubleValue
        let readTime = try Measure.median(repeats: repeats) {
            let r = try ShardReader(url: url)
            _ = try r.readRagged("features")
        }
        let verifyTime = try Measure.median(repeats: repeats) { _ = try ShardReader(url: url).verify() }

        // Bare zstd, same level, same bytes, one frame per tensor as the shard stores them.
        var frames: [Data] = []
        let zstdWrite = try Measure.median(repeats: repeats) {
            frames = [try values.withUnsafeBytes { try Zstd.compress($0, level: level) },
                      try offsets.withUnsafeBytes { try Zstd.compress($0, level: level) }]
        }
        let zstdRead = try Measure.median(repeats: repeats) {
            _ = try frames[0].withUnsafeBytes { try Zstd.decompress($0, expectedSize: values.count * 4) }
            _ = try frames[1].withUnsafeBytes { try Zstd.decompress($0, expectedSize: offsets.count * 8) }
        }

        print("shard of \(videos) videos x \(clips) clips x \(dim) f32 = \(String(format: "%.1f", mb)) MB raw, "
              + "\(String(format: "%.1f", fileBytes / 1e6)) MB on disk (zstd level \(level)), median of \(repeats)")
        print("anchor: bare ZSTD_compress2 / ZSTD_decompress on the same buffers at the same level, no file I/O")
        print(String(format: "write  %.0f MB/s (atomic file: temp + fsync + rename, SHA-256 per tensor)   zstd alone %.0f MB/s", mb / writeTime, mb / zstdWrite))
        print(String(format: "read   %.0f MB/s (pread + decompress + zstd checksum)                        zstd alone %.0f MB/s", mb / readTime, mb / zstdRead))
        print(String(format: "verify %.0f MB/s (read + SHA-256 of every tensor)", mb / verifyTime))
        Measure.figure("shards.write.mb_s", mb / writeTime, "MB/s", digits: 0)
        Measure.figure("shards.read.mb_s", mb / readTime, "MB/s", digits: 0)
        Measure.figure("shards.verify.mb_s", mb / verifyTime, "MB/s", digits: 0)
        Measure.figure("shards.write.zstd_ratio", zstdWrite / writeTime, "x")
        Measure.figure("shards.read.zstd_ratio", zstdRead / readTime, "x")
    }
}

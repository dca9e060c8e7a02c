import ArgumentParser
import Foundation
import Retrieval
import Shards

/// `pair-mining`: every training video's top-k most similar other videos (its spurious pairs).
public struct PairMiningCommand: StageCommand {
    public static let stageName = "pair-mining"
    public static let configuration = CommandConfiguration(
        commandName: "pair-mining",
        abstract: "Mine each video's most similar videos (mean clip cosine as one blocked GEMM, running top-k).",
        discussion: "Input: --in videos=SPLIT.videos.tshard. Output: pairs.tshard (partners [N, k] i32, scores [N, k] f32, batch [N] i32).")

    public static let params: [ParamDecl] = [
        .integer("k", 5, min: 1, "partners kept per video"),
        .string("scope", "batch", choices: PairMiner.Scope.allCases.map(\.rawValue),
                "global: partners from the whole split; batch: only from the same seeded training batch (the paper)"),
        .integer("batch_size", 32, min: 2, "batch size of the batch scope"),
        .integer("seed", 1, min: 0, "seed of the batch sampler"),
        .string("similarity", "mean-cosine", choices: PairMiner.Similarity.allCases.map(\.rawValue),
                "mean-cosine: the paper's mean clip-pair cosine; topk-mean: the authors' code's mean of the top-50 clip dot products / 2"),
        .integer("topk_entries", 50, min: 1, "entries averaged by topk-mean"),
        .integer("block", 2048, min: 16, "rows/columns per GEMM block (memory O(block^2))"),
    ]
    public static let inputRoles = ["videos"]

    @OptionGroup public var io: StageIO

    public init() {}

    public func execute(_ p: StageParams, outputs: StageOutputs) throws {
        let videos = try DatasetShards.readVideos(try io.input("videos", stage: "pair-mining"))
        var miner = PairMiner(k: min(p.int("k"), max(1, videos.count - 1)))
        miner.scope = PairMiner.Scope(rawValue: p.string("scope"))!
        miner.batchSize = p.int("batch_size")
        miner.seed = UInt64(p.int("seed"))
        miner.similarity = PairMiner.Similarity(rawValue: p.string("similarity"))!
        miner.topkEntries = p.int("topk_entries")
        miner.block = p.int("block")
        let progress = Progress("pair-mining rows", total: videos.count)
        let start = Date()
        let result = try miner.mine(videos) { done, _ in progress.update(min(done, videos.count)) }
        var w = ShardWriter(meta: ["kind": "pairs", "vids": .array(videos.vids.map { .string($0) }), "k": .number(Double(result.k)),
                                   "params": p.json])
        try w.add("partners", result.partners, shape: [videos.count, result.k])
        try w.add("scores", result.scores, shape: [videos.count, result.k])
        try w.add("batch", result.batch, shape: [videos.count])
        try outputs.write(w, as: "pairs.tshard")
        print(String(format: "pairs: %d videos, top-%d %@ partners (%@ scope) in %.2f s", videos.count, result.k,
                     miner.similarity.rawValue, miner.scope.rawValue, Date().timeIntervalSince(start)))
    }

    /// Reads a pairs shard, checking it matches the videos it is used with.
    public static func readPairs(_ url: URL, videos: VideoSet) throws -> PairMiner.Result {
        let r = try ShardReader(url: url)
        guard r.meta["kind"]?.stringValue == "pairs" else { throw StageError("\(url.path): not a pairs shard") }
        let (partners, shape) = try r.read("partners", as: Int32.self)
        guard shape.count == 2, shape[0] == videos.count else {
            throw StageError("\(url.path): pairs cover \(shape.first ?? 0) videos, the video shard has \(videos.count)")
        }
        if let vids = r.meta["vids"]?.arrayValue?.compactMap(\.stringValue), vids != videos.vids {
            throw StageError("\(url.path): pairs were mined on other videos than the given video shard")
        }
        for p in partners where p < -1 || Int(p) >= videos.count {
            throw StageError("\(url.path): partner index \(p) is outside 0..<\(videos.count)")
        }
        return PairMiner.Result(k: shape[1], partners: partners, scores: try r.read("scores", as: Float.self).values,
                                batch: try r.read("batch", as: Int32.self).values)
    }
}

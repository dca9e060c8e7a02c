import ArgumentParser
import Foundation
import Retrieval
import Shards

/// `video-synthesis`: TD-DETR's synthesized training samples with dynamic context.
public struct VideoSynthesisCommand: StageCommand {
    public static let stageName = "video-synthesis"
    public static let configuration = CommandConfiguration(
        commandName: "video-synthesis",
        abstract: "Compose new training videos from each video and its spurious partner, keeping the target moment intact.",
        discussion: """
            Inputs: --in videos=train.videos.tshard --in queries=train.queries.tshard --in pairs=pairs.tshard. \
            Outputs: synthesized.videos.tshard (provenance, not features: [clips, 2] = source video, source clip \
            of every synthesized clip) and synthesized.queries.tshard (windows, saliency, source query); train \
            gathers the clips from the training split when it reads a batch.
            """)

    public static let params: [ParamDecl] = [
        .number("alpha", 0.5, min: 0, max: 1, "keep rate of the focus video's non-ground-truth clips (the partner's: 1 - alpha)"),
        .integer("variants", 1, min: 1, "synthesized samples per training query"),
        .boolean("symmetric", true, "also synthesize the sample focused on the partner's moment"),
        .integer("seed", 1, min: 0, "seed of the clip sampling"),
        .string("partner_filter", "none", choices: VideoSynthesizer.PartnerFilter.allCases.map(\.rawValue),
                "shared-event: skip partners whose queries share the query's event (synthetic) or a content word (real)"),
        .integer("max_clips", 75, min: 1, "longest synthesized video (max_v_l)"),
    ]
    public static let inputRoles = ["videos", "queries", "pairs"]

    @OptionGroup public var io: StageIO

    public init() {}

    public func execute(_ p: StageParams, outputs: StageOutputs) throws {
        let stage = Self.stageName
        let split = try DatasetShards.readSplit(videos: try io.input("videos", stage: stage),
                                                queries: try io.input("queries", stage: stage), name: "train")
        let pairs = try PairMiningCommand.readPairs(try io.input("pairs", stage: stage), videos: split.videos)
        var synth = VideoSynthesizer()
        synth.alpha = p.double("alpha")
        synth.variants = p.int("variants")
        synth.symmetric = p.bool("symmetric")
        synth.seed = UInt64(p.int("seed"))
        synth.filter = VideoSynthesizer.PartnerFilter(rawValue: p.string("partner_filter"))!
        synth.maxClips = p.int("max_clips")
        let progress = Progress("synthesis queries", total: split.queries.count)
        let out = try synth.synthesize(split, pairs: pairs) { done, _ in progress.update(done) }
        guard out.split.queries.count > 0 else {
            throw StageError("\(stage): no sample could be synthesized (every partner excluded by partner_filter=\(synth.filter.rawValue))")
        }
        let rateKey = split.queries.eventType != nil ? "partner_shares_event_rate" : "partner_shares_words_rate"
        var meta = p.json.objectValue!
        meta[rateKey] = .number(out.sharedEventRate)
        meta["skipped_queries"] = .number(Double(out.skipped))
        let echo = JSONValue.object(meta)
        let shards = try DatasetShards.synthesizedShards(out, base: split, params: echo)
        try outputs.write(shards.videos, as: "synthesized.videos.tshard")
        try outputs.write(shards.queries, as: "synthesized.queries.tshard")
        print(String(format: "synthesized %d samples from %d queries (%d skipped); partners share the query's %@: %.1f%%",
                     out.split.queries.count, split.queries.count, out.skipped,
                     split.queries.eventType != nil ? "event" : "content words", 100 * out.sharedEventRate))
    }
}

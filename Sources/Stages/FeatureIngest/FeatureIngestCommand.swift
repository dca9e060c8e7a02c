import ArgumentParser
import Foundation
import Retrieval
import Shards

/// `feature-ingest`: turns a dataset into per-split video and query shards plus the split's ground truth
/// in the QVHighlights annotation format.
public struct FeatureIngestCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "feature-ingest",
        abstract: "Ingest a dataset into video/query shards and annotation jsonl per split.",
        subcommands: [SyntheticIngest.self, FolderIngest.self, LayoutExport.self])

    public init() {}

    /// Streams a split into `SPLIT.videos.tshard` and `SPLIT.queries.tshard` record by record (`produce` feeds
    /// the writer and returns the split's description), then writes `SPLIT.annotations.jsonl` from the shards.
    static func stream(_ name: String, params: JSONValue, to outputs: StageOutputs,
                       produce: (SplitShardWriter) throws -> SplitInfo) throws {
        let videosURL = outputs.streamed("\(name).videos.tshard"), queriesURL = outputs.streamed("\(name).queries.tshard")
        let writer = try SplitShardWriter(split: name, videos: videosURL, queries: queriesURL, params: params)
        do {
            try writer.finish(try produce(writer))
        } catch {
            writer.abandon()
            throw error
        }
        let split = try DatasetShards.readSplit(videos: videosURL, queries: queriesURL, name: name)
        try outputs.write(Data((split.annotationLines().joined(separator: "\n") + "\n").utf8), as: "\(name).annotations.jsonl")
        print("\(name): \(split.videos.count) videos, \(split.queries.count) queries, "
              + "\(split.videos.offsets.last!) clips of \(split.videos.dim) dims, text \(split.queries.textDim) dims")
    }
}

/// The synthetic spurious-correlation benchmark (the embedded default dataset).
public struct SyntheticIngest: StageCommand {
    public static let stageName = "feature-ingest synthetic"
    public static let configuration = CommandConfiguration(
        commandName: "synthetic",
        abstract: "Generate the synthetic spurious-correlation benchmark (train, val, shifted) from a seed.")

    public static let params: [ParamDecl] = [
        .integer("seed", 1, min: 0, "generator seed; the same seed gives the same bytes"),
        .integer("train_videos", 500, min: 1, "videos (one query each) in train"),
        .integer("val_videos", 150, min: 1, "videos in val (same distribution as train)"),
        .integer("shifted_videos", 150, min: 1, "videos in shifted (the event away from its usual scene, a decoy scene elsewhere)"),
        .integer("min_clips", 16, min: 8, max: 75, "shortest video, in 2-s clips"),
        .integer("max_clips", 40, min: 8, max: 75, "longest video, in 2-s clips"),
        .integer("video_dim", 64, min: 4, "clip feature dims (QVHighlights: 2816, plus 2 tef)"),
        .integer("text_dim", 32, min: 4, "token feature dims (QVHighlights: 512)"),
        .integer("scenes", 8, min: 2, "number of scene types"),
        .integer("events", 8, min: 2, "number of event types"),
        .number("rho", 0.9, min: 0, max: 1, "probability that an event happens in its correlated scene (train/val)"),
        .boolean("tef", true, "append temporal endpoint features [t/L, (t+1)/L]"),
        .number("clip_noise", 0.05, min: 0, "per-dim noise of a clip around its scene vector"),
        .number("event_appearance", 0.3, min: 0, "strength of an event's static appearance"),
        .number("event_motion", 0.8, min: 0, "amplitude of an event's motion (what clip differences see)"),
        .number("text_noise", 0.1, min: 0, "noise of token vectors around their word vectors"),
    ]
    public static let inputRoles: [String] = []

    @OptionGroup public var io: StageIO

    public init() {}

    public func execute(_ p: StageParams, outputs: StageOutputs) throws {
        guard p.int("min_clips") <= p.int("max_clips") else {
            throw StageError("feature-ingest synthetic: min_clips \(p.int("min_clips")) is above max_clips \(p.int("max_clips"))")
        }
        var c = SyntheticBenchmark.Config()
        c.seed = UInt64(p.int("seed"))
        c.trainVideos = p.int("train_videos")
        c.valVideos = p.int("val_videos")
        c.shiftedVideos = p.int("shifted_videos")
        c.minClips = p.int("min_clips")
        c.maxClips = p.int("max_clips")
        c.videoDim = p.int("video_dim")
        c.textDim = p.int("text_dim")
        c.scenes = p.int("scenes")
        c.events = p.int("events")
        c.rho = p.double("rho")
        c.tef = p.bool("tef")
        c.clipNoise = p.float("clip_noise")
        c.eventAppearance = p.float("event_appearance")
        c.eventMotion = p.float("event_motion")
        c.textNoise = p.float("text_noise")
        let benchmark = SyntheticBenchmark(config: c)
        for name in ["train", "val", "shifted"] {
            try FeatureIngestCommand.stream(name, params: p.json, to: outputs) { writer in
                writer.setWidths(video: c.videoDim + (c.tef ? 2 : 0), text: c.textDim)
                var sink = writer
                let progress = Progress("\(name) videos", total: benchmark.count(name))
                try benchmark.generate(name, into: &sink) { done, _ in progress.update(done) }
                return benchmark.info
            }
        }
    }
}

/// A real dataset in the public feature-folder layout (QVHighlights, Charades-STA, TACoS).
public struct FolderIngest: StageCommand {
    public static let stageName = "feature-ingest folders"
    public static let configuration = CommandConfiguration(
        commandName: "folders",
        abstract: "Ingest annotation jsonl + per-video .npz feature folders + per-query text .npz features.",
        discussion: """
            Inputs: --in annotations=DIR (the jsonl files named in `splits`), --in video_features=DIR (one per \
            feature family, in concatenation order, each holding {vid}.npz with key 'features'), \
            --in text_features=DIR (qid{qid}.npz with key 'last_hidden_state').
            """)

    public static let params: [ParamDecl] = [
        .string("splits", "train:highlight_train_release.jsonl,val:highlight_val_release.jsonl",
                "comma-separated SPLIT:FILE pairs, FILE inside the annotations folder"),
        .number("clip_length", 2, min: 0.1, "seconds per feature row (QVHighlights, TACoS: 2; Charades-STA: 1)"),
        .integer("max_clips", 75, min: 1, "clips kept per video (max_v_l)"),
        .integer("max_tokens", 32, min: 1, "tokens kept per query (max_q_l)"),
        .boolean("tef", true, "append temporal endpoint features [t/L, (t+1)/L]"),
        .string("video_file_pattern", "{vid}.npz", "file name of a video's features inside each family folder"),
        .string("text_file_pattern", "qid{qid}.npz", "file name of a query's text features"),
    ]
    public static let inputRoles = ["annotations", "video_features", "text_features"]

    @OptionGroup public var io: StageIO

    public init() {}

    public func execute(_ p: StageParams, outputs: StageOutputs) throws {
        let stage = Self.stageName
        let annotationDir = try io.input("annotations", stage: stage)
        let families = try io.inputs("video_features")
        guard !families.isEmpty else { throw StageError("\(stage): needs at least one --in video_features=DIR") }
        for f in families where !FileManager.default.fileExists(atPath: f.path) {
            throw StageError("\(f.path): no such folder (input 'video_features')")
        }
        var config = FeatureFolderIngest.Config(videoFamilies: families, textFolder: try io.input("text_features", stage: stage))
        config.clipLength = p.double("clip_length")
        config.maxClips = p.int("max_clips")
        config.maxTokens = p.int("max_tokens")
        config.tef = p.bool("tef")
        config.videoFilePattern = p.string("video_file_pattern")
        config.textFilePattern = p.string("text_file_pattern")
        let ingest = FeatureFolderIngest(config: config)
        for item in p.string("splits").split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw StageError("\(stage): param 'splits' entry '\(item)' is not SPLIT:FILE")
            }
            let file = annotationDir.appendingPathComponent(parts[1])
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw StageError("\(file.path): annotation file not found (split \(parts[0]))")
            }
            try FeatureIngestCommand.stream(parts[0], params: p.json, to: outputs) { writer in
                var sink = writer
                let progress = Progress("\(parts[0]) annotations", total: 1)
                return try ingest.ingest(annotations: file, into: &sink, widths: { writer.setWidths(video: $0, text: $1) }) { done, total in
                    progress.update(done, total: total)
                }
            }
        }
    }
}

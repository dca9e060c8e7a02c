import ArgumentParser
import Foundation
import NN
import Retrieval
import Shards
import Tensor

/// `mask-eval run`: a checkpoint's predictions and metrics on evaluation splits, unmasked and with the
/// ground-truth clips masked (zero and erase), next to the same architecture with its initial weights.
public struct RunCommand: StageCommand {
    public static let stageName = "mask-eval run"
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Evaluate a checkpoint with and without masking the ground-truth clips, with an untrained control.",
        discussion: """
            Inputs: --in checkpoint=checkpoint.tshard (from train), and one or more splits as pairs \
            --in videos=SPLIT.videos.tshard --in queries=SPLIT.queries.tshard (same order). Outputs: \
            predictions.jsonl (the first split, unmasked, QVHighlights submission format), metrics.json \
            (per split, the official metrics of the unmasked predictions) and summary.json (per split and \
            weights: unmasked and masked summaries, the gIoU loss, the query-grounding diagnostic).
            """)

    public static let params: [ParamDecl] = [
        .string("masks", "zero,erase", "comma-separated masks to evaluate: zero (the paper's), erase (context kept)"),
        .integer("batch_size", 64, min: 1, "evaluation batch size"),
        .integer("threads", 0, min: 0, "threads (0: the cores this process may use: its affinity mask, or its share under pipeline run --jobs N)"),
        .integer("mask_seed", 7, min: 0, "seed of the erase mask's noise"),
    ]
    public static let inputRoles = ["checkpoint", "videos", "queries"]

    @OptionGroup public var io: StageIO

    public init() {}

    public func execute(_ p: StageParams, outputs: StageOutputs) throws {
        let stage = Self.stageName
        Parallelism.setThreadCount(p.int("threads") == 0 ? Parallelism.availableCores() : p.int("threads"))
        let masks = try p.string("masks").split(separator: ",").map { name -> GroundTruthMask in
            guard let m = GroundTruthMask(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw StageError("\(stage): param 'masks' names an unknown mask '\(name)' (known: zero, erase)")
            }
            return m
        }
        let checkpoint = try io.input("checkpoint", stage: stage)
        let videos = try io.inputs("videos"), queries = try io.inputs("queries")
        guard !videos.isEmpty, videos.count == queries.count else {
            throw StageError("\(stage): give splits as pairs of --in videos= and --in queries= (got \(videos.count) and \(queries.count))")
        }
        let loaded = try LoadedCheckpoint(url: checkpoint)
        let builder = BatchBuilder(maxClips: loaded.maxClips, maxTokens: loaded.maxTokens)
        let weights: [(String, any MomentModel)] = [("trained", loaded.trained), ("untrained", loaded.untrained)]

        var summary: [String: JSONValue] = ["model": .string(loaded.label), "params": loaded.params,
                                            "synthesis": loaded.synthesis, "dataset": loaded.dataset,
                                            "masks": .array(masks.map { .string($0.rawValue) })]
        var splits: [String: JSONValue] = [:]
        var metricsFiles: [String] = []
        var submission = ""
        // Top-1 windows of the first split's first queries, per weights and mask, for the report's timeline.
        var exampleTop: [String: [String: [MomentPrediction]]] = [:]
        var exampleSplit: MomentSplit?
        for (index, (videosURL, queriesURL)) in zip(videos, queries).enumerated() {
            let split = try DatasetShards.readSplit(videos: videosURL, queries: queriesURL, name: "eval")
            let name = try ShardReader(url: videosURL).meta["split"]?.stringValue ?? "split\(index)"
            var named = split
            named.name = name
            guard split.videos.dim == loaded.videoWidth, split.queries.textDim == loaded.textWidth else {
                throw StageError("\(videosURL.path): features are \(split.videos.dim)/\(split.queries.textDim)-d, the checkpoint expects \(loaded.videoWidth)/\(loaded.textWidth)")
            }
            var perWeights: [String: JSONValue] = [:]
            for (label, model) in weights {
                let predictions = try model.submission(for: named, builder: builder, batchSize: p.int("batch_size"))
                if index == 0 {
                    exampleSplit = named
                    exampleTop[label, default: [:]]["none"] = Array(predictions.prefix(Self.exampleCount))
                }
                let (plain, metricsJSON) = try RetrievalSummary.evaluate(predictions, split: named)
                var entry: [String: JSONValue] = ["none": Self.json(plain),
                                                  "giou_loss": .number(SpanDiagnostics.meanGIoULoss(predictions, split: named))]
                var perQuery: [String: JSONValue] = ["none": Self.array(SpanDiagnostics.topOneIoUs(predictions, split: named))]
                if let g = SpanDiagnostics.queryGrounding(predictions, split: named) {
                    entry["grounding"] = ["queried": .number(g.queried), "distractor": .number(g.distractor), "neither": .number(g.neither)]
                }
                for mask in masks {
                    let masked = mask.apply(to: named, seed: UInt64(p.int("mask_seed")))
                    let maskedPredictions = try model.submission(for: masked, builder: builder, batchSize: p.int("batch_size"))
                    let (m, _) = try RetrievalSummary.evaluate(maskedPredictions, split: masked)
                    if index == 0 { exampleTop[label, default: [:]][mask.rawValue] = Array(maskedPredictions.prefix(Self.exampleCount)) }
                    entry[mask.rawValue] = Self.json(m)
                    perQuery[mask.rawValue] = Self.array(SpanDiagnostics.topOneIoUs(maskedPredictions, split: masked))
                    if let g = SpanDiagnostics.queryGrounding(maskedPredictions, split: masked) {
                        entry["grounding_\(mask.rawValue)"] = ["queried": .number(g.queried), "distractor": .number(g.distractor),
                                                               "neither": .number(g.neither)]
                    }
                }
                // Per query, the top-1 window's IoU with the ground truth (split order), for the report's
                // per-query bootstrap.
                entry["top1_iou"] = .object(perQuery)
                perWeights[label] = .object(entry)
                if label == "trained" {
                    metricsFiles.append("\"\(name)\": " + metricsJSON.replacingOccurrences(of: "\n", with: "\n    "))
                    if index == 0 { submission = SubmissionWriter.jsonl(predictions) }
                    print("\(name) \(label): " + plain.values.map { "\($0.key) \($0.value.map { String(format: "%.2f", $0) } ?? "-")" }.joined(separator: "  "))
                }
            }
            splits[name] = .object(perWeights)
        }
        summary["splits"] = .object(splits)
        if let split = exampleSplit { summary["examples"] = Self.examples(split, top: exampleTop) }
        summary["resources"] = ProcessResources.current().json
        try outputs.write(Data(submission.utf8), as: "predictions.jsonl")
        try outputs.write(Data(("{\n    " + metricsFiles.joined(separator: ",\n    ") + "\n}\n").utf8), as: "metrics.json")
        try outputs.write(Data((JSONValue.object(summary).pretty + "\n").utf8), as: "summary.json")
    }

    static let exampleCount = 6

    /// Per example query: duration, ground truth, distractor (synthetic), and each top-1 window.
    static func examples(_ split: MomentSplit, top: [String: [String: [MomentPrediction]]]) -> JSONValue {
        .array((0..<min(exampleCount, split.queries.count)).map { q in
            var o: [String: JSONValue] = [
                "qid": .string(split.queries.qids[q]), "query": .string(split.queries.texts[q]),
                "duration": .number(split.videos.durations[split.queries.videoIndex[q]]),
                "gt": .array(split.queries.windows[q].map { .array($0.map { .number($0) }) }),
            ]
            if let d = split.queries.distractorWindows { o["distractor"] = .array(d[q].map { .number($0) }) }
            var predicted: [String: JSONValue] = [:]
            for (label, masks) in top {
                var m: [String: JSONValue] = [:]
                for (mask, predictions) in masks {
                    if let w = predictions[q].windows?.first { m[mask] = [.number(w.window.start), .number(w.window.end), .number(w.score)] }
                }
                predicted[label] = .object(m)
            }
            o["top1"] = .object(predicted)
            return .object(o)
        })
    }

    /// Values as a JSON array, unrounded (a rounded IoU could cross a threshold the official numbers do not).
    static func array(_ values: [Double]) -> JSONValue { .array(values.map { .number($0) }) }

    static func json(_ s: RetrievalSummary) -> JSONValue {
        var o: [String: JSONValue] = [:]
        for (k, v) in s.values { o[k] = v.map { .number($0) } ?? .null }
        return .object(o)
    }
}

/// A train-stage checkpoint with its model rebuilt: the trained weights, and the same architecture with the
/// initial weights of that run (the untrained control).
struct LoadedCheckpoint {
    let params: JSONValue
    let synthesis: JSONValue
    /// The feature-ingest params of the data the model was trained on (null for checkpoints that lack them).
    let dataset: JSONValue
    let trained: any MomentModel
    let untrained: any MomentModel
    let videoWidth: Int
    let textWidth: Int
    let maxClips: Int
    let maxTokens: Int

    var label: String { params["model"]?.stringValue ?? "model" }

    init(url: URL) throws {
        let meta = try ShardReader(url: url).meta
        guard let extra = meta["extra"], let configJSON = extra["model_config"], let params = extra["params"] else {
            throw StageError("\(url.path): not a train-stage checkpoint (meta.extra lacks model_config/params)")
        }
        self.params = params
        synthesis = extra["synthesis"] ?? .null
        dataset = extra["dataset"] ?? .null
        let built = try TrainCommand.buildModels(model: params["model"]?.stringValue ?? "", configJSON: configJSON,
                                                 seed: UInt64(params["seed"]?.intValue ?? 0), count: 2, file: url.path)
        trained = built.models[0]
        untrained = built.models[1]
        videoWidth = built.videoWidth
        textWidth = built.textWidth
        _ = try Checkpoint.load(from: url, into: trained, optimizer: nil)
        maxClips = extra["max_clips"]?.intValue ?? 75
        maxTokens = extra["max_tokens"]?.intValue ?? 32
    }
}

import Foundation
import NN
import Retrieval
import Shards
import Tensor

/// The epoch loop of the train stage: train, evaluate on val, log, keep the best checkpoint, and save a
/// resumable state at every epoch end.
struct TrainingRun {
    let trainer: Trainer
    let params: StageParams
    /// The video-synthesis params behind the VSDC samples (null without VSDC), echoed for the report.
    let synthesisParams: JSONValue
    /// The feature-ingest params behind the train split (null when its shard has none), echoed for the report.
    let datasetParams: JSONValue
    /// The model's configuration (what mask-eval needs to rebuild it), echoed into every checkpoint.
    let modelConfig: JSONValue
    let val: MomentSplit
    let outputs: StageOutputs
    let resumeDir: String?

    /// Processes training together (`mpirun -np N`), 1 without MPI.
    var ranks: Int { trainer.dataParallel?.size ?? 1 }
    /// Whether this process writes outputs and the resumable state: rank 0 alone of several.
    var writes: Bool { (trainer.dataParallel?.rank ?? 0) == 0 }

    /// The selection metric: MR-full-mAP for QVHighlights-style data, R1@0.5 for grounding data.
    func score(_ predictions: [MomentPrediction]) throws -> (value: Double, name: String, json: String, brief: JSONValue) {
        let annotations = val.annotationLines().joined(separator: "\n")
        let gt = try MomentJSONL.parseAnnotations(Data(annotations.utf8), source: "val annotations")
        if val.queries.hasSaliency {
            let m = try QVHighlightsEvaluator(options: .init(includeExtendedRecall: true)).evaluate(predictions: predictions, annotations: gt)
            return (m.tree()["brief"]?["MR-full-mAP"]?.number ?? 0, "MR-full-mAP", m.jsonString(), Self.json(m.tree()["brief"]))
        }
        let m = try GroundingMetrics.evaluate(predictions: predictions, annotations: gt, options: .init())
        return (m.recall(rank: 1, threshold: 0.5) ?? 0, "R1@0.5", m.jsonString(), Self.json(m.tree()))
    }

    /// A metrics tree as plain JSON values; an empty bucket (NaN) becomes null.
    static func json(_ tree: MetricsTree?) -> JSONValue {
        guard let tree else { return .null }
        if let n = tree.number { return n.isFinite ? .number(n) : .null }
        var o: [String: JSONValue] = [:]
        for key in tree.keys { o[key] = json(tree[key]) }
        return .object(o)
    }

    func run() throws {
        let epochs = trainer.config.epochs
        let resume = resumeDir.map { URL(fileURLWithPath: $0) }
        let stateURL = resume?.appendingPathComponent("state.tshard")
        let bestURL = resume?.appendingPathComponent("best.tshard") ?? outputs.url(".best-in-progress.tshard")
        var progress = TrainingProgress(epoch: 0, step: 0, bestEpoch: -1, bestScore: -.infinity, log: [])
        var bestMetrics = ""

        if let stateURL, let saved = try loadState(stateURL, best: bestURL) {
            let meta = saved.meta
            trainer.context.generator = saved.generator
            progress.step = saved.step
            progress.epoch = meta["epoch"]?.intValue ?? 0
            progress.bestEpoch = meta["best_epoch"]?.intValue ?? -1
            progress.bestScore = meta["best_score"]?.doubleValue ?? -.infinity
            progress.log = meta["log"]?.arrayValue ?? []
            bestMetrics = meta["best_metrics"]?.stringValue ?? ""
            print("resuming after epoch \(progress.epoch) of \(epochs) from \(stateURL.path)")
        }
        if let resume, writes { try FileManager.default.createDirectory(at: resume, withIntermediateDirectories: true) }

        if ranks > 1, !writes {
            try trainOnly(from: progress)
            return
        }
        print("train: \(params.string("model")), \(trainer.model.parameterCount) parameters, "
              + "\(trainer.stepsPerEpoch) steps/epoch x \(epochs) epochs, \(Parallelism.threadCount) threads"
              + (ranks > 1 ? " x \(ranks) MPI ranks" : ""))
        while progress.epoch < epochs {
            let epoch = progress.epoch
            let started = Date()
            let bar = Progress("epoch \(epoch + 1)/\(epochs)", total: trainer.stepsPerEpoch)
            let losses = try trainer.trainEpoch(epoch) { step, loss in
                bar.update(step, note: String(format: "loss %.4f", loss))
            }
            progress.step += trainer.stepsPerEpoch
            let trained = Date()
            // Val is scored every `eval_every` epochs, as the reference's eval_epoch_interval, and after the last
            // epoch so that every run has a best checkpoint.
            let evaluates = Self.evaluates(epoch: epoch + 1, every: params.int("eval_every"), of: epochs)
            let metrics = evaluates ? try score(try trainer.predict(val)) : nil
            let seconds = Date().timeIntervalSince(started)
            let lossJSON: [String: JSONValue] = losses.mapValues { JSONValue.number($0) }
            var entry: [String: JSONValue] = [
                "epoch": .number(Double(epoch + 1)), "lr": .number(Double(trainer.optimizer.learningRate)),
                "seconds": .number((seconds * 1000).rounded() / 1000), "loss": .object(lossJSON),
                "train_seconds": .number((trained.timeIntervalSince(started) * 1000).rounded() / 1000),
                "params": params.json, "resources": ProcessResources.current().json,
            ]
            if datasetParams != .null { entry["dataset"] = datasetParams }
            if let metrics { entry["val"] = metrics.brief }
            progress.log.append(.object(entry))
            let total: Double = losses["loss_total"] ?? Double.nan
            print(String(format: "epoch %d/%d  loss %.4f  %@  %.1fs", epoch + 1, epochs, total,
                         metrics.map { String(format: "val %@ %.2f", $0.name, $0.value) } ?? "(no val)", seconds))
            progress.epoch += 1
            var best = (epoch: progress.bestEpoch, score: progress.bestScore)
            if let metrics, Self.updateBest(&best, epoch: epoch + 1, score: metrics.value) {
                (progress.bestEpoch, progress.bestScore) = best
                bestMetrics = metrics.json
                try Checkpoint.save(module: trainer.model, optimizer: nil, step: progress.step, generator: trainer.context.generator,
                                    extra: extra(progress), to: bestURL)
            }
            if let stateURL {
                var meta: [String: JSONValue] = extra(progress).objectValue ?? [:]
                meta["log"] = JSONValue.array(progress.log)
                meta["best_metrics"] = JSONValue.string(bestMetrics)
                try Checkpoint.save(module: trainer.model, optimizer: trainer.optimizer, step: progress.step,
                                    generator: trainer.context.generator, extra: .object(meta), to: stateURL)
            }
        }

        try Checkpoint.save(module: trainer.model, optimizer: trainer.optimizer, step: progress.step,
                            generator: trainer.context.generator, extra: extra(progress), to: outputs.url("last.tshard"))
        try outputs.adopt(bestURL, as: "checkpoint.tshard", keepSource: resume != nil)
        try outputs.adopt(outputs.url("last.tshard"), as: "last.tshard", keepSource: false)
        try outputs.write(Data((progress.log.map { (entry: JSONValue) in entry.canonical }.joined(separator: "\n") + "\n").utf8), as: "log.jsonl")
        try outputs.write(Data(bestMetrics.utf8), as: "val_metrics.json")
        print("best epoch \(progress.bestEpoch): val \(progress.bestScore)")
    }

    /// The epochs of a rank other than 0: the same steps as rank 0 (whose all-reduces it joins), writing nothing
    /// and scoring no val (rank 0 keeps the best checkpoint; every rank holds the same parameters).
    func trainOnly(from start: TrainingProgress) throws {
        for epoch in start.epoch..<trainer.config.epochs {
            _ = try trainer.trainEpoch(epoch) { _, _ in }
        }
    }

    /// Loads the state saved at the last epoch end into the trainer and returns its step, generator and
    /// meta; nil when there is none. A state that cannot be read (damaged on disk, or of another model or
    /// an impossible epoch), or whose best checkpoint is missing or damaged, is set aside with a warning and
    /// training restarts clean: a damaged file in a scratch directory must not fail every rerun. A state of
    /// other params is refused instead, since it is someone's choice of `--resume-dir`. Nothing is loaded
    /// into the model before the state and the best checkpoint have been checked.
    func loadState(_ stateURL: URL, best bestURL: URL) throws -> (step: Int, generator: SeededGenerator, meta: JSONValue)? {
        guard FileManager.default.fileExists(atPath: stateURL.path) else { return nil }
        let extra: JSONValue
        do {
            extra = try ShardReader(url: stateURL).meta["extra"] ?? .null
        } catch {
            try setAside([(stateURL, "\(error)")])
            return nil
        }
        // The rank count is compared on its own below, for a message that says how to resume.
        func withoutRanks(_ value: JSONValue) -> JSONValue { value.objectValue.map { .object($0.filter { $0.key != "ranks" }) } ?? value }
        if let saved = extra["params"], withoutRanks(saved) != withoutRanks(params.json) {
            throw StageError("\(stateURL.path): resumable state belongs to other params; remove it or use another --resume-dir")
        }
        let savedRanks = extra["ranks"]?.intValue ?? 1
        if extra["params"] != nil, savedRanks != ranks {
            throw StageError("\(stateURL.path): resumable state was trained by \(savedRanks) MPI rank(s); resume it with "
                             + "ranks \(savedRanks) under mpirun -np \(savedRanks) (this run has \(ranks)), or remove it")
        }
        if let bestEpoch = extra["best_epoch"]?.intValue, bestEpoch >= 1 {
            do {
                _ = try ShardReader(url: bestURL).verify()
            } catch {
                try setAside([(bestURL, "\(error)"), (stateURL, "its best checkpoint \(bestURL.lastPathComponent) is damaged")])
                return nil
            }
        }
        do {
            guard extra["params"] != nil, let epoch = extra["epoch"]?.intValue, epoch >= 0, epoch <= trainer.config.epochs else {
                throw StageError("\(stateURL.path): meta.extra has no params or no epoch in 0...\(trainer.config.epochs)")
            }
            return try Checkpoint.load(from: stateURL, into: trainer.model, optimizer: trainer.optimizer)
        } catch {
            try setAside([(stateURL, "\(error)")])
            return nil
        }
    }

    /// Renames damaged resumable files to `NAME.corrupt` (replacing older ones) and says so on stderr.
    func setAside(_ files: [(url: URL, reason: String)]) throws {
        guard writes else { return }
        for (file, reason) in files where FileManager.default.fileExists(atPath: file.path) {
            let aside = file.appendingPathExtension("corrupt")
            guard rename(file.path, aside.path) == 0 else {
                throw StageError("\(file.path): damaged resumable state cannot be set aside (\(String(cString: strerror(errno))))")
            }
            FileHandle.standardError.write(Data("warning: \(file.path) set aside as \(aside.lastPathComponent): \(reason)\n".utf8))
        }
        FileHandle.standardError.write(Data("warning: training restarts from the first epoch\n".utf8))
    }

    /// Whether val is scored after epoch `epoch` (1-based) of `epochs`: every `every` epochs and after the last.
    static func evaluates(epoch: Int, every: Int, of epochs: Int) -> Bool {
        epoch % every == 0 || epoch == epochs
    }

    /// Takes epoch `epoch`'s val score into the best so far (`epoch` -1 before the first), returning whether
    /// it became the best. The first epoch always gives a best checkpoint; a later one only with a strictly
    /// higher score (a tie keeps the earlier epoch); a non-finite score (e.g. an empty split) counts as
    /// minus infinity, so it never beats a real one and a real one always beats it.
    static func updateBest(_ best: inout (epoch: Int, score: Double), epoch: Int, score: Double) -> Bool {
        let value = score.isFinite ? score : -Double.infinity
        guard best.epoch < 0 || value > best.score else { return false }
        best = (epoch, value)
        return true
    }

    /// What every checkpoint carries besides weights: the resolved params and model config, for mask-eval.
    func extra(_ progress: TrainingProgress) -> JSONValue {
        .object([
            "params": params.json, "synthesis": synthesisParams, "dataset": datasetParams, "model_config": modelConfig,
            "epoch": .number(Double(progress.epoch)),
            "best_epoch": .number(Double(progress.bestEpoch)), "best_score": .number(progress.bestScore.isFinite ? progress.bestScore : -1),
            "max_clips": .number(Double(params.int("max_clips"))), "max_tokens": .number(Double(params.int("max_tokens"))),
        ].merging(ranks > 1 ? ["ranks": .number(Double(ranks))] : [:]) { $1 })
    }
}

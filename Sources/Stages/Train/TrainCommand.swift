import ArgumentParser
import Foundation
import NN
import Retrieval
import Shards
import Tensor

/// `train`: trains QD-DETR or TD-DETR (or an ablation of it) and keeps the best checkpoint on val.
public struct TrainCommand: StageCommand {
    public static let stageName = "train"
    public static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a moment retrieval model; evaluate on val every eval_every epochs; keep the best and the last checkpoint.",
        discussion: """
            Inputs: --in train_videos= --in train_queries= --in val_videos= --in val_queries= (shards from \
            feature-ingest), and for VSDC --in synth_videos= --in synth_queries= (from video-synthesis; recipe \
            authors-code synthesizes inside each batch and reads none). \
            Outputs: checkpoint.tshard (best val MR-full-mAP), last.tshard, log.jsonl (per epoch: every loss \
            term, lr, val metrics, seconds), val_metrics.json (the best epoch's). A killed run resumes from its \
            last finished epoch, with the same result, when started again with the same params and \
            --resume-dir (the pipeline driver provides one).
            """)

    /// Table 4 of the paper as four named models of one architecture.
    public static let models = ["qd-detr", "td-detr", "vsdc-only", "tdem-only", "cdnet"]

    public static let params: [ParamDecl] = [
        .string("model", "td-detr", choices: models, "qd-detr (baseline), td-detr (VSDC + TDEM), vsdc-only, tdem-only, cdnet"),
        .string("recipe", "paper", choices: TrainingRecipe.allCases.map(\.rawValue),
                "paper: every setting from its param; authors-code (td-detr only): the authors' code's TDEM, beta 0.7, 4 + 4 + 4 layers, "
                    + "span 1 / gIoU 10 / label 4 / saliency 1, lr x 0.1 every 80 epochs, in-batch VSDC over [synthetic | original] "
                    + "with alpha 0.7 and the top-50 similarity, over those params"),
        .boolean("recipe_drop_near_duplicates", false,
                 "authors-code recipe: zero pair similarities above 0.9 before the argmax, as the authors' code does on every dataset but QVHighlights"),
        .number("beta", 0.5, min: 0, max: 1, "TDEM injection V' = beta V + (1 - beta) T' (the paper's 0.5; recipe authors-code: 0.7)"),
        .string("tdem_variant", "paper", choices: ["paper", "authors-code"],
                "TDEM as the paper's equations or as the authors' code (dynamics of video + positions, own key/value projections, beta mixes only the residual)"),
        .string("loss_preset", "paper", choices: ["paper", "qd-detr"], "loss coefficients: paper (L1 1, gIoU 10, CE 4, neg 4) or QD-DETR's (L1 10, gIoU 1, CE 4)"),
        .number("saliency_weight", 1, min: 0, "multiplies the preset's three saliency coefficients, as QD-DETR's lw_saliency (Charades-STA, TACoS: 4); QD-DETR and TD-DETR"),
        .integer("hidden", 256, min: 8, "transformer width d"),
        .integer("heads", 8, min: 1, "attention heads"),
        .integer("ffn", 1024, min: 8, "feed-forward width"),
        .integer("t2v_layers", 2, min: 1, "text-to-video cross-attention layers"),
        .integer("enc_layers", 2, min: 1, "self-attention encoder layers"),
        .integer("dec_layers", 2, min: 1, "decoder layers"),
        .integer("queries", 10, min: 1, "moment queries"),
        .number("dropout", 0.1, min: 0, max: 0.9, "transformer dropout"),
        .number("input_dropout", 0.5, min: 0, max: 0.9, "input projection dropout"),
        .number("lr", 1e-4, min: 0, "AdamW learning rate (Charades-STA: 2e-4)"),
        .number("weight_decay", 1e-4, min: 0, "AdamW decoupled weight decay"),
        .number("grad_clip", 0.1, min: 0, "clip gradients to this global norm"),
        .integer("batch_size", 32, min: 1,
                 "original samples per step (VSDC adds one synthesized sample each); recipe authors-code: indices over [synthetic | original] per step, about 1.5x as many samples"),
        .integer("epochs", 200, min: 1, "training epochs"),
        .integer("lr_drop", 0, min: 0, "multiply lr by lr_gamma every lr_drop epochs (0: never; Charades-STA: 30)"),
        .number("lr_gamma", 0.1, min: 0, max: 1, "step decay factor"),
        .integer("seed", 2018, min: 0, "seed of initialisation, batch order, saliency pairs and dropout"),
        .integer("threads", 0, min: 0, "OpenBLAS and kernel threads (0: the cores this process may use: its affinity mask, or its share under pipeline run --jobs N)"),
        .integer("ranks", 1, min: 1,
                 "MPI processes, each computing a slice of every batch (data-parallel); the pipeline driver launches a node with ranks N > 1 under mpirun -np N, or srun under --executor slurm; by hand, run train under mpirun -np N"),
        .integer("max_clips", 75, min: 1, "clips per video (max_v_l)"),
        .integer("max_tokens", 32, min: 1, "tokens per query (max_q_l)"),
        .integer("max_windows", 5, min: 1, "ground-truth windows per training query: a random max_windows of a query with more (the reference: 5)"),
        .integer("eval_every", 1, min: 1, "evaluate on val, and keep the best checkpoint, every this many epochs and after the last (the reference: 5)"),
        .integer("eval_batch_size", 64, min: 1, "batch size of the per-epoch val evaluation"),
        .string("vsdc_source", "stage", choices: ["stage", "batch"],
                "VSDC samples from the video-synthesis stage (synth_* inputs) or synthesized on the fly inside each batch"),
        .number("vsdc_alpha", 0.5, min: 0, max: 1, "alpha of the on-the-fly synthesis (vsdc_source: batch)"),
        .boolean("cdnet_global_guidance", true, "CDNet: intra- and inter-video contrastive guidance (table 4 ablation switch)"),
        .boolean("cdnet_fine_grained", true, "CDNet: video-guided text tokens and the token-level contrastive loss"),
        .boolean("cdnet_relevance", true, "CDNet: the per-clip relevance score multiplied onto the video tokens"),
        .boolean("cdnet_denoising", true, "CDNet: context-aware dynamic denoising (learned offsets, re-sampling, attention)"),
        .integer("cdnet_downsampling", 4, min: 1, "CDNet: down-sampling factor r of the reference grid"),
    ]
    public static let inputRoles = ["train_videos", "train_queries", "val_videos", "val_queries", "synth_videos", "synth_queries"]
    public static let resumeVariable = "PIPELINE_SCRATCH"

    @OptionGroup public var io: StageIO
    @Option(help: "Directory for the resumable state (default: $PIPELINE_SCRATCH when set).") var resumeDir: String?

    public init() {}

    /// The model and training configurations the params describe, the recipe applied over the individual params.
    public static func configurations(_ p: StageParams, videoWidth: Int, textWidth: Int) throws -> (model: ModelConfig, training: TrainingConfig) {
        var model = modelConfig(p, videoWidth: videoWidth, textWidth: textWidth)
        var training = TrainingConfig()
        training.learningRate = p.float("lr")
        training.weightDecay = p.float("weight_decay")
        training.gradientClip = p.float("grad_clip")
        training.batchSize = p.int("batch_size")
        training.epochs = p.int("epochs")
        training.lrDrop = p.int("lr_drop")
        training.lrGamma = p.float("lr_gamma")
        training.seed = UInt64(p.int("seed"))
        training.evalBatchSize = p.int("eval_batch_size")
        if model.vsdc && p.string("vsdc_source") == "batch" {
            var synthesizer = VideoSynthesizer()
            synthesizer.alpha = p.double("vsdc_alpha")
            synthesizer.maxClips = p.int("max_clips")
            training.inBatchSynthesis = synthesizer
        }
        let recipe = try Self.recipe(p)
        if recipe == .authorsCode {
            var synthesis = AuthorsCodeSynthesizer()
            synthesis.nearDuplicateCutoff = p.bool("recipe_drop_near_duplicates") ? 0.9 : nil
            training.authorsCodeSynthesis = synthesis
        }
        recipe.apply(model: &model, training: &training)
        return (model, training)
    }

    /// The params' recipe; the authors' code's is refused for any model but TD-DETR.
    static func recipe(_ p: StageParams) throws -> TrainingRecipe {
        let recipe = TrainingRecipe(rawValue: p.string("recipe"))!
        guard recipe == .paper || p.string("model") == "td-detr" else {
            throw StageError("train: recipe \(recipe.rawValue) is TD-DETR's; it cannot apply to model \(p.string("model"))")
        }
        return recipe
    }

    /// The model configuration the individual params describe (before any recipe), for the input widths of the data.
    public static func modelConfig(_ p: StageParams, videoWidth: Int, textWidth: Int) -> ModelConfig {
        let model = p.string("model")
        var c = ModelConfig.ablation(vsdc: model == "td-detr" || model == "vsdc-only",
                                     tdem: model == "td-detr" || model == "tdem-only",
                                     coefficients: LossCoefficients.preset(named: p.string("loss_preset"))!)
        let saliencyWeight = p.float("saliency_weight")
        c.coefficients.margin *= saliencyWeight
        c.coefficients.contrastive *= saliencyWeight
        c.coefficients.negative *= saliencyWeight
        c.videoFeatureWidth = videoWidth
        c.textFeatureWidth = textWidth
        c.hiddenWidth = p.int("hidden")
        c.heads = p.int("heads")
        c.feedForwardWidth = p.int("ffn")
        c.textToVideoLayers = p.int("t2v_layers")
        c.encoderLayers = p.int("enc_layers")
        c.decoderLayers = p.int("dec_layers")
        c.queryCount = p.int("queries")
        c.dropout = p.float("dropout")
        c.inputDropout = p.float("input_dropout")
        c.beta = p.float("beta")
        c.tdemVariant = p.string("tdem_variant") == "paper" ? .paper : .authorsCode
        return c
    }

    /// The CDNet configuration the params describe (the paper's defaults otherwise; its hidden width is 1024).
    public static func cdnetConfig(_ p: StageParams, videoWidth: Int, textWidth: Int) -> CDNetConfig {
        var c = CDNetConfig.ablation(globalGuidance: p.bool("cdnet_global_guidance"), fineGrainedGuidance: p.bool("cdnet_fine_grained"),
                                     relevanceScore: p.bool("cdnet_relevance"), denoising: p.bool("cdnet_denoising"))
        c.videoFeatureWidth = videoWidth
        c.textFeatureWidth = textWidth
        c.hiddenWidth = p.int("hidden")
        c.heads = p.int("heads")
        c.feedForwardWidth = p.int("ffn")
        c.localizerLayers = p.int("enc_layers")
        c.dropout = p.float("dropout")
        c.inputDropout = p.float("input_dropout")
        c.downsamplingFactor = p.int("cdnet_downsampling")
        return c
    }

    /// Rebuilds `count` identical fresh models (the same seed gives the same initial weights) of the
    /// architecture a checkpoint's `model` param and configuration describe.
    static func buildModels(model: String, configJSON: JSONValue, seed: UInt64, count: Int, file: String) throws
        -> (models: [any MomentModel], videoWidth: Int, textWidth: Int) {
        let data = Data(configJSON.canonical.utf8)
        do {
            if model == "cdnet" {
                let config = try JSONDecoder().decode(CDNetConfig.self, from: data)
                let models: [any MomentModel] = (0..<count).map { _ in
                    var g = SeededGenerator(seed: seed)
                    return CDNet(config: config, generator: &g)
                }
                return (models, config.videoFeatureWidth, config.textFeatureWidth)
            }
            let config = try JSONDecoder().decode(ModelConfig.self, from: data)
            let models: [any MomentModel] = (0..<count).map { _ in
                var g = SeededGenerator(seed: seed)
                return MomentDETR(config: config, generator: &g)
            }
            return (models, config.videoFeatureWidth, config.textFeatureWidth)
        } catch {
            throw StageError("\(file): model_config cannot be read (\(error))")
        }
    }

    /// A `Codable` configuration as JSON (sorted keys), for checkpoints.
    static func json<T: Encodable>(_ value: T) throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try JSONValue.parse(encoder.encode(value), source: "model config")
    }

    public func execute(_ p: StageParams, outputs: StageOutputs) throws {
        let stage = Self.stageName
        guard p.int("hidden") % p.int("heads") == 0 else {
            throw StageError("train: hidden \(p.int("hidden")) is not divisible by heads \(p.int("heads"))")
        }
        _ = try Self.recipe(p)
        let launched = MPIWorld.launchedSize
        guard launched == p.int("ranks") else {
            throw StageError(launched == 1
                ? "train: ranks is \(p.int("ranks")) but this process was not started by an MPI launcher; run it under mpirun -np \(p.int("ranks")) (the pipeline driver does)"
                : "train: started on \(launched) MPI ranks but ranks is \(p.int("ranks")); set \"ranks\": \(launched) in the params")
        }
        Parallelism.setThreadCount(p.int("threads") == 0 ? Parallelism.availableCores() : p.int("threads"))
        let trainVideos = try io.input("train_videos", stage: stage)
        // The params the train split was made with (feature-ingest's, e.g. the synthetic benchmark's rho and
        // train_videos), echoed into the checkpoint and the log so the report can tell apart runs on different data.
        let datasetParams = try ShardReader(url: trainVideos).meta["params"] ?? .null
        let train = try DatasetShards.readSplit(videos: trainVideos,
                                                queries: try io.input("train_queries", stage: stage), name: "train")
        let val = try DatasetShards.readSplit(videos: try io.input("val_videos", stage: stage),
                                              queries: try io.input("val_queries", stage: stage), name: "val")
        guard val.videos.dim == train.videos.dim, val.queries.textDim == train.queries.textDim else {
            throw StageError("train: val features (\(val.videos.dim)/\(val.queries.textDim)-d) differ from train's (\(train.videos.dim)/\(train.queries.textDim)-d)")
        }
        let (config, training) = try Self.configurations(p, videoWidth: train.videos.dim, textWidth: train.queries.textDim)
        let isCDNet = p.string("model") == "cdnet"
        var synthesized: (split: MomentSplit, sourceQuery: [Int])?
        var synthesisParams: JSONValue = .null
        if let recipe = training.authorsCodeSynthesis {
            synthesisParams = ["source": "authors-code", "alpha": .number(recipe.alpha), "topk_entries": .number(Double(recipe.topkEntries)),
                               "near_duplicate_cutoff": recipe.nearDuplicateCutoff.map { .number(Double($0)) } ?? .null]
            print("recipe authors-code: tdem_variant authors-code, beta \(config.beta), layers \(config.textToVideoLayers) + "
                  + "\(config.encoderLayers) + \(config.decoderLayers), span \(config.coefficients.span) / gIoU \(config.coefficients.giou) / "
                  + "label \(config.coefficients.label) / saliency \(config.coefficients.negative), lr x \(training.lrGamma) every "
                  + "\(training.lrDrop) epochs, in-batch VSDC alpha \(recipe.alpha) (synth_* inputs unused)")
        } else if config.vsdc && p.string("vsdc_source") == "stage" {
            guard !(try io.inputs("synth_videos")).isEmpty else {
                throw StageError("train: model \(p.string("model")) uses VSDC and needs --in synth_videos= and --in synth_queries= (from video-synthesis)")
            }
            let videosURL = try io.input("synth_videos", stage: stage)
            synthesized = try DatasetShards.readSynthesized(videos: videosURL, queries: try io.input("synth_queries", stage: stage),
                                                            base: train)
            synthesisParams = try ShardReader(url: videosURL).meta["params"] ?? .null
        }

        if training.inBatchSynthesis != nil {
            synthesisParams = ["alpha": .number(p.double("vsdc_alpha")), "source": "batch"]
        }
        var init_ = SeededGenerator(seed: training.seed)
        let model: any MomentModel
        let configJSON: JSONValue
        if isCDNet {
            let cdnet = Self.cdnetConfig(p, videoWidth: train.videos.dim, textWidth: train.queries.textDim)
            model = CDNet(config: cdnet, generator: &init_)
            configJSON = try Self.json(cdnet)
        } else {
            model = MomentDETR(config: config, generator: &init_)
            configJSON = try Self.json(config)
        }
        let trainer = Trainer(model: model, config: training,
                              builder: BatchBuilder(maxClips: p.int("max_clips"), maxTokens: p.int("max_tokens"),
                                                    maxWindows: p.int("max_windows")),
                              train: train, synthesized: synthesized, val: val)
        // Under `mpirun -np N` (N > 1) every rank trains a slice of each global batch; rank 0 alone writes.
        let world = launched > 1 ? try MPIWorld() : nil
        trainer.dataParallel = world?.dataParallel
        do {
            try TrainingRun(trainer: trainer, params: p, synthesisParams: synthesisParams, datasetParams: datasetParams, modelConfig: configJSON,
                            val: val, outputs: outputs,
                            resumeDir: resumeDir ?? ProcessInfo.processInfo.environment[Self.resumeVariable]).run()
        } catch {
            guard let world else { throw error }
            if world.rank == 0 { outputs.discard() }
            FileHandle.standardError.write(Data("error: train (rank \(world.rank) of \(world.size)): \(error)\n".utf8))
            world.abort(code: 1)
        }
        world?.close()
    }
}

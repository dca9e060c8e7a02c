import Foundation
import NN
import Shards
import Tensor

/// Data-parallel training: this process's rank among `size`, and the element-wise sum of a buffer over every
/// rank (an MPI all-reduce; every rank must call it with a buffer of the same length, in the same order).
public struct DataParallel {
    public let rank: Int
    public let size: Int
    public let allReduceSum: (inout [Float]) -> Void

    public init(rank: Int, size: Int, allReduceSum: @escaping (inout [Float]) -> Void) {
        self.rank = rank
        self.size = size
        self.allReduceSum = allReduceSum
    }

    /// The rows of a global batch of `count` rows this rank computes: a contiguous slice, in rank order.
    public func rows(of count: Int) -> Range<Int> {
        (count * rank / size)..<(count * (rank + 1) / size)
    }
}

/// Optimisation settings of a training run (the model's are in `ModelConfig`).
public struct TrainingConfig: Sendable, Equatable {
    public var learningRate: Float = 1e-4
    public var weightDecay: Float = 1e-4
    public var gradientClip: Float = 0.1
    public var batchSize = 32
    public var epochs = 200
    /// Multiply the learning rate by `lrGamma` every `lrDrop` epochs (0: never).
    public var lrDrop = 0
    public var lrGamma: Float = 0.1
    public var seed: UInt64 = 2018
    public var evalBatchSize = 64
    /// VSDC on the fly: synthesize each batch's partners inside the batch (the paper's batch-scope pairs),
    /// with this synthesizer, instead of reading samples made by the video-synthesis stage.
    public var inBatchSynthesis: VideoSynthesizer?
    /// VSDC as the authors' code does it (`TrainingRecipe.authorsCode`): each epoch runs over [synthetic N |
    /// original N] indices, a synthetic one giving two samples with its most similar batch-mate. Takes
    /// precedence over `inBatchSynthesis` and the video-synthesis stage's samples.
    public var authorsCodeSynthesis: AuthorsCodeSynthesizer?
    public init() {}
}

/// A preset that sets every TD-DETR setting at once, over the individual params.
public enum TrainingRecipe: String, Sendable, CaseIterable {
    /// The paper's reading: every setting as its own param gives it (the default).
    case paper
    /// What the authors' public code does (xyangzhou/TD-DETR @ a0ce6d3, its QVHighlights script): TDEM as
    /// its `T2V_TransformerEncoderLayer`, beta 0.7, 4 text-to-video + 4 encoder + 4 decoder layers, span 1 /
    /// gIoU 10 / label 4 with `lw_saliency` 1, lr x 0.1 every 80 epochs, and VSDC in batch over [synthetic |
    /// original] indices with alpha 0.7 and the top-50 similarity (`AuthorsCodeSynthesizer`). Settings on
    /// which the code and the defaults agree (lr, weight decay, batch, epochs, widths, dropouts, margin) stay
    /// with their params.
    case authorsCode = "authors-code"

    /// Overrides what the recipe sets. `.paper` changes nothing.
    public func apply(model: inout ModelConfig, training: inout TrainingConfig) {
        guard self == .authorsCode else { return }
        model.tdem = true
        model.vsdc = true
        model.tdemVariant = .authorsCode
        model.beta = 0.7
        model.textToVideoLayers = 4
        model.encoderLayers = 4
        model.decoderLayers = 4
        model.coefficients = .authorsCode
        training.lrDrop = 80
        training.lrGamma = 0.1
        training.inBatchSynthesis = nil
        var synthesis = AuthorsCodeSynthesizer()
        synthesis.alpha = 0.7
        synthesis.topkEntries = 50
        synthesis.nearDuplicateCutoff = training.authorsCodeSynthesis?.nearDuplicateCutoff
        training.authorsCodeSynthesis = synthesis
    }
}

/// The state a run needs to continue exactly where it stopped, saved at every epoch end.
public struct TrainingProgress: Sendable {
    public var epoch: Int
    public var step: Int
    public var bestEpoch: Int
    public var bestScore: Double
    public var log: [JSONValue]

    public init(epoch: Int, step: Int, bestEpoch: Int, bestScore: Double, log: [JSONValue]) {
        self.epoch = epoch
        self.step = step
        self.bestEpoch = bestEpoch
        self.bestScore = bestScore
        self.log = log
    }
}

/// Trains a moment retrieval model on a split (plus, with VSDC, each original query's synthesized samples) and
/// predicts on a validation split (the train stage scores it every `eval_every` epochs).
///
/// Everything random is derived from the seed: the batch order and the saliency pairs of epoch `e` come
/// from generators seeded by (seed, e), and the dropout generator is checkpointed, so a run resumed
/// from its epoch-end checkpoint gives the same bits as an uninterrupted one.
public final class Trainer {
    public let model: any MomentModel
    public let optimizer: AdamW
    public let config: TrainingConfig
    public let builder: BatchBuilder
    public let context: ForwardContext
    let train: MomentSplit
    let synthesized: MomentSplit?
    /// For each training query, the synthesized samples built around it.
    let synthesizedOf: [[Int]]
    let val: MomentSplit
    /// The longest training video: the authors' similarity pads every video to it.
    let longestTrainVideo: Int

    public init(model: any MomentModel, config: TrainingConfig, builder: BatchBuilder, train: MomentSplit,
                synthesized: (split: MomentSplit, sourceQuery: [Int])?, val: MomentSplit) {
        self.model = model
        self.config = config
        self.builder = builder
        self.train = train
        self.val = val
        self.synthesized = synthesized?.split
        var of = [[Int]](repeating: [], count: train.queries.count)
        if let s = synthesized {
            for (sample, q) in s.sourceQuery.enumerated() where q >= 0 && q < of.count { of[q].append(sample) }
        }
        synthesizedOf = of
        longestTrainVideo = (0..<train.videos.count).reduce(0) { max($0, train.videos.length($1)) }
        optimizer = AdamW(module: model, learningRate: config.learningRate, weightDecay: config.weightDecay)
        context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: config.seed &+ 0xD1B5))
    }

    /// Indices an epoch runs over: the training queries, or with the authors' code's VSDC a synthetic and an
    /// original index per query.
    var indicesPerEpoch: Int { train.queries.count * (config.authorsCodeSynthesis == nil ? 1 : 2) }

    public var stepsPerEpoch: Int { (indicesPerEpoch + config.batchSize - 1) / config.batchSize }

    func learningRate(epoch: Int) -> Float {
        guard config.lrDrop > 0 else { return config.learningRate }
        return config.learningRate * pow(config.lrGamma, Float(epoch / config.lrDrop))
    }

    /// The random draws of one epoch's batch preparation, in one place so that the prefetching thread owns them.
    final class EpochDraws: @unchecked Sendable {
        var shuffle: SeededGenerator
        var pairs: SeededGenerator?
        init(shuffle: SeededGenerator, pairs: SeededGenerator?) {
            self.shuffle = shuffle
            self.pairs = pairs
        }
    }

    /// Batches prepared ahead (read, synthesized, padded) while the current step computes.
    public var prefetchDepth = 2

    /// Set when training over several processes: each computes a slice of every global batch.
    public var dataParallel: DataParallel?

    /// One epoch of training; returns the mean of every loss term. `onStep(step, loss)` reports progress.
    ///
    /// Batches are prepared one or two steps ahead on a background thread, strictly in step order, so every
    /// random draw happens in the same order as without prefetching and the result is the same bits.
    public func trainEpoch(_ epoch: Int, onStep: (Int, Float) -> Void) throws -> [String: Double] {
        optimizer.learningRate = learningRate(epoch: epoch)
        var order = Array(0..<indicesPerEpoch)
        var shuffle = SeededGenerator(seed: config.seed &* 6_364_136_223_846_793_005 &+ UInt64(epoch) &+ 1)
        order.shuffle(using: &shuffle)
        let draws = EpochDraws(shuffle: shuffle, pairs: SeededGenerator(seed: config.seed &* 0x9E37_79B9 &+ UInt64(epoch) &* 31 &+ 7))
        let starts = Array(stride(from: 0, to: order.count, by: config.batchSize))
        let batches = Prefetcher(count: starts.count, depth: prefetchDepth) { [self] step in
            try prepareBatch(Array(order[starts[step]..<min(order.count, starts[step] + config.batchSize)]),
                             epoch: epoch, step: step, draws: draws)
        }
        defer { batches.cancel() }
        var sums: [String: Double] = [:]
        var count = 0
        context.isTraining = true
        for step in starts.indices {
            let batch = try batches.next(step)
            model.zeroGrad()
            let total: Float, terms: [String: Float]
            if let dataParallel, dataParallel.size > 1 {
                (total, terms) = dataParallelStep(batch, dataParallel)
            } else {
                let loss: Variable
                (loss, terms) = model.trainingLoss(batch, context: context)
                total = loss.scalar
                if total.isFinite { loss.backward() }
            }
            guard total.isFinite else {
                throw DatasetError("training diverged: loss is \(total) at epoch \(epoch + 1), step \(step + 1) (lower the learning rate?)")
            }
            // Clipping's scaling is applied by the optimizer as it reads each gradient (the same bits).
            optimizer.update(gradientScale: GradientClipping.globalNormScale(model.parameters, maxNorm: config.gradientClip).scale)
            for (k, v) in terms { sums[k, default: 0] += Double(v) }
            count += 1
            onStep(step + 1, total)
        }
        return sums.mapValues { $0 / Double(max(1, count)) }
    }

    /// One step's forward and backward on this rank's slice of the global batch (every rank prepared the whole
    /// batch, in the same order), leaving in every parameter's `grad` the sum over ranks of the slices'
    /// gradients, each weighted by its share of the batch, and returning the loss and its terms so weighted
    /// and summed. Everything goes through one all-reduce of one flat buffer in parameter order, so a run is
    /// bit-reproducible for a given rank count. The sum is the whole batch's gradient up to float summation
    /// order: MomentDETR's criterion divides by the whole batch's sample and matched-pair counts and pairs the
    /// slice's last video with the whole batch's next text (`BatchSlice`). Dropout masks and the other
    /// per-sample draws are the whole batch's (`ForwardContext.batchRows`): every rank draws the same seeds
    /// and keys each element by its sample's index in the whole batch, so a sample is dropped alike however
    /// the batch is split, and the result equals the single-process one up to summation order.
    func dataParallelStep(_ batch: MomentBatch, _ parallel: DataParallel) -> (Float, [String: Float]) {
        let count = batch.batchSize
        let slice = parallel.rows(of: count)
        // A rank without rows (a last batch smaller than the rank count) runs one row with weight 0, so that
        // it knows the loss terms and draws dropout seeds as the others do.
        let rows = slice.isEmpty ? [min(slice.lowerBound, count - 1)] : Array(slice)
        var part = Self.selectRows(batch, rows)
        let next = (rows.last! + 1) % count
        part.slice = BatchSlice(wholeSize: count, wholeWindowCounts: batch.windows.map(\.count),
                                nextText: ShapeKernels.slice(batch.textFeatures, axis: 0, range: next..<(next + 1)),
                                nextTextMask: ShapeKernels.slice(batch.textMask, axis: 0, range: next..<(next + 1)))
        // MomentDETR's criterion weighs a slice as its share of the whole batch; another model's loss is a mean
        // over its slice, weighted here by the slice's share of the samples.
        let weight = slice.isEmpty ? 0 : model is MomentDETR ? 1 : Float(slice.count) / Float(count)
        context.batchRows = BatchRows(first: rows[0], whole: count)
        defer { context.batchRows = nil }
        let (loss, terms) = model.trainingLoss(part, context: context)
        loss.backward()
        let parameters = model.parameters
        let keys = terms.keys.sorted()
        var buffer: [Float] = []
        buffer.reserveCapacity(parameters.reduce(keys.count + 1) { $0 + $1.value.count + 1 })
        for p in parameters {
            if let g = p.grad {
                buffer.append(1)
                g.withUnsafeBufferPointer { for v in $0 { buffer.append(v * weight) } }
            } else {
                buffer.append(0)
                buffer.append(contentsOf: repeatElement(0, count: p.value.count))
            }
        }
        buffer.append(loss.scalar * weight)
        for k in keys { buffer.append(terms[k]! * weight) }
        parallel.allReduceSum(&buffer)
        var offset = 0
        for p in parameters {
            let n = p.value.count
            let hasGradient = buffer[offset] > 0
            p.grad = hasGradient ? Tensor(shape: p.value.shape, data: Array(buffer[(offset + 1)..<(offset + 1 + n)])) : nil
            offset += n + 1
        }
        var reduced: [String: Float] = [:]
        for (i, k) in keys.enumerated() { reduced[k] = buffer[offset + 1 + i] }
        return (buffer[offset], reduced)
    }

    /// The seed of a step's synthesis: fixed by the run's seed, the epoch and the step, so a resumed run and
    /// the prefetching thread draw the same samples.
    func synthesisSeed(epoch: Int, step: Int) -> UInt64 {
        config.seed &* 0x2545_F491 &+ UInt64(epoch) &* 100_003 &+ UInt64(step)
    }

    /// The batch of one step: the original queries plus, with VSDC, their synthesized samples (with the
    /// authors' code's VSDC, `indices` are over [synthetic | original], see `prepareAuthorsCodeBatch`).
    func prepareBatch(_ originals: [Int], epoch: Int, step: Int, draws: EpochDraws) throws -> MomentBatch {
        if let recipe = config.authorsCodeSynthesis {
            return try prepareAuthorsCodeBatch(originals, synthesizer: recipe, epoch: epoch, step: step, draws: draws)
        }
        var batch = try builder.batch(train, queries: originals, generator: &draws.pairs)
        if var synthesizer = config.inBatchSynthesis {
            synthesizer.seed = synthesisSeed(epoch: epoch, step: step)
            let extra = try Self.synthesizeInBatch(train, queries: originals, synthesizer: synthesizer)
            if extra.queries.count > 0 {
                batch = Self.concatenate(batch, try builder.batch(extra, queries: Array(0..<extra.queries.count), generator: &draws.pairs))
            }
        } else if let synthesized {
            // VSDC: each original trains next to one of its synthesized samples.
            let picks = originals.compactMap { q -> Int? in
                let options = synthesizedOf[q]
                return options.isEmpty ? nil : options[Int(draws.shuffle.next() % UInt64(options.count))]
            }
            if !picks.isEmpty {
                batch = Self.concatenate(batch, try builder.batch(synthesized, queries: picks, generator: &draws.pairs))
            }
        }
        return batch
    }

    /// The samples of one batch of indices as the authors' code collates them: in index order, a synthetic
    /// index `i < N` as its two samples (anchor 0 then anchor 1, so the negative-pair roll pairs anchor 0's
    /// video with the partner's query), an original index `N + i` as query i. Originals are cut to `maxClips`;
    /// synthesized videos are not (the code does not cut QVHighlights').
    func prepareAuthorsCodeBatch(_ indices: [Int], synthesizer: AuthorsCodeSynthesizer, epoch: Int, step: Int,
                                 draws: EpochDraws) throws -> MomentBatch {
        let n = train.queries.count
        var generator = SeededGenerator(seed: synthesisSeed(epoch: epoch, step: step))
        let similarities = try synthesizer.batchSimilarities(train, batch: indices, paddedLength: longestTrainVideo)
        let partners = synthesizer.partners(batch: indices, count: n, similarities: similarities)
        var samples: [VideoSynthesizer.Sample] = [], sampleQueries: [Int] = [], originals: [Int] = []
        var synthesized: [Bool] = []
        for (position, index) in indices.enumerated() {
            if index < n {
                let (first, second) = try synthesizer.samplePair(train, anchor: index, partner: partners[position], generator: &generator)
                samples += [first, second]
                sampleQueries += [index, partners[position]]
                synthesized += [true, true]
            } else {
                originals.append(index - n)
                synthesized.append(false)
            }
        }
        var parts: [MomentBatch] = []
        if !originals.isEmpty { parts.append(try builder.batch(train, queries: originals, generator: &draws.pairs)) }
        if !samples.isEmpty {
            var uncut = builder
            uncut.maxClips = Int.max
            let split = AuthorsCodeSynthesizer.split(samples, sourceQuery: sampleQueries, source: train)
            parts.append(try uncut.batch(split, queries: Array(samples.indices), generator: &draws.pairs))
        }
        let joined = parts.count == 2 ? Self.concatenate(parts[0], parts[1]) : parts[0]
        var nextOriginal = 0, nextSynthesized = originals.count
        let rows = synthesized.map { isSynthesized -> Int in
            if isSynthesized {
                defer { nextSynthesized += 1 }
                return nextSynthesized
            }
            defer { nextOriginal += 1 }
            return nextOriginal
        }
        return Self.selectRows(joined, rows)
    }

    /// The rows `rows` of a batch, in that order.
    static func selectRows(_ batch: MomentBatch, _ rows: [Int]) -> MomentBatch {
        if rows == Array(0..<batch.batchSize) { return batch }
        func pick(_ t: Tensor) -> Tensor {
            let inner = Array(t.shape.dropFirst())
            let flat = ShapeKernels.gatherTime(t.reshaped([1, t.shape[0], inner.reduce(1, *)]), indices: rows, count: rows.count)
            return flat.reshaped([rows.count] + inner)
        }
        let saliency = batch.saliency.map { s in
            SaliencyTargets(scores: pick(s.scores), positiveClips: rows.map { s.positiveClips[$0] },
                            negativeClips: rows.map { s.negativeClips[$0] })
        }
        return MomentBatch(videoFeatures: pick(batch.videoFeatures), videoMask: pick(batch.videoMask),
                           textFeatures: pick(batch.textFeatures), textMask: pick(batch.textMask),
                           windows: rows.map { batch.windows[$0] }, saliency: saliency, durations: rows.map { batch.durations[$0] })
    }

    /// Predictions for every query of a split, in submission form.
    public func predict(_ split: MomentSplit) throws -> [MomentPrediction] {
        try model.submission(for: split, builder: builder, batchSize: config.evalBatchSize)
    }

    /// The batch's own VSDC samples: partners are the most similar videos within the batch (mean clip
    /// cosine), one sample per original query, focused on it (no symmetric samples: the partner's own
    /// query gets its sample when it is the focus).
    static func synthesizeInBatch(_ split: MomentSplit, queries: [Int], synthesizer: VideoSynthesizer) throws -> MomentSplit {
        let subset = split.subset(queries: queries)
        var miner = PairMiner(k: 1)
        miner.scope = .global
        let pairs = try miner.mine(subset.videos)
        var s = synthesizer
        s.symmetric = false
        s.variants = 1
        return try s.synthesize(subset, pairs: pairs).split
    }

    /// Two batches as one (padding the shorter video and text axes).
    static func concatenate(_ a: MomentBatch, _ b: MomentBatch) -> MomentBatch {
        func pad(_ t: Tensor, length: Int) -> Tensor {
            t.shape[1] == length ? t : ShapeKernels.pad(t, axis: 1, before: 0, after: length - t.shape[1])
        }
        let lv = max(a.videoLength, b.videoLength)
        let lq = max(a.textFeatures.shape[1], b.textFeatures.shape[1])
        var saliency: SaliencyTargets?
        if let sa = a.saliency, let sb = b.saliency {
            saliency = SaliencyTargets(scores: ShapeKernels.concat([pad(sa.scores, length: lv), pad(sb.scores, length: lv)], axis: 0),
                                       positiveClips: sa.positiveClips + sb.positiveClips,
                                       negativeClips: sa.negativeClips + sb.negativeClips)
        }
        return MomentBatch(
            videoFeatures: ShapeKernels.concat([pad(a.videoFeatures, length: lv), pad(b.videoFeatures, length: lv)], axis: 0),
            videoMask: ShapeKernels.concat([pad(a.videoMask, length: lv), pad(b.videoMask, length: lv)], axis: 0),
            textFeatures: ShapeKernels.concat([pad(a.textFeatures, length: lq), pad(b.textFeatures, length: lq)], axis: 0),
            textMask: ShapeKernels.concat([pad(a.textMask, length: lq), pad(b.textMask, length: lq)], axis: 0),
            windows: a.windows + b.windows, saliency: saliency, durations: a.durations + b.durations)
    }
}

extension MomentModel {
    /// Predictions for every query of a split, in submission form (evaluation mode, no gradients).
    /// Batches are read one ahead on a background thread while the current one is predicted.
    public func submission(for split: MomentSplit, builder: BatchBuilder, batchSize: Int) throws -> [MomentPrediction] {
        var out: [MomentPrediction] = []
        let size = max(1, batchSize)
        let starts = Array(stride(from: 0, to: split.queries.count, by: size))
        let ranges = starts.map { Array($0..<min(split.queries.count, $0 + size)) }
        let batches = Prefetcher(count: ranges.count, depth: 1) { i in
            var none: SeededGenerator? = nil
            return try builder.batch(split, queries: ranges[i], generator: &none)
        }
        defer { batches.cancel() }
        for (i, queries) in ranges.enumerated() {
            out += SubmissionWriter.predictions(split, queries: queries, retrievals: predict(try batches.next(i)))
        }
        return out
    }
}

import NN
import Retrieval

/// Small configurations and random batches for model tests.
enum TinyModel {
    static func config(tdem: Bool, variant: TDEMVariant = .paper) -> ModelConfig {
        var config = ModelConfig()
        config.videoFeatureWidth = 6
        config.textFeatureWidth = 5
        config.hiddenWidth = 16
        config.heads = 2
        config.feedForwardWidth = 24
        config.textToVideoLayers = 2
        config.encoderLayers = 1
        config.decoderLayers = 2
        config.queryCount = 4
        config.tdem = tdem
        config.tdemVariant = variant
        return config
    }

    /// `batch` samples with 8 clip slots (the last ones padding on some) and 3 token slots.
    static func batch(seed: UInt64, batch: Int = 3, clips: Int = 8, tokens: Int = 3,
                      videoWidth: Int = 6, textWidth: Int = 5) -> MomentBatch {
        var generator = SeededGenerator(seed: seed)
        let video = Initialization.normal(shape: [batch, clips, videoWidth], generator: &generator)
        let text = Initialization.normal(shape: [batch, tokens, textWidth], generator: &generator)
        var videoMask = Tensor(repeating: 1, shape: [batch, clips])
        var textMask = Tensor(repeating: 1, shape: [batch, tokens])
        var windows: [[SpanTarget]] = []
        var scores = Tensor(zeros: [batch, clips])
        var positives: [[Int]] = [], negatives: [[Int]] = []
        for b in 0..<batch {
            let valid = clips - (b % 3)
            for t in valid..<clips { videoMask[b, t] = 0 }
            if b % 2 == 1 { textMask[b, tokens - 1] = 0 }
            let start = b % (valid - 3), end = start + 2 + b % 2
            windows.append([SpanTarget(start: Float(start * 2), end: Float(end * 2 + 2), duration: Float(valid * 2))])
            if b % 3 == 2 && valid > 6 {
                windows[b].append(SpanTarget(start: Float((valid - 1) * 2), end: Float(valid * 2), duration: Float(valid * 2)))
            }
            let relevant = Array(start...end)
            let summed = relevant.map { Float(3 + ($0 * 5) % 10) }
            for (clip, score) in zip(relevant, summed) { scores[b, clip] = score }
            let pairs = SaliencyPairSampler.sample(relevantClips: relevant, summedScores: summed, clipCount: valid,
                                                   generator: &generator)
            positives.append(pairs.positives)
            negatives.append(pairs.negatives)
        }
        return MomentBatch(videoFeatures: video, videoMask: videoMask, textFeatures: text, textMask: textMask,
                           windows: windows,
                           saliency: SaliencyTargets(scores: scores, positiveClips: positives, negativeClips: negatives),
                           durations: (0..<batch).map { Float((clips - $0 % 3) * 2) })
    }
}

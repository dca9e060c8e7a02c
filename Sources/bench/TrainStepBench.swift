import ArgumentParser
import Foundation
import NN
import Retrieval
import Tensor

/// A synthetic batch at the paper's QVHighlights shapes, for the step and inference benchmarks.
enum PaperBatch {
    static func make(batch: Int, clips: Int = 75, tokens: Int = 32, videoWidth: Int = 2818, textWidth: Int = 512,
                     seed: UInt64 = 3) -> MomentBatch {
        var g = SeededGenerator(seed: seed)
        var video = Tensor(zeros: [batch, clips, videoWidth]), text = Tensor(zeros: [batch, tokens, textWidth])
        video.withUnsafeMutableBufferPointer { for i in 0..<$0.count { $0[i] = 0.02 * g.nextNormal() } }
        text.withUnsafeMutableBufferPointer { for i in 0..<$0.count { $0[i] = 0.05 * g.nextNormal() } }
        let videoMask = Tensor(repeating: 1, shape: [batch, clips]), textMask = Tensor(repeating: 1, shape: [batch, tokens])
        var scores = Tensor(zeros: [batch, clips])
        var windows: [[SpanTarget]] = [], positives: [[Int]] = [], negatives: [[Int]] = []
        for b in 0..<batch {
            let start = Int.random(in: 0..<(clips - 10), using: &g), length = Int.random(in: 2...10, using: &g)
            windows.append([SpanTarget(start: Float(start * 2), end: Float((start + length) * 2), duration: Float(clips * 2))])
            var relevant: [Int] = [], summed: [Float] = []
            for c in start..<(start + length) {
                let s = Float(Int.random(in: 3...12, using: &g))
                scores[b, c] = s
                relevant.append(c)
                summed.append(s)
            }
            let pairs = SaliencyPairSampler.sample(relevantClips: relevant, summedScores: summed, clipCount: clips, generator: &g)
            positives.append(pairs.positives)
            negatives.append(pairs.negatives)
        }
        return MomentBatch(videoFeatures: video, videoMask: videoMask, textFeatures: text, textMask: textMask, windows: windows,
                           saliency: SaliencyTargets(scores: scores, positiveClips: positives, negativeClips: negatives),
                           durations: [Float](repeating: Float(clips * 2), count: batch))
    }
}

/// One training step (forward incl. the negative-pair encoder pass, matched loss, backward, clip 0.1,
/// AdamW) at the paper's QVHighlights configuration, against PyTorch running the authors' QD-DETR.
struct TrainStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-step", abstract: "Training step time at the paper's configuration.")

    @Option(help: "Timed steps (median reported).") var repeats = 5
    @Option(help: "Threads (OpenBLAS and kernels).") var threads = 2

    func run() throws {
        Parallelism.setThreadCount(threads)
        print("paper configuration: 75 clips, 32 tokens, 2818-d video, 512-d text, d 256, 8 heads, FFN 1024, 2 T2V + 2 enc + 2 dec layers, 10 queries; \(threads) threads")
        print(Measure.environmentLine())
        print("anchor: PyTorch 2 (MKL) running the authors' QD-DETR on this CPU, 2 threads: batch 32 step 1658 ms, batch 64 3057 ms (ANCHORS.md)")
        for (label, config, batchSize, anchor) in [("qd-detr.b32", ModelConfig.qdDETR(), 32, 1658.0), ("qd-detr.b64", ModelConfig.qdDETR(), 64, 3057.0),
                                                   ("td-detr.b64", ModelConfig.tdDETR(), 64, 3057.0)] {
            var g = SeededGenerator(seed: 1)
            let model = MomentDETR(config: config, generator: &g)
            let optimizer = AdamW(module: model, learningRate: 1e-4, weightDecay: 1e-4)
            let context = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 2))
            let batch = PaperBatch.make(batch: batchSize)
            let time = Measure.median(repeats: repeats) {
                model.zeroGrad()
                let outputs = model.forward(batch, context: context)
                let (loss, _) = model.loss(outputs, batch: batch)
                loss.backward()
                GradientClipping.clipByGlobalNorm(model.parameters, maxNorm: 0.1)
                optimizer.update()
            }
            print(String(format: "%@: %.0f ms per step (%d parameters); anchor %.0f ms -> %.2fx faster", label, time * 1000,
                         model.parameterCount, anchor, anchor / (time * 1000)))
            Measure.figure("train-step.\(label).ms", time * 1000, "ms", digits: 1)
            Measure.figure("train-step.\(label).speedup_vs_pytorch", anchor / (time * 1000), "x")
        }
    }
}

/// Inference (forward only, no gradients) of a batch of 32 at the paper's configuration.
struct InferBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infer", abstract: "Inference time at the paper's configuration.")

    @Option(help: "Timed batches (median reported).") var repeats = 10
    @Option(help: "Threads (OpenBLAS and kernels).") var threads = 2

    func run() throws {
        Parallelism.setThreadCount(threads)
        print(Measure.environmentLine())
        print("anchor: PyTorch 2 running the authors' QD-DETR, inference of a batch of 32, 2 threads: 325 ms (ANCHORS.md)")
        for (label, config) in [("qd-detr", ModelConfig.qdDETR()), ("td-detr", ModelConfig.tdDETR())] {
            var g = SeededGenerator(seed: 1)
            let model = MomentDETR(config: config, generator: &g)
            let batch = PaperBatch.make(batch: 32)
            let time = Measure.median(repeats: repeats) { _ = model.predict(batch) }
            print(String(format: "%@: %.0f ms per batch of 32; anchor 325 ms -> %.2fx faster", label, time * 1000, 325 / (time * 1000)))
            Measure.figure("infer.\(label).b32.ms", time * 1000, "ms", digits: 1)
            Measure.figure("infer.\(label).b32.speedup_vs_pytorch", 325 / (time * 1000), "x")
        }
    }
}

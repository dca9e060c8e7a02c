import Foundation
import NN
import Shards
import XCTest

final class CheckpointTests: XCTestCase {
    /// A small classifier over `[B, L, width]` features: one encoder layer with dropout, then a linear head.
    final class Classifier: Module {
        let encoder: TransformerEncoderLayer
        let head: Linear

        init(width: Int, classes: Int, generator: inout SeededGenerator) {
            encoder = TransformerEncoderLayer(width: width, heads: 2, feedForwardWidth: 2 * width, dropout: 0.1,
                                              generator: &generator)
            head = Linear(inFeatures: width, outFeatures: classes, generator: &generator)
        }

        func namedParameters() -> [(name: String, parameter: Variable)] {
            parameters(of: encoder, prefix: "encoder") + parameters(of: head, prefix: "head")
        }
    }

    /// Two linear layers under chosen names and sizes, for mismatch tests.
    final class Pair: Module {
        let layers: [(String, Linear)]

        init(_ layers: [(String, Int, Int)], seed: UInt64) {
            var generator = SeededGenerator(seed: seed)
            self.layers = layers.map { ($0.0, Linear(inFeatures: $0.1, outFeatures: $0.2, generator: &generator)) }
        }

        func namedParameters() -> [(name: String, parameter: Variable)] {
            layers.flatMap { parameters(of: $0.1, prefix: $0.0) }
        }
    }

    let (width, classes, batch, length) = (8, 3, 2, 5)
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("checkpoint-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: directory)
    }

    /// One optimisation step on data that depends only on `step`, so a resumed run sees the same batches.
    func trainStep(_ model: Classifier, _ optimizer: AdamW, context: ForwardContext, step: Int) -> Float {
        var data = SeededGenerator(seed: 1000 &+ UInt64(step))
        let x = Variable(Initialization.uniform(shape: [batch, length, width], bound: 1, generator: &data))
        let targets = (0..<(batch * length)).map { _ in Int(data.next() % UInt64(classes)) }
        model.zeroGrad()
        let hidden = model.encoder(x, position: nil, keyPaddingMask: nil, context: context)
        let loss = crossEntropyLoss(model.head(hidden).reshaped([batch * length, classes]), targets: targets)
        loss.backward()
        GradientClipping.clipByGlobalNorm(model.parameters, maxNorm: 0.5)
        optimizer.update()
        return loss.scalar
    }

    func testResumedTrainingIsBitIdenticalToAnUninterruptedRun() throws {
        let (before, after) = (6, 5)
        var initGenerator = SeededGenerator(seed: 1)
        let reference = Classifier(width: width, classes: classes, generator: &initGenerator)
        let referenceOptimizer = AdamW(module: reference, learningRate: 1e-2, weightDecay: 0.05)
        let referenceContext = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 2))
        var referenceLosses: [Float] = []
        for step in 0..<(before + after) {
            referenceLosses.append(trainStep(reference, referenceOptimizer, context: referenceContext, step: step))
        }

        initGenerator = SeededGenerator(seed: 1)
        let first = Classifier(width: width, classes: classes, generator: &initGenerator)
        let firstOptimizer = AdamW(module: first, learningRate: 1e-2, weightDecay: 0.05)
        let firstContext = ForwardContext(isTraining: true, generator: SeededGenerator(seed: 2))
        for step in 0..<before { _ = trainStep(first, firstOptimizer, context: firstContext, step: step) }
        let url = directory.appendingPathComponent("run.tshard")
        try Checkpoint.save(module: first, optimizer: firstOptimizer, step: before, generator: firstContext.generator,
                            extra: ["epoch": 3, "note": "resume test"], to: url)

        // A fresh model from another seed and a fresh optimizer at another learning rate: the checkpoint
        // must overwrite all of it.
        var otherGenerator = SeededGenerator(seed: 99)
        let resumed = Classifier(width: width, classes: classes, generator: &otherGenerator)
        let resumedOptimizer = AdamW(module: resumed, learningRate: 5, weightDecay: 0.05)
        let restored = try Checkpoint.load(from: url, into: resumed, optimizer: resumedOptimizer)
        XCTAssertEqual(restored.step, before)
        XCTAssertEqual(restored.generator, firstContext.generator)
        XCTAssertEqual(restored.meta, ["epoch": 3, "note": "resume test"])
        XCTAssertEqual(resumedOptimizer.learningRate, 1e-2)
        XCTAssertEqual(resumedOptimizer.exportState(), firstOptimizer.exportState())

        let resumedContext = ForwardContext(isTraining: true, generator: restored.generator)
        var resumedLosses: [Float] = []
        for step in restored.step..<(before + after) {
            resumedLosses.append(trainStep(resumed, resumedOptimizer, context: resumedContext, step: step))
        }
        XCTAssertEqual(resumedLosses, Array(referenceLosses[before...]), "losses after resuming")
        for (a, b) in zip(reference.namedParameters(), resumed.namedParameters()) {
            XCTAssertEqual(a.parameter.value.data.map(\.bitPattern), b.parameter.value.data.map(\.bitPattern),
                           "parameter \(a.name) after \(before) + \(after) steps")
        }
        XCTAssertEqual(resumedOptimizer.exportState(), referenceOptimizer.exportState())
        XCTAssertEqual(resumedContext.generator, referenceContext.generator)
        XCTAssertNotEqual(referenceLosses[0], referenceLosses[before + after - 1], "the run must actually train")
    }

    func testLoadListsEveryMismatchAndChangesNothing() throws {
        let saved = Pair([("first", 4, 3), ("second", 3, 2)], seed: 1)
        let optimizer = AdamW(module: saved, learningRate: 1e-3)
        let url = directory.appendingPathComponent("pair.tshard")
        try Checkpoint.save(module: saved, optimizer: optimizer, step: 7, generator: SeededGenerator(seed: 3), to: url)

        let target = Pair([("first", 5, 3), ("third", 3, 2)], seed: 2)
        let targetOptimizer = AdamW(module: target, learningRate: 1e-3, beta2: 0.99)
        let before = target.parameters.map(\.value)
        XCTAssertThrowsError(try Checkpoint.load(from: url, into: target, optimizer: targetOptimizer)) { error in
            guard case let CheckpointError.mismatch(_, missing, unexpected, wrongShape, conflicts) = error else {
                return XCTFail("expected a mismatch, got \(error)")
            }
            XCTAssertEqual(missing, ["param/third.weight", "param/third.bias",
                                     "adam.m/third.weight", "adam.v/third.weight",
                                     "adam.m/third.bias", "adam.v/third.bias"])
            XCTAssertEqual(unexpected, ["adam.m/second.bias", "adam.m/second.weight",
                                        "adam.v/second.bias", "adam.v/second.weight",
                                        "param/second.bias", "param/second.weight"])
            XCTAssertEqual(wrongShape, [
                CheckpointShapeMismatch(name: "param/first.weight", expected: [3, 5], found: [3, 4]),
                CheckpointShapeMismatch(name: "adam.m/first.weight", expected: [3, 5], found: [3, 4]),
                CheckpointShapeMismatch(name: "adam.v/first.weight", expected: [3, 5], found: [3, 4]),
            ])
            XCTAssertEqual(conflicts, ["optimizer beta2 is 0.99 here, 0.999 in the checkpoint"])
            let message = "\(error)"
            XCTAssertTrue(message.contains("wrong shape: param/first.weight is [3, 5] in the model, [3, 4] in the checkpoint"),
                          message)
            XCTAssertTrue(message.contains("missing from the checkpoint (6): param/third.weight"), message)
        }
        XCTAssertEqual(target.parameters.map(\.value), before, "a refused checkpoint must not change the model")
        XCTAssertEqual(targetOptimizer.step, 0)
    }

    func testWeightsOnlyLoadIgnoresOptimizerStateAndMissingStateIsReported() throws {
        let saved = Pair([("layer", 4, 3)], seed: 1)
        let withOptimizer = directory.appendingPathComponent("with.tshard")
        try Checkpoint.save(module: saved, optimizer: AdamW(module: saved, learningRate: 1e-3), step: 1,
                            generator: SeededGenerator(seed: 3), to: withOptimizer)
        let target = Pair([("layer", 4, 3)], seed: 2)
        _ = try Checkpoint.load(from: withOptimizer, into: target, optimizer: nil)
        XCTAssertEqual(target.parameters.map(\.value), saved.parameters.map(\.value))

        let withoutOptimizer = directory.appendingPathComponent("without.tshard")
        try Checkpoint.save(module: saved, optimizer: nil, step: 1, generator: SeededGenerator(seed: 3), to: withoutOptimizer)
        XCTAssertThrowsError(try Checkpoint.load(from: withoutOptimizer, into: target,
                                                 optimizer: AdamW(module: target, learningRate: 1e-3))) { error in
            guard case let CheckpointError.mismatch(_, missing, unexpected, wrongShape, conflicts) = error else {
                return XCTFail("expected a mismatch, got \(error)")
            }
            XCTAssertEqual(missing, ["adam.m/layer.weight", "adam.v/layer.weight", "adam.m/layer.bias",
                                     "adam.v/layer.bias", "adam.step"])
            XCTAssertEqual(unexpected, [])
            XCTAssertEqual(wrongShape, [])
            XCTAssertEqual(conflicts.count, 1)
        }
    }

    func testAShardThatIsNotACheckpointIsRefused() throws {
        let url = directory.appendingPathComponent("features.tshard")
        var writer = ShardWriter(meta: ["split": "val"])
        try writer.add("features", [Float](repeating: 0, count: 6), shape: [2, 3])
        try writer.write(to: url)
        XCTAssertThrowsError(try Checkpoint.load(from: url, into: Pair([("layer", 3, 2)], seed: 1), optimizer: nil)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .notACheckpoint(file: url.path, reason: "meta.kind is not \"nn-checkpoint\""))
        }
    }
}

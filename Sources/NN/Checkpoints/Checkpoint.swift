import Foundation
import Shards

/// Training checkpoints as tensor shards (ARCHITECTURE.md sections 4 and 8): everything a run needs to
/// continue bit-identically, stored as named tensors.
///
/// | tensor | dtype | content |
/// |---|---|---|
/// | `param/<name>` | f32 | each parameter of `module.namedParameters()` |
/// | `adam.m/<name>`, `adam.v/<name>` | f32 | AdamW first and second moments, by the optimizer's names |
/// | `adam.step` | i64 `[1]` | AdamW's step count (its bias correction depends on it) |
/// | `step` | i64 `[1]` | the caller's training step |
/// | `rng.state` | i64 `[4]` | the generator's four `UInt64` words, as bit patterns |
///
/// `meta` holds the layout name and version, the optimizer's settings, and the caller's `extra` object.
public enum Checkpoint {
    /// The layout version written into `meta`; a loader refuses any other.
    public static let version = 1
    static let kind = "nn-checkpoint"

    static let parameterPrefix = "param/"
    static let firstMomentPrefix = "adam.m/"
    static let secondMomentPrefix = "adam.v/"
    static let optimizerStepName = "adam.step"
    static let stepName = "step"
    static let generatorName = "rng.state"

    /// Writes `module`'s parameters, `optimizer`'s state (when given), `step` and `generator`'s state
    /// to `url`, atomically. `extra` is any JSON the caller wants back on load (e.g. the resolved config).
    @discardableResult
    public static func save(module: Module, optimizer: AdamW?, step: Int, generator: SeededGenerator,
                            extra meta: JSONValue = .object([:]), to url: URL) throws -> ShardSummary {
        var optimizerMeta: JSONValue = .null
        // Floats compress poorly; the fastest zstd level keeps a checkpoint of millions of weights quick to write.
        var writer = ShardWriter(level: 1)
        for (name, parameter) in module.namedParameters() {
            try writer.add(parameterPrefix + name, parameter.value.data, shape: parameter.shape)
        }
        if let optimizer {
            let state = optimizer.exportState()
            for (index, entry) in optimizer.namedParameters.enumerated() {
                try writer.add(firstMomentPrefix + entry.name, state.firstMoments[index], shape: entry.parameter.shape)
                try writer.add(secondMomentPrefix + entry.name, state.secondMoments[index], shape: entry.parameter.shape)
            }
            try writer.add(optimizerStepName, [Int64(state.step)], shape: [1])
            optimizerMeta = settings(of: optimizer)
        }
        try writer.add(stepName, [Int64(step)], shape: [1])
        try writer.add(generatorName, generator.state.map { Int64(bitPattern: $0) }, shape: [4])
        writer.meta = .object([
            "kind": .string(kind),
            "version": .number(Double(version)),
            "optimizer": optimizerMeta,
            "extra": meta,
        ])
        return try writer.write(to: url)
    }

    /// Restores `module`'s parameters and, when given, `optimizer`'s moments, step and learning rate from
    /// `url`, and returns the saved step, generator and `extra` meta.
    ///
    /// Everything is checked before anything is changed: when names, shapes, dtypes or the optimizer's
    /// fixed settings differ, one `CheckpointError.mismatch` lists every difference and the module and
    /// optimizer are left untouched. With `optimizer: nil` the checkpoint's optimizer state is ignored
    /// (loading weights only).
    public static func load(from url: URL, into module: Module, optimizer: AdamW?) throws
        -> (step: Int, generator: SeededGenerator, meta: JSONValue) {
        let reader = try ShardReader(url: url)
        let file = reader.file
        guard reader.meta["kind"]?.stringValue == kind else {
            throw CheckpointError.notACheckpoint(file: file, reason: "meta.kind is not \"\(kind)\"")
        }
        guard let storedVersion = reader.meta["version"]?.intValue else {
            throw CheckpointError.notACheckpoint(file: file, reason: "meta.version is missing")
        }
        guard storedVersion == version else { throw CheckpointError.unsupportedVersion(file: file, version: storedVersion) }

        // What the receivers need: name -> (shape, dtype).
        var expected: [(name: String, shape: [Int], dtype: DType)] = []
        for (name, parameter) in module.namedParameters() {
            expected.append((parameterPrefix + name, parameter.shape, .f32))
        }
        if let optimizer {
            for entry in optimizer.namedParameters {
                expected.append((firstMomentPrefix + entry.name, entry.parameter.shape, .f32))
                expected.append((secondMomentPrefix + entry.name, entry.parameter.shape, .f32))
            }
            expected.append((optimizerStepName, [1], .i64))
        }
        expected.append((stepName, [1], .i64))
        expected.append((generatorName, [4], .i64))

        var missing: [String] = []
        var wrongShape: [CheckpointShapeMismatch] = []
        var conflicts: [String] = []
        for entry in expected {
            guard let info = reader.tensors[entry.name] else { missing.append(entry.name); continue }
            if info.shape != entry.shape {
                wrongShape.append(CheckpointShapeMismatch(name: entry.name, expected: entry.shape, found: info.shape))
            }
            if info.dtype != entry.dtype {
                conflicts.append("wrong dtype: \(entry.name) is \(info.dtype.rawValue) in the checkpoint, expected \(entry.dtype.rawValue)")
            }
        }
        let expectedNames = Set(expected.map(\.name))
        let unexpected = reader.tensorNames.filter { name in
            // Without an optimizer the checkpoint's optimizer state is deliberately left unread.
            !expectedNames.contains(name) && !(optimizer == nil && name.hasPrefix("adam."))
        }
        if let optimizer {
            conflicts += settingConflicts(stored: reader.meta["optimizer"] ?? .null, optimizer: optimizer)
        }
        if !missing.isEmpty || !unexpected.isEmpty || !wrongShape.isEmpty || !conflicts.isEmpty {
            throw CheckpointError.mismatch(file: file, missing: missing, unexpected: unexpected,
                                           wrongShape: wrongShape, conflicts: conflicts)
        }

        // Read everything, then assign: a read failure (corrupt frame) leaves the receivers untouched.
        let step = try reader.read(stepName, as: Int64.self).values[0]
        let words = try reader.read(generatorName, as: Int64.self).values.map { UInt64(bitPattern: $0) }
        guard words.contains(where: { $0 != 0 }) else {
            throw CheckpointError.notACheckpoint(file: file, reason: "generator state \(generatorName) is all zero")
        }
        let parameters = module.namedParameters()
        let values = try parameters.map { try reader.read(parameterPrefix + $0.name, as: Float.self).values }
        var optimizerState: AdamW.State?
        if let optimizer {
            let names = optimizer.namedParameters.map(\.name)
            optimizerState = AdamW.State(
                step: Int(try reader.read(optimizerStepName, as: Int64.self).values[0]),
                names: names,
                firstMoments: try names.map { try reader.read(firstMomentPrefix + $0, as: Float.self).values },
                secondMoments: try names.map { try reader.read(secondMomentPrefix + $0, as: Float.self).values })
        }

        for (index, entry) in parameters.enumerated() {
            entry.parameter.assign(Tensor(shape: entry.parameter.shape, data: values[index]))
        }
        if let optimizer, let optimizerState {
            optimizer.importState(optimizerState)
            if let rate = reader.meta["optimizer"]?["learning_rate"]?.doubleValue {
                optimizer.learningRate = Float(rate)
            }
        }
        return (Int(step), SeededGenerator(state: words), reader.meta["extra"] ?? .object([:]))
    }

    private static func settings(of optimizer: AdamW) -> JSONValue {
        .object([
            "type": .string("AdamW"),
            "learning_rate": .number(Double(optimizer.learningRate)),
            "beta1": .number(Double(optimizer.beta1)),
            "beta2": .number(Double(optimizer.beta2)),
            "epsilon": .number(Double(optimizer.epsilon)),
            "weight_decay": .number(Double(optimizer.weightDecay)),
        ])
    }

    /// The fixed AdamW settings that differ between the checkpoint and `optimizer`: resuming with other
    /// betas, epsilon or weight decay would not continue the same run. (The learning rate is restored,
    /// not compared: schedules change it.)
    private static func settingConflicts(stored: JSONValue, optimizer: AdamW) -> [String] {
        guard stored["type"]?.stringValue == "AdamW" else {
            return ["the checkpoint holds no AdamW state (saved without an optimizer); load with optimizer: nil for weights only"]
        }
        let current: [(String, Float)] = [("beta1", optimizer.beta1), ("beta2", optimizer.beta2),
                                          ("epsilon", optimizer.epsilon), ("weight_decay", optimizer.weightDecay)]
        return current.compactMap { key, value in
            let saved = stored[key]?.doubleValue
            if let saved, Float(saved) == value { return nil }
            return "optimizer \(key) is \(value) here, \(saved.map { "\(Float($0))" } ?? "absent") in the checkpoint"
        }
    }
}

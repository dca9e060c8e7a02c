/// One tensor whose shape in a checkpoint differs from the model's (or optimizer's).
public struct CheckpointShapeMismatch: Equatable, Sendable {
    public let name: String
    /// The shape the model (or optimizer) has.
    public let expected: [Int]
    /// The shape stored in the checkpoint.
    public let found: [Int]

    public init(name: String, expected: [Int], found: [Int]) {
        self.name = name
        self.expected = expected
        self.found = found
    }
}

/// Why a checkpoint was refused. A mismatch lists every difference at once, so one failed load tells
/// the user everything that has to change.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The shard is readable but is not a checkpoint this build understands.
    case notACheckpoint(file: String, reason: String)
    /// The checkpoint was written by a newer (or unknown) layout version.
    case unsupportedVersion(file: String, version: Int)
    /// Names, shapes, dtypes or optimizer settings differ between the checkpoint and what it is loaded into.
    /// `missing` are tensors the model or optimizer needs that the checkpoint lacks; `unexpected` are
    /// tensors in the checkpoint that nothing receives; `conflicts` are other differences, each a sentence.
    case mismatch(file: String, missing: [String], unexpected: [String], wrongShape: [CheckpointShapeMismatch],
                  conflicts: [String])

    public var description: String {
        switch self {
        case let .notACheckpoint(file, reason):
            return "\(file): not a checkpoint (\(reason))"
        case let .unsupportedVersion(file, version):
            return "\(file): checkpoint layout version \(version) is not supported (this build reads version \(Checkpoint.version))"
        case let .mismatch(file, missing, unexpected, wrongShape, conflicts):
            var lines = ["\(file): checkpoint does not match the model/optimizer it is loaded into:"]
            if !missing.isEmpty {
                lines.append("  missing from the checkpoint (\(missing.count)): \(missing.joined(separator: ", "))")
            }
            if !unexpected.isEmpty {
                lines.append("  unexpected in the checkpoint (\(unexpected.count)): \(unexpected.joined(separator: ", "))")
            }
            for entry in wrongShape {
                lines.append("  wrong shape: \(entry.name) is \(entry.expected) in the model, \(entry.found) in the checkpoint")
            }
            for conflict in conflicts { lines.append("  \(conflict)") }
            return lines.joined(separator: "\n")
        }
    }
}

import Foundation

/// Why a shard file was refused. Each case names the file, so the message alone tells a user what to fix.
public enum ShardError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case badMagic(file: String)
    case unsupportedVersion(file: String, version: UInt8)
    case truncated(file: String, reason: String)
    case headerTooLong(file: String, length: UInt64, limit: UInt64)
    case badHeader(file: String, reason: String)
    case outOfBounds(file: String, tensor: String, reason: String)
    case sizeMismatch(file: String, tensor: String, reason: String)
    case checksumMismatch(file: String, tensor: String)
    case chunkChecksumMismatch(file: String, tensor: String, chunk: Int)
    case badIndex(file: String, reason: String)
    case corruptFrame(file: String, tensor: String, reason: String)
    case missingTensor(file: String, tensor: String)
    case wrongDType(file: String, tensor: String, expected: DType, found: DType)
    case invalidTensor(name: String, reason: String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read shard (\(reason))"
        case let .badMagic(file): return "\(file): not a tensor shard (wrong magic bytes)"
        case let .unsupportedVersion(file, version):
            return "\(file): shard format version \(version) is not supported (this build reads versions "
                + ShardFormat.versions.map(String.init).joined(separator: " and ") + ")"
        case let .truncated(file, reason): return "\(file): shard is truncated (\(reason))"
        case let .headerTooLong(file, length, limit):
            return "\(file): shard header claims \(length) bytes, more than the \(limit)-byte limit (file corrupt?)"
        case let .badHeader(file, reason): return "\(file): shard header is invalid (\(reason))"
        case let .outOfBounds(file, tensor, reason): return "\(file): tensor '\(tensor)' lies outside the file (\(reason))"
        case let .sizeMismatch(file, tensor, reason): return "\(file): tensor '\(tensor)' has inconsistent sizes (\(reason))"
        case let .checksumMismatch(file, tensor):
            return "\(file): tensor '\(tensor)' failed its checksum (file corrupt or truncated)"
        case let .chunkChecksumMismatch(file, tensor, chunk):
            return "\(file): tensor '\(tensor)' chunk \(chunk) failed its checksum (file corrupt or truncated)"
        case let .badIndex(file, reason): return "\(file): shard chunk index is invalid (\(reason))"
        case let .corruptFrame(file, tensor, reason):
            return "\(file): tensor '\(tensor)' cannot be decompressed (\(reason); file corrupt or truncated)"
        case let .missingTensor(file, tensor): return "\(file): no tensor named '\(tensor)'"
        case let .wrongDType(file, tensor, expected, found):
            return "\(file): tensor '\(tensor)' is \(found.rawValue), expected \(expected.rawValue)"
        case let .invalidTensor(name, reason): return "tensor '\(name)': \(reason)"
        case let .writeFailed(file, reason): return "\(file): cannot write shard (\(reason))"
        }
    }
}

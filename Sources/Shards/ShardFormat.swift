import Foundation

/// Element types a shard can hold.
public enum DType: String, Sendable, CaseIterable {
    case f32, i32, i64, u8

    public var byteSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .i64: return 8
        case .u8: return 1
        }
    }
}

/// Constants of the shard file format, version 1 (ARCHITECTURE.md section 4).
public enum ShardFormat {
    public static let version: UInt8 = 1
    /// "TSHARD\0" followed by the version byte.
    public static let magicPrefix: [UInt8] = Array("TSHARD".utf8) + [0]
    public static var magic: [UInt8] { magicPrefix + [version] }
    /// A header longer than this is refused before it is read.
    public static let maxHeaderLength: UInt64 = 16 << 20
    public static let preambleLength = 16
    public static let fileExtension = "tshard"
}

/// The description of one tensor inside a shard.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte offset of the zstd frame, relative to the start of the payload.
    public let offset: Int
    /// Compressed length.
    public let clen: Int
    /// Raw (uncompressed) length.
    public let rlen: Int
    /// SHA-256 (hex) of the raw bytes.
    public let sha256: String

    public var count: Int { shape.reduce(1, *) }
}

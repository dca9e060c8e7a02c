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

/// Constants of the shard file format (ARCHITECTURE.md section 4; README "Tensor shards").
///
/// Version 2 stores every tensor as a sequence of independently compressed chunks, each a run of whole rows
/// (the first axis): a record (a video, a query) is one chunk, so it is read by decompressing only that
/// chunk, and a writer appends records in constant memory. The index and the JSON header follow the
/// chunks, found through a fixed trailer:
///
/// ```
/// magic    8 bytes   "TSHARD\0\u{2}"
/// chunks             zstd frames (content size and checksum recorded), in any order
/// index    64 x n    per chunk, in tensor-name order then row order: offset, clen, rlen, rows (u64 each),
///                    SHA-256 of the compressed frame (32 bytes)
/// header   hlen      canonical JSON {"tensors": {name: {dtype, shape, sha256, chunks}}, "meta": {...}}
/// trailer  24 bytes  u64 index offset, u64 hlen, "TSHEND\0\u{2}"
/// ```
///
/// Version 1 files (one frame per tensor, header first) are still read.
public enum ShardFormat {
    public static let version: UInt8 = 2
    public static let versions: [UInt8] = [1, 2]
    /// "TSHARD\0" followed by the version byte.
    public static let magicPrefix: [UInt8] = Array("TSHARD".utf8) + [0]
    public static var magic: [UInt8] { magicPrefix + [version] }
    /// The last 8 bytes of a version-2 file.
    public static let endMagic: [UInt8] = Array("TSHEND".utf8) + [0, 2]
    /// A header longer than this is refused before it is read.
    public static let maxHeaderLength: UInt64 = 16 << 20
    /// Version 1: magic + u64 header length.
    public static let preambleLength = 16
    /// Version 2: u64 index offset + u64 header length + end magic.
    public static let trailerLength = 24
    public static let indexEntryLength = 64
    /// An index longer than this (about 16 million chunks) is refused before it is read.
    public static let maxIndexLength: UInt64 = 1 << 30
    /// zstd's densest encoding (a 4-byte RLE block per 128 KiB) bounds how much a frame can expand; a chunk
    /// declaring more raw bytes than this allows for its compressed length is refused before any allocation.
    public static func maxRawLength(compressed clen: Int) -> Int { clen.multipliedReportingOverflow(by: 32_768).partialValue + (1 << 17) }
    /// The largest raw chunk written or read (a record of a real dataset is under a megabyte; in-memory writes
    /// use 4 MiB chunks), so that no file can make a reader allocate more than this for one chunk.
    public static let maxChunkRawLength = 1 << 30
    public static let fileExtension = "tshard"
}

/// One compressed run of whole rows of a tensor.
public struct ChunkInfo: Equatable, Sendable {
    /// Absolute byte offset of the zstd frame in the file.
    public let offset: Int
    /// Compressed length.
    public let clen: Int
    /// Raw (uncompressed) length.
    public let rlen: Int
    /// Rows (entries of the first axis) the chunk holds; 1 for a 0-d tensor.
    public let rows: Int
    /// SHA-256 of the compressed frame (version 2); nil in version 1, where the frame's own checksum and the
    /// tensor's SHA-256 stand guard.
    public let frameDigest: [UInt8]?

    public init(offset: Int, clen: Int, rlen: Int, rows: Int, frameDigest: [UInt8]?) {
        self.offset = offset
        self.clen = clen
        self.rlen = rlen
        self.rows = rows
        self.frameDigest = frameDigest
    }
}

/// The description of one tensor inside a shard.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// SHA-256 (hex) of all raw bytes, chunk after chunk: the same for a tensor in either format version.
    public let sha256: String
    /// The chunks in row order.
    public let chunks: [ChunkInfo]

    public init(name: String, dtype: DType, shape: [Int], sha256: String, chunks: [ChunkInfo]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.sha256 = sha256
        self.chunks = chunks
    }

    public var count: Int { shape.reduce(1, *) }
    /// Raw length of the whole tensor.
    public var rlen: Int { count * dtype.byteSize }
    /// Elements per row (entry of the first axis); a 0-d tensor is one row of one element.
    public var rowElements: Int { shape.dropFirst().reduce(1, *) }
    /// The first row of every chunk, plus the row count at the end.
    public var chunkRowStarts: [Int] {
        var starts = [0]
        for c in chunks { starts.append(starts.last! + c.rows) }
        return starts
    }
}

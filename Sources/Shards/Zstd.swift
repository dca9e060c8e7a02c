import CZstd
import Foundation

/// A zstd failure, with the library's own explanation.
public struct ZstdError: Error, CustomStringConvertible {
    public let description: String
}

/// One-shot zstd frames (with content size and content checksum), the unit the shard format stores per tensor.
public enum Zstd {
    /// Compresses `bytes` into one frame that records its content size and a content checksum.
    public static func compress(_ bytes: UnsafeRawBufferPointer, level: Int32) throws -> Data {
        guard let cctx = ZSTD_createCCtx() else { throw ZstdError(description: "zstd: cannot allocate a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1))
        let bound = ZSTD_compressBound(bytes.count)
        var out = Data(count: bound)
        let written = out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(cctx, dst.baseAddress, bound, bytes.baseAddress, bytes.count)
        }
        try check(written)
        out.count = written
        return out
    }

    public static func compress(_ data: Data, level: Int32) throws -> Data {
        try data.withUnsafeBytes { try compress($0, level: level) }
    }

    /// Decompresses one complete frame into exactly `expectedSize` bytes (verifying the frame's checksum).
    /// Throws when the frame is corrupt, truncated, or does not hold `expectedSize` bytes.
    public static func decompress(_ frame: UnsafeRawBufferPointer, expectedSize: Int) throws -> Data {
        var out = Data(count: expectedSize)
        try out.withUnsafeMutableBytes { try decompress(frame, into: $0) }
        return out
    }

    /// Decompresses one complete frame straight into `destination`, which must be exactly the frame's size.
    public static func decompress(_ frame: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws {
        let declared = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { throw ZstdError(description: "not a zstd frame") }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(destination.count) {
            throw ZstdError(description: "frame holds \(declared) bytes, expected \(destination.count)")
        }
        let got = ZSTD_decompress(destination.baseAddress, destination.count, frame.baseAddress, frame.count)
        try check(got)
        if got != destination.count { throw ZstdError(description: "frame decompressed to \(got) bytes, expected \(destination.count)") }
    }

    /// Decompresses a whole `.zst` stream of one or more frames whose sizes need not be declared.
    public static func decompress(_ data: Data) throws -> Data {
        guard let dctx = ZSTD_createDCtx() else { throw ZstdError(description: "zstd: cannot allocate a decompression context") }
        defer { ZSTD_freeDCtx(dctx) }
        var result = Data()
        let chunk = ZSTD_DStreamOutSize()
        var buffer = [UInt8](repeating: 0, count: chunk)
        try data.withUnsafeBytes { src in
            var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            var lastRet = 0
            while input.pos < input.size || lastRet != 0 {
                let before = (input.pos, result.count)
                try buffer.withUnsafeMutableBytes { dst in
                    var output = ZSTD_outBuffer(dst: dst.baseAddress, size: chunk, pos: 0)
                    lastRet = ZSTD_decompressStream(dctx, &output, &input)
                    try check(lastRet)
                    result.append(dst.baseAddress!.assumingMemoryBound(to: UInt8.self), count: output.pos)
                }
                if input.pos == before.0 && result.count == before.1 {
                    throw ZstdError(description: "truncated zstd stream")
                }
            }
        }
        return result
    }

    private static func check(_ code: Int) throws {
        if ZSTD_isError(code) != 0 {
            throw ZstdError(description: String(cString: ZSTD_getErrorName(code)))
        }
    }
}

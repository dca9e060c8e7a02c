import CZstd
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes a shard (format version 2) record by record: every `append` compresses its rows into one chunk
/// and writes it at once, so memory stays constant however large the shard grows. `finish()` writes the
/// index, the header and the trailer, fsyncs and renames the temporary file to `url`; a writer dropped
/// before `finish()` (an error, a kill) leaves no file under the final name.
public final class ShardStreamWriter {
    public let url: URL
    /// Free-form metadata, written with the header at `finish()`: it may grow while records are appended.
    public var meta: JSONValue
    public let level: Int32

    private struct OpenTensor {
        let dtype: DType
        /// Every dimension but the first; nil for a 0-d tensor.
        let rowShape: [Int]?
        var rows = 0
        var hasher = SHA256()
        /// Set by a writer that hashed the raw bytes itself (`appendCompressed`).
        var presetDigest: String?
        var chunks: [ChunkInfo] = []
    }

    private let temp: URL
    private var fd: Int32
    private var position: Int
    private var tensors: [String: OpenTensor] = [:]
    private var finished = false
    private let cctx: OpaquePointer

    public init(url: URL, meta: JSONValue = .object([:]), level: Int32 = 3) throws {
        self.url = url
        self.meta = meta
        self.level = level
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        temp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ShardError.writeFailed(file: url.path, reason: String(cString: strerror(errno))) }
        guard let cctx = ZSTD_createCCtx() else {
            close(fd)
            unlink(temp.path)
            throw ShardError.writeFailed(file: url.path, reason: "zstd: cannot allocate a compression context")
        }
        self.cctx = cctx
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
        position = 0
        do {
            try writeBytes(Data(ShardFormat.magic))
        } catch {
            abandon()
            throw error
        }
    }

    deinit {
        if !finished { abandon() }
        ZSTD_freeCCtx(cctx)
    }

    /// Declares a tensor whose rows have `rowShape` (every dimension but the first), so that it exists even
    /// if no row is ever appended. `rowShape` nil declares a 0-d tensor (one element, one chunk).
    public func declare(_ name: String, dtype: DType, rowShape: [Int]?) throws {
        guard !name.isEmpty else { throw ShardError.invalidTensor(name: name, reason: "empty name") }
        if let rowShape, !rowShape.allSatisfy({ $0 >= 0 }) {
            throw ShardError.invalidTensor(name: name, reason: "negative dimension in row shape \(rowShape)")
        }
        if let t = tensors[name] {
            guard t.dtype == dtype, t.rowShape == rowShape else {
                throw ShardError.invalidTensor(name: name, reason: "declared as \(t.dtype.rawValue) rows of \(t.rowShape.map { "\($0)" } ?? "0-d"), "
                                               + "now \(dtype.rawValue) rows of \(rowShape.map { "\($0)" } ?? "0-d")")
            }
            return
        }
        tensors[name] = OpenTensor(dtype: dtype, rowShape: rowShape)
    }

    /// Appends `values` as one chunk of whole rows of tensor `name` (declared on first use).
    public func append<T: ShardScalar>(_ name: String, _ values: [T], rowShape: [Int]) throws {
        try values.withUnsafeBufferPointer { try append(name, $0, rowShape: rowShape) }
    }

    public func append<T: ShardScalar>(_ name: String, _ values: UnsafeBufferPointer<T>, rowShape: [Int]) throws {
        try declare(name, dtype: T.dtype, rowShape: rowShape)
        let perRow = rowShape.reduce(1, *)
        guard perRow > 0 ? values.count % perRow == 0 : values.isEmpty else {
            throw ShardError.invalidTensor(name: name, reason: "\(values.count) values are not whole rows of shape \(rowShape)")
        }
        guard tensors[name]!.presetDigest == nil else {
            throw ShardError.invalidTensor(name: name, reason: "rows appended after pre-compressed chunks")
        }
        if values.isEmpty { return }
        let raw = UnsafeRawBufferPointer(values)
        guard raw.count <= ShardFormat.maxChunkRawLength else {
            throw ShardError.invalidTensor(name: name, reason: "a chunk of \(raw.count) bytes exceeds the \(ShardFormat.maxChunkRawLength)-byte limit (append fewer rows at a time)")
        }
        tensors[name]!.hasher.update(bufferPointer: raw)
        let frame = try compress(raw)
        try appendFrame(name, frame: frame, rlen: raw.count, rows: values.count / perRow)
    }

    /// Writes a 0-d tensor (a single value).
    public func appendScalar<T: ShardScalar>(_ name: String, _ value: T) throws {
        try declare(name, dtype: T.dtype, rowShape: nil)
        guard tensors[name]!.rows == 0 else { throw ShardError.invalidTensor(name: name, reason: "0-d tensor written twice") }
        try withUnsafeBytes(of: value) { raw in
            tensors[name]!.hasher.update(bufferPointer: raw)
            try appendFrame(name, frame: try compress(raw), rlen: raw.count, rows: 1)
        }
    }

    /// Appends frames compressed elsewhere (in parallel, by `ShardWriter`) with the tensor's SHA-256 over all
    /// its raw bytes: the chunks of a tensor must then all come this way.
    func appendCompressed(_ name: String, frames: [(frame: Data, rlen: Int, rows: Int)], digest: String) throws {
        guard tensors[name]!.chunks.isEmpty else {
            throw ShardError.invalidTensor(name: name, reason: "pre-compressed chunks after appended rows")
        }
        for f in frames { try appendFrame(name, frame: f.frame, rlen: f.rlen, rows: f.rows) }
        tensors[name]!.presetDigest = digest
    }

    /// Rows appended to `name` so far.
    public func rows(_ name: String) -> Int { tensors[name]?.rows ?? 0 }

    /// Writes index, header and trailer, then fsyncs and renames into place.
    @discardableResult
    public func finish() throws -> ShardSummary {
        guard !finished else { throw ShardError.writeFailed(file: url.path, reason: "finished twice") }
        do {
            let names = tensors.keys.sorted()
            var index = Data()
            var entries: [String: JSONValue] = [:]
            var infos: [TensorInfo] = []
            for name in names {
                var t = tensors[name]!
                if t.rowShape == nil && t.rows != 1 {
                    throw ShardError.invalidTensor(name: name, reason: "0-d tensor was never written")
                }
                let shape = t.rowShape.map { [t.rows] + $0 } ?? []
                let digest = t.presetDigest ?? Hex.encode(t.hasher.finalize())
                for c in t.chunks {
                    for v in [c.offset, c.clen, c.rlen, c.rows] {
                        withUnsafeBytes(of: UInt64(v).littleEndian) { index.append(contentsOf: $0) }
                    }
                    index.append(contentsOf: c.frameDigest!)
                }
                entries[name] = .object([
                    "dtype": .string(t.dtype.rawValue), "shape": .array(shape.map { .number(Double($0)) }),
                    "sha256": .string(digest), "chunks": .number(Double(t.chunks.count)),
                ])
                infos.append(TensorInfo(name: name, dtype: t.dtype, shape: shape, sha256: digest, chunks: t.chunks))
                t.hasher = SHA256()
            }
            let header = Data(JSONValue.object(["tensors": .object(entries), "meta": meta]).canonical.utf8)
            guard UInt64(header.count) <= ShardFormat.maxHeaderLength else {
                throw ShardError.writeFailed(file: url.path, reason: "header of \(header.count) bytes exceeds the \(ShardFormat.maxHeaderLength)-byte limit (too much meta)")
            }
            let indexOffset = position
            var trailer = Data()
            withUnsafeBytes(of: UInt64(indexOffset).littleEndian) { trailer.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt64(header.count).littleEndian) { trailer.append(contentsOf: $0) }
            trailer.append(contentsOf: ShardFormat.endMagic)
            for part in [index, header, trailer] { try writeBytes(part) }
            guard fsync(fd) == 0 else { throw ShardError.writeFailed(file: url.path, reason: "fsync: \(String(cString: strerror(errno)))") }
            close(fd)
            fd = -1
            guard rename(temp.path, url.path) == 0 else {
                throw ShardError.writeFailed(file: url.path, reason: "rename: \(String(cString: strerror(errno)))")
            }
            finished = true
            let dfd = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                fsync(dfd)
                close(dfd)
            }
            return ShardSummary(logicalHash: LogicalHash.of(tensors: infos, meta: meta), bytes: position)
        } catch {
            abandon()
            throw error
        }
    }

    /// Drops the temporary file: nothing appears under the final name.
    public func abandon() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !finished {
            unlink(temp.path)
            finished = true
        }
    }

    private func compress(_ raw: UnsafeRawBufferPointer) throws -> Data {
        let bound = ZSTD_compressBound(raw.count)
        var out = Data(count: bound)
        let written = out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(cctx, dst.baseAddress, bound, raw.baseAddress, raw.count)
        }
        if ZSTD_isError(written) != 0 {
            throw ShardError.writeFailed(file: url.path, reason: "zstd: \(String(cString: ZSTD_getErrorName(written)))")
        }
        out.count = written
        return out
    }

    private func appendFrame(_ name: String, frame: Data, rlen: Int, rows: Int) throws {
        guard !finished else { throw ShardError.writeFailed(file: url.path, reason: "append after finish") }
        let digest = Array(SHA256.hash(data: frame))
        let chunk = ChunkInfo(offset: position, clen: frame.count, rlen: rlen, rows: rows, frameDigest: digest)
        try writeBytes(frame)
        tensors[name]!.chunks.append(chunk)
        tensors[name]!.rows += rows
    }

    private func writeBytes(_ data: Data) throws {
        try data.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, file: url.path) }
        position += data.count
    }
}

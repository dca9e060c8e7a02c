import CZstd
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads a shard file (format version 1 or 2). Opening validates the layout against the file size: magic,
/// version, header and index bounds, every tensor's sizes against its chunks, every chunk inside the file and
/// no two overlapping. Tensors, chunks (records) and row ranges are read on their own, each chunk checked by
/// zstd's content checksum, and no buffer is allocated before the frame's declared size agrees with the
/// index. `verify()` also checks every chunk's digest and every tensor's SHA-256, in constant memory.
public final class ShardReader {
    public let url: URL
    public let meta: JSONValue
    public let tensors: [String: TensorInfo]
    public let fileSize: Int
    /// The format version of the file.
    public let version: UInt8
    private let fd: Int32

    public var file: String { url.path }
    public var tensorNames: [String] { tensors.keys.sorted() }

    public init(url: URL) throws {
        self.url = url
        let file = url.path
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ShardError.unreadable(file: file, reason: String(cString: strerror(errno))) }
        var ok = false
        defer { if !ok { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ShardError.unreadable(file: file, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ShardError.unreadable(file: file, reason: "not a regular file") }
        fileSize = Int(st.st_size)

        let magicLength = ShardFormat.magicPrefix.count + 1
        guard fileSize >= magicLength else {
            if fileSize >= ShardFormat.magicPrefix.count {
                let head = try Self.pread(fd, count: ShardFormat.magicPrefix.count, at: 0, file: file)
                if Array(head) != ShardFormat.magicPrefix { throw ShardError.badMagic(file: file) }
            }
            throw ShardError.truncated(file: file, reason: "\(fileSize) bytes, shorter than the \(magicLength)-byte magic")
        }
        let head = Array(try Self.pread(fd, count: magicLength, at: 0, file: file))
        guard Array(head.prefix(ShardFormat.magicPrefix.count)) == ShardFormat.magicPrefix else { throw ShardError.badMagic(file: file) }
        version = head[magicLength - 1]
        guard ShardFormat.versions.contains(version) else { throw ShardError.unsupportedVersion(file: file, version: version) }
        let parsed = version == 1 ? try Self.openVersion1(fd, fileSize: fileSize, file: file)
                                  : try Self.openVersion2(fd, fileSize: fileSize, file: file)
        meta = parsed.meta
        tensors = parsed.tensors
        self.fd = fd
        ok = true
    }

    deinit { close(fd) }

    // MARK: Opening

    /// Version 2: trailer, header, index; see `ShardFormat`.
    private static func openVersion2(_ fd: Int32, fileSize: Int, file: String) throws -> (meta: JSONValue, tensors: [String: TensorInfo]) {
        let start = ShardFormat.magicPrefix.count + 1
        guard fileSize >= start + ShardFormat.trailerLength else {
            throw ShardError.truncated(file: file, reason: "\(fileSize) bytes, too short for the \(ShardFormat.trailerLength)-byte trailer")
        }
        let trailer = try pread(fd, count: ShardFormat.trailerLength, at: fileSize - ShardFormat.trailerLength, file: file)
        guard Array(trailer.suffix(8)) == ShardFormat.endMagic else {
            throw ShardError.truncated(file: file, reason: "the end marker is missing (an interrupted copy or a cut file)")
        }
        let (indexOffset64, hlen) = trailer.withUnsafeBytes {
            (UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        guard hlen <= ShardFormat.maxHeaderLength else {
            throw ShardError.headerTooLong(file: file, length: hlen, limit: ShardFormat.maxHeaderLength)
        }
        let room = UInt64(fileSize - ShardFormat.trailerLength - start)
        guard hlen <= room else {
            throw ShardError.truncated(file: file, reason: "header of \(hlen) bytes runs past the start of the \(fileSize)-byte file")
        }
        let headerOffset = fileSize - ShardFormat.trailerLength - Int(hlen)
        guard indexOffset64 >= UInt64(start), indexOffset64 <= UInt64(headerOffset) else {
            throw ShardError.badIndex(file: file, reason: "index offset \(indexOffset64) lies outside bytes \(start)...\(headerOffset)")
        }
        let indexOffset = Int(indexOffset64)
        let indexLength = headerOffset - indexOffset
        guard UInt64(indexLength) <= ShardFormat.maxIndexLength, indexLength % ShardFormat.indexEntryLength == 0 else {
            throw ShardError.badIndex(file: file, reason: "\(indexLength) bytes is not a whole number of \(ShardFormat.indexEntryLength)-byte entries under the limit")
        }
        let headerBytes = try pread(fd, count: Int(hlen), at: headerOffset, file: file)
        let (entries, meta) = try parseHeader(headerBytes, file: file)

        struct Declared { let name: String; let dtype: DType; let shape: [Int]; let digest: String; let chunks: Int }
        var declared: [Declared] = []
        var totalChunks = 0
        for name in entries.keys.sorted() {
            func bad(_ reason: String) -> ShardError { .badHeader(file: file, reason: "tensor '\(name)': \(reason)") }
            let (dtype, shape, digest, e) = try parseCommon(name: name, entry: entries[name]!, file: file)
            guard let chunks = e["chunks"]?.intValue, chunks >= 0 else { throw bad("chunk count missing or negative") }
            let (sum, overflow) = totalChunks.addingReportingOverflow(chunks)
            guard !overflow else { throw bad("chunk count too large") }
            totalChunks = sum
            declared.append(Declared(name: name, dtype: dtype, shape: shape, digest: digest, chunks: chunks))
        }
        guard totalChunks * ShardFormat.indexEntryLength == indexLength else {
            throw ShardError.badIndex(file: file, reason: "the header declares \(totalChunks) chunks, the index holds \(indexLength / ShardFormat.indexEntryLength)")
        }
        let index = try pread(fd, count: indexLength, at: indexOffset, file: file)
        var tensors: [String: TensorInfo] = [:]
        var extents: [(offset: Int, end: Int, tensor: String)] = []
        var entry = 0
        try index.withUnsafeBytes { raw in
            for d in declared {
                var chunks: [ChunkInfo] = []
                chunks.reserveCapacity(d.chunks)
                for i in 0..<d.chunks {
                    let base = entry * ShardFormat.indexEntryLength
                    entry += 1
                    func field(_ k: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: base + 8 * k, as: UInt64.self)) }
                    let (offset, clen, rlen, rows) = (field(0), field(1), field(2), field(3))
                    func bad(_ reason: String) -> ShardError { .badIndex(file: file, reason: "tensor '\(d.name)' chunk \(i): \(reason)") }
                    guard offset >= UInt64(start), clen <= UInt64(indexOffset), offset <= UInt64(indexOffset) - clen else {
                        throw ShardError.outOfBounds(file: file, tensor: d.name,
                                                     reason: "chunk \(i) at byte \(offset) + \(clen) bytes, the chunks end at byte \(indexOffset)")
                    }
                    guard rlen <= UInt64(Int.max), rows <= UInt64(Int.max) else { throw bad("sizes too large to address") }
                    guard Int(rlen) <= ShardFormat.maxRawLength(compressed: Int(clen)) else {
                        throw bad("\(rlen) raw bytes cannot come from a \(clen)-byte zstd frame")
                    }
                    guard Int(rlen) <= ShardFormat.maxChunkRawLength else {
                        throw bad("\(rlen) raw bytes exceed the \(ShardFormat.maxChunkRawLength)-byte chunk limit")
                    }
                    let digest = Array(UnsafeRawBufferPointer(rebasing: raw[(base + 32)..<(base + 64)]))
                    chunks.append(ChunkInfo(offset: Int(offset), clen: Int(clen), rlen: Int(rlen), rows: Int(rows), frameDigest: digest))
                    extents.append((Int(offset), Int(offset + clen), d.name))
                }
                tensors[d.name] = try checkedTensor(name: d.name, dtype: d.dtype, shape: d.shape, digest: d.digest, chunks: chunks, file: file)
            }
        }
        extents.sort { $0.offset < $1.offset }
        for i in extents.indices.dropFirst() where extents[i].offset < extents[i - 1].end {
            throw ShardError.badIndex(file: file, reason: "chunks of '\(extents[i - 1].tensor)' and '\(extents[i].tensor)' overlap at byte \(extents[i].offset)")
        }
        return (meta, tensors)
    }

    /// Version 1: u64 header length after the magic, the header, then one frame per tensor.
    private static func openVersion1(_ fd: Int32, fileSize: Int, file: String) throws -> (meta: JSONValue, tensors: [String: TensorInfo]) {
        guard fileSize >= ShardFormat.preambleLength else {
            throw ShardError.truncated(file: file, reason: "\(fileSize) bytes, shorter than the \(ShardFormat.preambleLength)-byte preamble")
        }
        let preamble = try pread(fd, count: ShardFormat.preambleLength, at: 0, file: file)
        let hlen = preamble.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        guard hlen <= ShardFormat.maxHeaderLength else {
            throw ShardError.headerTooLong(file: file, length: hlen, limit: ShardFormat.maxHeaderLength)
        }
        guard UInt64(ShardFormat.preambleLength) + hlen <= UInt64(fileSize) else {
            throw ShardError.truncated(file: file, reason: "header of \(hlen) bytes runs past the end of the \(fileSize)-byte file")
        }
        let payloadStart = ShardFormat.preambleLength + Int(hlen)
        let (entries, meta) = try parseHeader(try pread(fd, count: Int(hlen), at: ShardFormat.preambleLength, file: file), file: file)
        let payloadSize = fileSize - payloadStart
        var tensors: [String: TensorInfo] = [:]
        for (name, entry) in entries {
            func bad(_ reason: String) -> ShardError { .badHeader(file: file, reason: "tensor '\(name)': \(reason)") }
            let (dtype, shape, digest, e) = try parseCommon(name: name, entry: entry, file: file)
            guard let offset = e["offset"]?.intValue, offset >= 0,
                  let clen = e["clen"]?.intValue, clen >= 0,
                  let rlen = e["rlen"]?.intValue, rlen >= 0
            else { throw bad("offset/clen/rlen missing or not non-negative integers") }
            let (end, endOverflow) = offset.addingReportingOverflow(clen)
            guard !endOverflow, end <= payloadSize else {
                if !endOverflow && offset <= payloadSize {
                    throw ShardError.truncated(file: file, reason: "tensor '\(name)' ends at payload byte \(end), the payload has \(payloadSize)")
                }
                throw ShardError.outOfBounds(file: file, tensor: name, reason: "offset \(offset) + \(clen) bytes, payload has \(payloadSize)")
            }
            guard rlen <= ShardFormat.maxRawLength(compressed: clen) else {
                throw ShardError.sizeMismatch(file: file, tensor: name, reason: "\(rlen) raw bytes cannot come from a \(clen)-byte zstd frame")
            }
            // A version-1 tensor is one frame: it may be larger than a v2 chunk, but not larger than memory.
            try Self.checkAllocatable(rlen, file: file, tensor: name)
            let chunk = ChunkInfo(offset: payloadStart + offset, clen: clen, rlen: rlen, rows: shape.first ?? 1, frameDigest: nil)
            tensors[name] = try checkedTensor(name: name, dtype: dtype, shape: shape, digest: digest, chunks: [chunk], file: file)
        }
        return (meta, tensors)
    }

    private static func parseHeader(_ bytes: Data, file: String) throws -> (entries: [String: JSONValue], meta: JSONValue) {
        let header: JSONValue
        do {
            header = try JSONValue.parse(bytes, source: file)
        } catch {
            throw ShardError.badHeader(file: file, reason: "not JSON")
        }
        guard case .object(let top) = header, case .object(let entries)? = top["tensors"] else {
            throw ShardError.badHeader(file: file, reason: "no \"tensors\" object")
        }
        if let unknown = top.keys.first(where: { $0 != "tensors" && $0 != "meta" }) {
            throw ShardError.badHeader(file: file, reason: "unknown key \"\(unknown)\"")
        }
        return (entries, top["meta"] ?? .object([:]))
    }

    private static func parseCommon(name: String, entry: JSONValue, file: String) throws
        -> (dtype: DType, shape: [Int], digest: String, entry: [String: JSONValue]) {
        func bad(_ reason: String) -> ShardError { .badHeader(file: file, reason: "tensor '\(name)': \(reason)") }
        guard case .object(let e) = entry else { throw bad("entry is not an object") }
        guard let dtypeName = e["dtype"]?.stringValue else { throw bad("no dtype") }
        guard let dtype = DType(rawValue: dtypeName) else { throw bad("unknown dtype '\(dtypeName)'") }
        guard let dims = e["shape"]?.arrayValue else { throw bad("no shape") }
        let shape = try dims.map { d -> Int in
            guard let v = d.intValue, v >= 0 else { throw bad("shape has a dimension that is not a non-negative integer") }
            return v
        }
        guard let digest = e["sha256"]?.stringValue, digest.count == 64 else { throw bad("no sha256") }
        return (dtype, shape, digest, e)
    }

    /// The tensor's shape must be addressable and agree with its chunks' rows and raw lengths.
    private static func checkedTensor(name: String, dtype: DType, shape: [Int], digest: String, chunks: [ChunkInfo],
                                      file: String) throws -> TensorInfo {
        func mismatch(_ reason: String) -> ShardError { .sizeMismatch(file: file, tensor: name, reason: reason) }
        var rowElements = 1
        for d in shape.dropFirst() {
            let (p, o) = rowElements.multipliedReportingOverflow(by: d)
            guard !o else { throw mismatch("shape \(shape) of \(dtype.rawValue) is too large to address") }
            rowElements = p
        }
        let (rowBytes, rowOverflow) = rowElements.multipliedReportingOverflow(by: dtype.byteSize)
        let rows = shape.first ?? 1
        let (total, totalOverflow) = rows.multipliedReportingOverflow(by: rowBytes)
        guard !rowOverflow, !totalOverflow else { throw mismatch("shape \(shape) of \(dtype.rawValue) is too large to address") }
        if shape.isEmpty && chunks.count != 1 { throw mismatch("a 0-d tensor needs exactly one chunk, the index has \(chunks.count)") }
        var rowSum = 0, byteSum = 0
        for (i, c) in chunks.enumerated() {
            let (bytes, o) = c.rows.multipliedReportingOverflow(by: rowBytes)
            guard !o, bytes == c.rlen else {
                throw mismatch(chunks.count == 1 && c.rows == rows
                    ? "shape \(shape) of \(dtype.rawValue) needs \(total) bytes, rlen says \(c.rlen)"
                    : "chunk \(i) holds \(c.rows) rows of \(rowBytes) bytes, rlen says \(c.rlen)")
            }
            rowSum += c.rows
            byteSum += c.rlen
        }
        guard rowSum == rows, byteSum == total else {
            throw mismatch("shape \(shape) has \(rows) rows, its chunks hold \(rowSum)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, sha256: digest, chunks: chunks)
    }

    // MARK: Reading

    public func info(_ name: String) throws -> TensorInfo {
        guard let t = tensors[name] else { throw ShardError.missingTensor(file: file, tensor: name) }
        return t
    }

    /// The raw bytes of one tensor. zstd's content checksum is always checked; `checkDigest` also checks SHA-256.
    public func raw(_ name: String, checkDigest: Bool = false) throws -> Data {
        let t = try info(name)
        try checkDeclaredSizes(t, chunks: t.chunks.indices)
        var raw = Data(count: t.rlen)
        try raw.withUnsafeMutableBytes { try decompress(t, chunks: t.chunks.indices, into: $0) }
        if checkDigest && Hex.encode(SHA256.hash(data: raw)) != t.sha256 {
            throw ShardError.checksumMismatch(file: file, tensor: name)
        }
        return raw
    }

    /// One tensor's values with its shape; throws if the stored dtype is not `T`'s.
    public func read<T: ShardScalar>(_ name: String, as type: T.Type = T.self) throws -> (values: [T], shape: [Int]) {
        let t = try typed(name, T.self)
        return (try values(t, chunks: t.chunks.indices), t.shape)
    }

    /// The number of chunks (records, in a shard written record by record) of a tensor.
    public func chunkCount(_ name: String) throws -> Int { try info(name).chunks.count }

    /// The values of chunk `i` of a tensor, decompressing only that chunk.
    public func readChunk<T: ShardScalar>(_ name: String, _ i: Int, as type: T.Type = T.self) throws -> [T] {
        let t = try typed(name, T.self)
        guard i >= 0 && i < t.chunks.count else {
            throw ShardError.outOfBounds(file: file, tensor: name, reason: "chunk \(i) of \(t.chunks.count)")
        }
        return try values(t, chunks: i..<(i + 1))
    }

    /// Rows `rows` (of the first axis) of a tensor, decompressing only the chunks that hold them.
    public func readRows<T: ShardScalar>(_ name: String, _ rows: Range<Int>, as type: T.Type = T.self) throws -> [T] {
        let t = try typed(name, T.self)
        let starts = t.chunkRowStarts
        guard rows.lowerBound >= 0, rows.upperBound <= starts.last! else {
            throw ShardError.outOfBounds(file: file, tensor: name, reason: "rows \(rows) of \(starts.last!)")
        }
        if rows.isEmpty { return [] }
        // The chunk holding the first row: the last start <= lowerBound (binary search).
        var lo = 0, hi = t.chunks.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= rows.lowerBound { lo = mid } else { hi = mid - 1 }
        }
        var last = lo
        while starts[last + 1] < rows.upperBound { last += 1 }
        if starts[lo] == rows.lowerBound && starts[last + 1] == rows.upperBound {
            return try values(t, chunks: lo..<(last + 1))
        }
        let covering: [T] = try values(t, chunks: lo..<(last + 1))
        let perRow = t.rowElements
        return Array(covering[((rows.lowerBound - starts[lo]) * perRow)..<((rows.upperBound - starts[lo]) * perRow)])
    }

    /// A ragged tensor written by `ShardWriter.addRagged`: rows concatenated, row width and CSR offsets.
    public func readRagged(_ name: String) throws -> (values: [Float], dim: Int, offsets: [Int64]) {
        let (values, shape) = try read(name, as: Float.self)
        let offsets = try readOffsets(name, rows: shape)
        return (values, shape[1], offsets)
    }

    /// The CSR offsets of a ragged tensor, validated against its rows (without reading the rows).
    public func readOffsets(_ name: String) throws -> [Int64] {
        try readOffsets(name, rows: try info(name).shape)
    }

    private func readOffsets(_ name: String, rows shape: [Int]) throws -> [Int64] {
        let (offsets, _) = try read(name + Ragged.offsetsSuffix, as: Int64.self)
        guard shape.count == 2 else {
            throw ShardError.sizeMismatch(file: file, tensor: name, reason: "ragged values must be 2-D, shape is \(shape)")
        }
        do {
            try Ragged.validate(offsets: offsets, rows: shape[0], name: name + Ragged.offsetsSuffix)
        } catch let ShardError.invalidTensor(tensor, reason) {
            throw ShardError.sizeMismatch(file: file, tensor: tensor, reason: reason)
        }
        return offsets
    }

    /// Reads and checks every chunk (its frame digest and zstd checksum) and every tensor's SHA-256, one
    /// chunk in memory at a time, then returns the logical hash.
    public func verify() throws -> String {
        for name in tensorNames {
            let t = tensors[name]!
            var hasher = SHA256()
            var buffer = Data()
            for (i, c) in t.chunks.enumerated() {
                let frame = try Self.pread(fd, count: c.clen, at: c.offset, file: file)
                if let expected = c.frameDigest, Array(SHA256.hash(data: frame)) != expected {
                    throw ShardError.chunkChecksumMismatch(file: file, tensor: name, chunk: i)
                }
                try checkDeclaredSize(frame, c, tensor: name)
                if buffer.count < c.rlen { buffer = Data(count: c.rlen) }
                try buffer.withUnsafeMutableBytes { dst in
                    try decompressFrame(frame, into: UnsafeMutableRawBufferPointer(rebasing: dst[0..<c.rlen]), tensor: name)
                    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: dst[0..<c.rlen]))
                }
            }
            if Hex.encode(hasher.finalize()) != t.sha256 { throw ShardError.checksumMismatch(file: file, tensor: name) }
        }
        return LogicalHash.of(tensors: Array(tensors.values), meta: meta)
    }

    // MARK: Internals

    private func typed<T: ShardScalar>(_ name: String, _: T.Type) throws -> TensorInfo {
        let t = try info(name)
        guard t.dtype == T.dtype else { throw ShardError.wrongDType(file: file, tensor: name, expected: T.dtype, found: t.dtype) }
        return t
    }

    private func values<T: ShardScalar>(_ t: TensorInfo, chunks: Range<Int>) throws -> [T] {
        try checkDeclaredSizes(t, chunks: chunks)
        let bytes = t.chunks[chunks].reduce(0) { $0 + $1.rlen }
        return try [T](unsafeUninitializedCapacity: bytes / t.dtype.byteSize) { buffer, initialized in
            try decompress(t, chunks: chunks, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = bytes / t.dtype.byteSize
        }
    }

    /// A read larger than this machine's physical memory is refused before allocating, whatever the file says.
    static func checkAllocatable(_ bytes: Int, file: String, tensor: String) throws {
        let memory = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        guard memory <= 0 || bytes <= memory else {
            throw ShardError.sizeMismatch(file: file, tensor: tensor, reason: "reading it needs \(bytes) bytes, more than this machine's \(memory)-byte memory")
        }
    }

    /// Before anything is allocated for them, each chunk's zstd frame must declare the size the index gives, and
    /// all of them together must fit in memory.
    private func checkDeclaredSizes(_ t: TensorInfo, chunks: Range<Int>) throws {
        try Self.checkAllocatable(t.chunks[chunks].reduce(0) { $0 + $1.rlen }, file: file, tensor: t.name)
        for c in t.chunks[chunks] {
            let head = try Self.pread(fd, count: min(c.clen, 18), at: c.offset, file: file)
            try checkDeclaredSize(head, c, tensor: t.name)
        }
    }

    private func checkDeclaredSize(_ frame: Data, _ c: ChunkInfo, tensor: String) throws {
        let declared = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if declared == ZSTD_CONTENTSIZE_ERROR {
            throw ShardError.corruptFrame(file: file, tensor: tensor, reason: "not a zstd frame")
        }
        if declared == ZSTD_CONTENTSIZE_UNKNOWN {
            throw ShardError.corruptFrame(file: file, tensor: tensor, reason: "a frame does not declare its size (shard frames always do)")
        }
        if declared != UInt64(c.rlen) {
            throw ShardError.sizeMismatch(file: file, tensor: tensor, reason: "a frame declares \(declared) bytes, the index says \(c.rlen)")
        }
    }

    /// Decompresses consecutive chunks into `destination` (exactly their raw length).
    private func decompress(_ t: TensorInfo, chunks: Range<Int>, into destination: UnsafeMutableRawBufferPointer) throws {
        var at = 0
        for c in t.chunks[chunks] {
            let frame = try Self.pread(fd, count: c.clen, at: c.offset, file: file)
            try decompressFrame(frame, into: UnsafeMutableRawBufferPointer(rebasing: destination[at..<(at + c.rlen)]), tensor: t.name)
            at += c.rlen
        }
    }

    /// Maps zstd's failures to shard errors that name the file and tensor.
    private func decompressFrame(_ frame: Data, into destination: UnsafeMutableRawBufferPointer, tensor: String) throws {
        do {
            try frame.withUnsafeBytes { try Zstd.decompress($0, into: destination) }
        } catch let error as ZstdError {
            if error.description.lowercased().contains("checksum") {
                throw ShardError.checksumMismatch(file: file, tensor: tensor)
            }
            throw ShardError.corruptFrame(file: file, tensor: tensor, reason: error.description)
        }
    }

    static func pread(_ fd: Int32, count: Int, at offset: Int, file: String) throws -> Data {
        var data = Data(count: count)
        var done = 0
        try data.withUnsafeMutableBytes { buf in
            while done < count {
                let n = Glibc.pread(fd, buf.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ShardError.unreadable(file: file, reason: String(cString: strerror(errno)))
                }
                if n == 0 { throw ShardError.truncated(file: file, reason: "end of file at byte \(offset + done)") }
                done += n
            }
        }
        return data
    }
}

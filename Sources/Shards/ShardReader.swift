internal import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads a shard file. Opening validates the preamble and the header against the file size; each tensor
/// is read on its own (one zstd frame, checked by zstd's content checksum), and `verify()` additionally
/// checks every tensor's SHA-256 and returns the logical hash.
public final class ShardReader {
    public let url: URL
    public let meta: JSONValue
    public let tensors: [String: TensorInfo]
    public let fileSize: Int
    private let payloadStart: Int
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
        fileSize = Int(st.st_size)

        guard fileSize >= ShardFormat.preambleLength else {
            if fileSize >= ShardFormat.magicPrefix.count {
                let head = try Self.pread(fd, count: ShardFormat.magicPrefix.count, at: 0, file: file)
                if Array(head) != ShardFormat.magicPrefix { throw ShardError.badMagic(file: file) }
            }
            throw ShardError.truncated(file: file, reason: "\(fileSize) bytes, shorter than the \(ShardFormat.preambleLength)-byte preamble")
        }
        let preamble = try Self.pread(fd, count: ShardFormat.preambleLength, at: 0, file: file)
        guard Array(preamble.prefix(ShardFormat.magicPrefix.count)) == ShardFormat.magicPrefix else {
            throw ShardError.badMagic(file: file)
        }
        let version = preamble[preamble.startIndex + 7]
        guard version == ShardFormat.version else { throw ShardError.unsupportedVersion(file: file, version: version) }
        let hlen = preamble.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        guard hlen <= ShardFormat.maxHeaderLength else {
            throw ShardError.headerTooLong(file: file, length: hlen, limit: ShardFormat.maxHeaderLength)
        }
        guard UInt64(ShardFormat.preambleLength) + hlen <= UInt64(fileSize) else {
            throw ShardError.truncated(file: file, reason: "header of \(hlen) bytes runs past the end of the \(fileSize)-byte file")
        }
        payloadStart = ShardFormat.preambleLength + Int(hlen)
        let headerBytes = try Self.pread(fd, count: Int(hlen), at: ShardFormat.preambleLength, file: file)
        let header: JSONValue
        do {
            header = try JSONValue.parse(headerBytes, source: file)
        } catch {
            throw ShardError.badHeader(file: file, reason: "not JSON")
        }
        guard case .object(let top) = header, case .object(let entries)? = top["tensors"] else {
            throw ShardError.badHeader(file: file, reason: "no \"tensors\" object")
        }
        if let unknown = top.keys.first(where: { $0 != "tensors" && $0 != "meta" }) {
            throw ShardError.badHeader(file: file, reason: "unknown key \"\(unknown)\"")
        }
        meta = top["meta"] ?? .object([:])
        let payloadSize = fileSize - payloadStart
        var parsed: [String: TensorInfo] = [:]
        for (name, entry) in entries {
            parsed[name] = try Self.parseEntry(name: name, entry: entry, payloadSize: payloadSize, file: file)
        }
        tensors = parsed
        self.fd = fd
        ok = true
    }

    deinit { close(fd) }

    private static func parseEntry(name: String, entry: JSONValue, payloadSize: Int, file: String) throws -> TensorInfo {
        func bad(_ reason: String) -> ShardError { .badHeader(file: file, reason: "tensor '\(name)': \(reason)") }
        guard case .object(let e) = entry else { throw bad("entry is not an object") }
        guard let dtypeName = e["dtype"]?.stringValue else { throw bad("no dtype") }
        guard let dtype = DType(rawValue: dtypeName) else { throw bad("unknown dtype '\(dtypeName)'") }
        guard let dims = e["shape"]?.arrayValue else { throw bad("no shape") }
        let shape = try dims.map { d -> Int in
            guard let v = d.intValue, v >= 0 else { throw bad("shape has a dimension that is not a non-negative integer") }
            return v
        }
        guard let offset = e["offset"]?.intValue, offset >= 0,
              let clen = e["clen"]?.intValue, clen >= 0,
              let rlen = e["rlen"]?.intValue, rlen >= 0
        else { throw bad("offset/clen/rlen missing or not non-negative integers") }
        guard let digest = e["sha256"]?.stringValue, digest.count == 64 else { throw bad("no sha256") }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        let (bytes, bytesOverflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, !bytesOverflow else {
            throw ShardError.sizeMismatch(file: file, tensor: name, reason: "shape \(shape) of \(dtype.rawValue) is too large to address")
        }
        guard bytes == rlen else {
            throw ShardError.sizeMismatch(file: file, tensor: name,
                                          reason: "shape \(shape) of \(dtype.rawValue) needs \(bytes) bytes, rlen says \(rlen)")
        }
        let (end, endOverflow) = offset.addingReportingOverflow(clen)
        guard !endOverflow, end <= payloadSize else {
            if !endOverflow && offset <= payloadSize {
                throw ShardError.truncated(file: file, reason: "tensor '\(name)' ends at payload byte \(end), the payload has \(payloadSize)")
            }
            throw ShardError.outOfBounds(file: file, tensor: name, reason: "offset \(offset) + \(clen) bytes, payload has \(payloadSize)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, offset: offset, clen: clen, rlen: rlen, sha256: digest)
    }

    public func info(_ name: String) throws -> TensorInfo {
        guard let t = tensors[name] else { throw ShardError.missingTensor(file: file, tensor: name) }
        return t
    }

    /// The raw bytes of one tensor. zstd's content checksum is always checked; `checkDigest` also checks SHA-256.
    public func raw(_ name: String, checkDigest: Bool = false) throws -> Data {
        let t = try info(name)
        var raw = Data(count: t.rlen)
        try raw.withUnsafeMutableBytes { try decompress(t, into: $0) }
        if checkDigest && Hex.encode(SHA256.hash(data: raw)) != t.sha256 {
            throw ShardError.checksumMismatch(file: file, tensor: name)
        }
        return raw
    }

    /// One tensor's values with its shape; throws if the stored dtype is not `T`'s.
    public func read<T: ShardScalar>(_ name: String, as type: T.Type = T.self) throws -> (values: [T], shape: [Int]) {
        let t = try info(name)
        guard t.dtype == T.dtype else { throw ShardError.wrongDType(file: file, tensor: name, expected: T.dtype, found: t.dtype) }
        let values = try [T](unsafeUninitializedCapacity: t.count) { buffer, initialized in
            try decompress(t, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = t.count
        }
        return (values, t.shape)
    }

    /// Decompresses one tensor's frame into `destination` (exactly `rlen` bytes), mapping zstd's failures
    /// to shard errors that name the file and tensor.
    private func decompress(_ t: TensorInfo, into destination: UnsafeMutableRawBufferPointer) throws {
        let frame = try Self.pread(fd, count: t.clen, at: payloadStart + t.offset, file: file)
        do {
            try frame.withUnsafeBytes { try Zstd.decompress($0, into: destination) }
        } catch let error as ZstdError {
            if error.description.lowercased().contains("checksum") {
                throw ShardError.checksumMismatch(file: file, tensor: t.name)
            }
            throw ShardError.corruptFrame(file: file, tensor: t.name, reason: error.description)
        }
    }

    /// A ragged tensor written by `ShardWriter.addRagged`: rows concatenated, row width and CSR offsets.
    public func readRagged(_ name: String) throws -> (values: [Float], dim: Int, offsets: [Int64]) {
        let (values, shape) = try read(name, as: Float.self)
        let (offsets, _) = try read(name + Ragged.offsetsSuffix, as: Int64.self)
        guard shape.count == 2 else {
            throw ShardError.sizeMismatch(file: file, tensor: name, reason: "ragged values must be 2-D, shape is \(shape)")
        }
        do {
            try Ragged.validate(offsets: offsets, rows: shape[0], name: name + Ragged.offsetsSuffix)
        } catch let ShardError.invalidTensor(tensor, reason) {
            throw ShardError.sizeMismatch(file: file, tensor: tensor, reason: reason)
        }
        return (values, shape[1], offsets)
    }

    /// Reads and checks every tensor (zstd checksum and SHA-256), then returns the logical hash.
    public func verify() throws -> String {
        for name in tensorNames { _ = try raw(name, checkDigest: true) }
        return LogicalHash.of(tensors: Array(tensors.values), meta: meta)
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

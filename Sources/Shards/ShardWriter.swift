import Foundation

/// What a finished write produced.
public struct ShardSummary: Sendable {
    /// The logical content hash (ARCHITECTURE.md section 4), hex.
    public let logicalHash: String
    /// File size in bytes.
    public let bytes: Int
}

/// Collects named tensors and metadata, then writes them as one shard file (format v2, each
/// tensor cut into chunks of at most `chunkBytes`), atomically. `ShardStreamWriter` writes record by record instead.
public struct ShardWriter {
    struct Pending {
        let name: String
        let dtype: DType
        let shape: [Int]
        let raw: Data
    }

    public var meta: JSONValue
    /// zstd level; it does not change the logical hash.
    public var level: Int32
    private var pending: [String: Pending] = [:]

    public init(meta: JSONValue = .object([:]), level: Int32 = 3) {
        self.meta = meta
        self.level = level
    }

    public var tensorNames: [String] { pending.keys.sorted() }

    /// Adds a dense tensor. `values.count` must equal the product of `shape`.
    public mutating func add<T: ShardScalar>(_ name: String, _ values: [T], shape: [Int]) throws {
        let count = shape.reduce(1, *)
        guard !name.isEmpty else { throw ShardError.invalidTensor(name: name, reason: "empty name") }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw ShardError.invalidTensor(name: name, reason: "negative dimension in shape \(shape)")
        }
        guard values.count == count else {
            throw ShardError.invalidTensor(name: name, reason: "\(values.count) values do not fill shape \(shape)")
        }
        guard pending[name] == nil else { throw ShardError.invalidTensor(name: name, reason: "added twice") }
        let raw = values.withUnsafeBufferPointer { Data(buffer: $0) }
        pending[name] = Pending(name: name, dtype: T.dtype, shape: shape, raw: raw)
    }

    /// Adds ragged rows in CSR layout: `name` holds the rows concatenated, `[offsets.last, dim]`, and
    /// `name.offsets` the `[N+1]` row boundaries (in rows), starting at 0 and non-decreasing.
    public mutating func addRagged(_ name: String, values: [Float], offsets: [Int64], dim: Int) throws {
        try Ragged.validate(offsets: offsets, rows: dim > 0 ? values.count / dim : 0, name: name)
        guard dim > 0, values.count % dim == 0 else {
            throw ShardError.invalidTensor(name: name, reason: "\(values.count) values are not rows of width \(dim)")
        }
        try add(name, values, shape: [values.count / dim, dim])
        try add(name + Ragged.offsetsSuffix, offsets, shape: [offsets.count])
    }

    /// Largest raw chunk the in-memory writer cuts a tensor into (whole rows, at least one): chunks are
    /// compressed in parallel and verified in bounded memory.
    public static let chunkBytes = 4 << 20

    /// Writes the shard (format version 2) to `url` through a temporary file, fsync and rename.
    @discardableResult
    public func write(to url: URL) throws -> ShardSummary {
        struct Task { let tensor: Int; let range: Range<Int>?; let rows: Int }
        let ordered = pending.keys.sorted().map { pending[$0]! }
        // Compress every chunk and hash every tensor first, in parallel (they are independent), then lay out the file.
        var tasks: [Task] = []
        for (i, t) in ordered.enumerated() {
            tasks.append(Task(tensor: i, range: nil, rows: 0))
            if t.shape.isEmpty {
                tasks.append(Task(tensor: i, range: 0..<t.raw.count, rows: 1))
                continue
            }
            let rowBytes = t.shape.dropFirst().reduce(1, *) * t.dtype.byteSize
            guard rowBytes > 0 else {
                if t.shape[0] > 0 { tasks.append(Task(tensor: i, range: 0..<0, rows: t.shape[0])) }
                continue
            }
            let rowsPerChunk = max(1, Self.chunkBytes / rowBytes)
            for first in stride(from: 0, to: t.shape[0], by: rowsPerChunk) {
                let rows = min(rowsPerChunk, t.shape[0] - first)
                tasks.append(Task(tensor: i, range: (first * rowBytes)..<((first + rows) * rowBytes), rows: rows))
            }
        }
        var frames = [Data](repeating: Data(), count: tasks.count)
        var digests = [String](repeating: "", count: ordered.count)
        var failure: Error?
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: tasks.count) { n in
            let task = tasks[n], raw = ordered[task.tensor].raw
            do {
                if let range = task.range {
                    let frame = try raw.withUnsafeBytes { try Zstd.compress(UnsafeRawBufferPointer(rebasing: $0[range]), level: level) }
                    lock.lock()
                    frames[n] = frame
                    lock.unlock()
                } else {
                    let digest = Hex.encode(SHA256.hash(data: raw))
                    lock.lock()
                    digests[task.tensor] = digest
                    lock.unlock()
                }
            } catch {
                lock.lock()
                failure = error
                lock.unlock()
            }
        }
        if let failure { throw ShardError.writeFailed(file: url.path, reason: "\(failure)") }

        let writer = try ShardStreamWriter(url: url, meta: meta, level: level)
        for (i, t) in ordered.enumerated() {
            try writer.declare(t.name, dtype: t.dtype, rowShape: t.shape.isEmpty ? nil : Array(t.shape.dropFirst()))
            let chunks = tasks.indices.filter { tasks[$0].tensor == i && tasks[$0].range != nil }
                .map { (frame: frames[$0], rlen: tasks[$0].range!.count, rows: tasks[$0].rows) }
            try writer.appendCompressed(t.name, frames: chunks, digest: digests[i])
        }
        return try writer.finish()
    }
}

/// The content identity of a shard: independent of compression level and of the file layout.
public enum LogicalHash {
    public static func of(tensors: [TensorInfo], meta: JSONValue) -> String {
        var hasher = SHA256()
        hasher.update(data: Data("tshard-logical-v1\n".utf8))
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            let descriptor = JSONValue.object([
                "name": .string(t.name), "dtype": .string(t.dtype.rawValue),
                "shape": .array(t.shape.map { .number(Double($0)) }),
            ])
            hasher.update(data: Data((descriptor.canonical + "\n" + t.sha256 + "\n").utf8))
        }
        hasher.update(data: Data(meta.canonical.utf8))
        return Hex.encode(hasher.finalize())
    }
}

public enum Hex {
    public static func encode<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Helpers for the CSR layout of ragged tensors.
public enum Ragged {
    public static let offsetsSuffix = ".offsets"

    static func validate(offsets: [Int64], rows: Int, name: String) throws {
        guard let first = offsets.first, first == 0 else {
            throw ShardError.invalidTensor(name: name, reason: "offsets must start at 0")
        }
        for i in 1..<offsets.count where offsets[i] < offsets[i - 1] {
            throw ShardError.invalidTensor(name: name, reason: "offsets decrease at index \(i)")
        }
        guard offsets.last! == Int64(rows) else {
            throw ShardError.invalidTensor(name: name, reason: "offsets end at \(offsets.last!), but there are \(rows) rows")
        }
    }
}

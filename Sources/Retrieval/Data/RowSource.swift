import Foundation
import Shards

/// Where the rows of a split's records come from (a record is a video's clips or a query's tokens). Every
/// stage reads records one at a time through this, so memory does not grow with the dataset: rows live in
/// memory only for small sets built in place (tests, a batch's own subset), and are otherwise decompressed
/// chunk by chunk from a shard, or gathered from another source by provenance (synthesized videos).
public protocol RowSource: AnyObject, Sendable {
    /// The rows of record `i`, row-major, `[rows(i) * width]`.
    func rows(_ i: Int) throws -> [Float]
}

/// Rows held in memory, CSR-style. Appending is copy-on-write through `VideoSet`/`QuerySet`.
public final class MemoryRows: RowSource, @unchecked Sendable {
    public private(set) var values: [Float]
    public private(set) var offsets: [Int]
    public let width: Int

    public init(values: [Float], offsets: [Int], width: Int) {
        self.values = values
        self.offsets = offsets
        self.width = width
    }

    public func rows(_ i: Int) throws -> [Float] { Array(values[(offsets[i] * width)..<(offsets[i + 1] * width)]) }

    /// `source` (which must hold its rows in memory) with `rows` appended as a new record: in place when no
    /// other set shares it, on a copy otherwise (value semantics for `VideoSet`/`QuerySet`).
    static func appending(_ rows: [Float], to source: inout RowSource) -> MemoryRows {
        guard var memory = source as? MemoryRows else { preconditionFailure("only an in-memory set grows in place") }
        source = placeholder
        if !isKnownUniquelyReferenced(&memory) { memory = MemoryRows(values: memory.values, offsets: memory.offsets, width: memory.width) }
        memory.values += rows
        memory.offsets.append(memory.offsets.last! + rows.count / max(1, memory.width))
        return memory
    }

    private static let placeholder = MemoryRows(values: [], offsets: [0], width: 0)
}

/// Rows read from a ragged tensor of a shard, one record (chunk, or row range) at a time, with a bounded
/// least-recently-used cache of decoded records. Safe to use from several threads (a prefetching reader and
/// the compute thread).
public final class ShardRows: RowSource, @unchecked Sendable {
    public let reader: ShardReader
    public let tensor: String
    public let offsets: [Int]
    public let width: Int
    /// Whether record i is exactly chunk i (a shard written record by record), so a read is one chunk.
    let recordPerChunk: Bool
    private let cacheLimit: Int
    private var cache: [Int: (rows: [Float], tick: Int)] = [:]
    private var cachedBytes = 0
    private var tick = 0
    private let lock = NSLock()

    /// Default cache budget per source: a few hundred QVHighlights-sized videos.
    public static let defaultCacheBytes = 256 << 20

    public init(reader: ShardReader, tensor: String, offsets: [Int], width: Int, cacheBytes: Int = ShardRows.defaultCacheBytes) throws {
        self.reader = reader
        self.tensor = tensor
        self.offsets = offsets
        self.width = width
        self.cacheLimit = cacheBytes
        let starts = try reader.info(tensor).chunkRowStarts
        recordPerChunk = starts == offsets
    }

    public func rows(_ i: Int) throws -> [Float] {
        lock.lock()
        if let hit = cache[i] {
            tick += 1
            cache[i]!.tick = tick
            lock.unlock()
            return hit.rows
        }
        lock.unlock()
        let rows = recordPerChunk ? try reader.readChunk(tensor, i, as: Float.self)
                                  : try reader.readRows(tensor, offsets[i]..<offsets[i + 1], as: Float.self)
        let bytes = rows.count * 4
        guard bytes <= cacheLimit / 4 else { return rows }
        lock.lock()
        defer { lock.unlock() }
        tick += 1
        if cache[i] == nil {
            cache[i] = (rows, tick)
            cachedBytes += bytes
        }
        if cachedBytes > cacheLimit {
            // Evict the least recently used half of the entries' bytes in one sweep (amortised O(1) per read).
            let order = cache.sorted { $0.value.tick < $1.value.tick }
            for (key, entry) in order where cachedBytes > cacheLimit / 2 {
                cache[key] = nil
                cachedBytes -= entry.rows.count * 4
            }
        }
        return rows
    }
}

/// Record i is record `picks[i]` of another source (a subset of queries, the tokens of synthesized samples).
public final class PickedRows: RowSource, @unchecked Sendable {
    public let base: RowSource
    public let picks: [Int]

    public init(base: RowSource, picks: [Int]) {
        self.base = base
        self.picks = picks
    }

    public func rows(_ i: Int) throws -> [Float] { try base.rows(picks[i]) }
}

/// Synthesized videos gathered on the fly from their source videos by provenance: clip p of sample i is
/// clip `provenance[p].clip` of video `provenance[p].video` of `base`, with the temporal endpoint dims
/// recomputed for its new position.
public final class GatheredClips: RowSource, @unchecked Sendable {
    public let base: VideoSet
    /// `[clips, 2]`: (source video, source clip) of every synthesized clip, samples concatenated.
    public let provenance: [Int32]
    /// `[samples + 1]` clip offsets into `provenance`.
    public let offsets: [Int]

    public init(base: VideoSet, provenance: [Int32], offsets: [Int]) {
        self.base = base
        self.provenance = provenance
        self.offsets = offsets
    }

    public func rows(_ i: Int) throws -> [Float] {
        let width = base.dim, d = base.featureDim
        let length = offsets[i + 1] - offsets[i]
        var out = [Float](repeating: 0, count: length * width)
        var loaded: [Int: [Float]] = [:]
        for p in 0..<length {
            let video = Int(provenance[(offsets[i] + p) * 2]), clip = Int(provenance[(offsets[i] + p) * 2 + 1])
            if loaded[video] == nil { loaded[video] = try base.clips(video) }
            let rows = loaded[video]!
            for j in 0..<d { out[p * width + j] = rows[clip * width + j] }
            if base.tef {
                out[p * width + d] = Float(p) / Float(length)
                out[p * width + d + 1] = Float(p + 1) / Float(length)
            }
        }
        return out
    }
}

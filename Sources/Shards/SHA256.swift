import CSHA256
import Foundation

/// SHA-256 (FIPS 180-4), incremental: the digest of shard tensors, cache keys and content hashes. The block
/// function is C (`CSHA256`), on the CPU's SHA extensions where it has them.
public struct SHA256 {
    private var state: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]
    /// Bytes not yet compressed (fewer than one block).
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    public init() { pending.reserveCapacity(Self.blockSize) }

    static let blockSize = 64

    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        guard var base = bufferPointer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var count = bufferPointer.count
        length &+= UInt64(count)
        if !pending.isEmpty {
            let take = min(count, Self.blockSize - pending.count)
            pending.append(contentsOf: UnsafeBufferPointer(start: base, count: take))
            base += take
            count -= take
            guard pending.count == Self.blockSize else { return }
            compress(pending)
            pending.removeAll(keepingCapacity: true)
        }
        let blocks = count / Self.blockSize
        if blocks > 0 {
            state.withUnsafeMutableBufferPointer { sha256_blocks($0.baseAddress!, base, blocks) }
            base += blocks * Self.blockSize
            count -= blocks * Self.blockSize
        }
        pending.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
    }

    public mutating func update(data: Data) {
        data.withUnsafeBytes { update(bufferPointer: $0) }
    }

    /// The 32-byte digest of everything given so far (the hasher itself is left as it was).
    public func finalize() -> [UInt8] {
        var copy = self
        // Padding: a one bit, zeros up to 56 bytes mod 64, then the message length in bits, big-endian.
        var tail = pending
        tail.append(0x80)
        while tail.count % Self.blockSize != 56 { tail.append(0) }
        let bits = length &* 8
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        copy.compress(tail)
        var digest = [UInt8]()
        digest.reserveCapacity(32)
        for word in copy.state {
            for shift in stride(from: 24, through: 0, by: -8) { digest.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        return digest
    }

    public static func hash(data: Data) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: data)
        return hasher.finalize()
    }

    /// Compresses whole blocks held in an array.
    private mutating func compress(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { b in
            state.withUnsafeMutableBufferPointer { sha256_blocks($0.baseAddress!, b.baseAddress!, b.count / Self.blockSize) }
        }
    }
}

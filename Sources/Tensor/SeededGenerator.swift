import CVectorKernels
import Foundation

/// A fast, seedable pseudo-random generator (xoshiro256**), seeded through SplitMix64.
///
/// Its whole state is four `UInt64` words (`state`), so a training run can save and restore it and
/// continue bit-identically.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator whose stream is determined by `seed`.
    public init(seed: UInt64) {
        var mixer = seed
        s0 = CounterHash.splitMix(&mixer)
        s1 = CounterHash.splitMix(&mixer)
        s2 = CounterHash.splitMix(&mixer)
        s3 = CounterHash.splitMix(&mixer)
    }

    /// Restores a generator from a `state` previously read from another one.
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 },
                     "SeededGenerator: state must be 4 words, not all zero (got \(state))")
        (s0, s1, s2, s3) = (state[0], state[1], state[2], state[3])
    }

    /// The generator's complete state (4 words), for checkpoints.
    public var state: [UInt64] { [s0, s1, s2, s3] }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotate(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotate(s3, 45)
        return result
    }

    /// A uniform `Float` in `[0, 1)` with 24 random bits.
    @inline(__always)
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform `Float` in `[low, high)`.
    public mutating func nextUniform(in low: Float, _ high: Float) -> Float {
        low + (high - low) * nextUniform()
    }

    /// A standard normal sample (Box-Muller, one draw per call).
    public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let radius = (-2 * Foundation.log(max(u1, 1e-300))).squareRoot()
        return Float(radius * Foundation.cos(2 * Double.pi * u2))
    }

    @inline(__always)
    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// A stateless hash of (seed, counter): random bits for element `i` of a stream without generating
/// elements `0..<i`, so that masks are filled in parallel and still depend only on the seed.
public enum CounterHash {
    @inline(__always)
    public static func bits(seed: UInt64, counter: Int) -> UInt64 {
        var x = seed &+ UInt64(truncatingIfNeeded: counter) &* 0x9E37_79B9_7F4A_7C15
        return splitMix(&x)
    }

    @inline(__always)
    static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Which samples of a whole batch a tensor's leading axis holds when a process computes a slice of it
/// (data-parallel training): row `r` is sample `(first + r) % whole`. Dropout kernels given one key each
/// element's mask by its index in the whole batch's tensor, so a sample draws the same mask however the
/// batch is split over processes. The modulo serves the one extra row a slice may carry, the next
/// sample's text for the negative pairing, which wraps to sample 0 after the last.
public struct BatchRows: Sendable, Equatable {
    public let first: Int
    public let whole: Int

    public init(first: Int, whole: Int) {
        precondition(whole > 0 && first >= 0 && first < whole, "batch rows: first \(first) of \(whole)")
        self.first = first
        self.whole = whole
    }

    /// The whole batch's row of local row `row`.
    @inline(__always)
    public func wholeRow(_ row: Int) -> Int { (first + row) % whole }
}

/// Where the elements of a tensor of `shape` sit in the mask of the whole batch described by `rows`:
/// element `i` of leading row `i / rowLength` is element `wholeRow * rowLength + i % rowLength` there.
public struct MaskIndexing: Sendable, Equatable {
    public let rows: BatchRows
    public let rowLength: Int

    /// Nil when `rows` is nil (the tensor is the whole batch): indices are used as they are.
    public init?(rows: BatchRows?, shape: [Int]) {
        guard let rows, let leading = shape.first, leading > 0 else { return nil }
        self.rows = rows
        rowLength = shape.reduce(1, *) / leading
    }

    /// The whole batch's index of local element `index`.
    @inline(__always)
    public func wholeIndex(_ index: Int) -> Int {
        let row = index / rowLength
        return rows.wholeRow(row) * rowLength + (index - row * rowLength)
    }
}

/// Inverted-dropout masks: each element is kept with probability `1 - p` and then scaled by
/// `1 / (1 - p)`, so the expected activation is unchanged.
///
/// Element `i` of the mask for `seed` is decided by 16-bit quarter `i % 4` of `CounterHash.bits(seed,
/// i / 4)` (so `p` is resolved to 1/65536), which makes any range of a mask cheap to regenerate on its
/// own: fused kernels apply a mask on the fly in the forward pass and regenerate it in the backward
/// pass instead of storing it.
public enum DropoutMask {
    /// Writes `count` mask values (0 or `1 / (1 - p)`) for `seed` into `mask`, in parallel.
    /// Element `i` depends only on `(seed, i)`.
    public static func fill(_ mask: UnsafeMutablePointer<Float>, count: Int, probability p: Float,
                            seed: UInt64) {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        Parallelism.forEachChunk(count: count, grain: Parallelism.elementwiseGrain) { range in
            fill(mask + range.lowerBound, range: range, probability: p, seed: seed)
        }
    }

    /// Writes the mask values of elements `range` of the mask for `seed` into `mask[0..<range.count]`,
    /// serially: the building block of kernels that apply a mask without storing it. On a CPU with AVX-512,
    /// eight hashes at a time (`dropout_mask_avx512`, the same bits as `portableFill`).
    @inline(__always)
    public static func fill(_ mask: UnsafeMutablePointer<Float>, range: Range<Int>, probability p: Float,
                            seed: UInt64) {
        if GEMM.avx512Available && range.count >= 32 {
            dropout_mask_avx512(mask, range.lowerBound, range.count, seed, UInt32((Double(p) * 65_536).rounded()), 1 / (1 - p))
        } else {
            portableFill(mask, range: range, probability: p, seed: seed)
        }
    }

    /// `fill(_:range:probability:seed:)` in portable code, four decisions per hash.
    public static func portableFill(_ mask: UnsafeMutablePointer<Float>, range: Range<Int>, probability p: Float,
                                    seed: UInt64) {
        let keepBits = (1 / (1 - p)).bitPattern
        let threshold = UInt64((Double(p) * 65_536).rounded())
        var index = range.lowerBound
        var out = mask
        // Elements before the first whole group of four, then whole groups (four decisions per hash,
        // no branches), then the rest.
        while index & 3 != 0 && index < range.upperBound {
            out[0] = decision(CounterHash.bits(seed: seed, counter: index >> 2), quarter: index & 3, threshold, keepBits)
            index += 1
            out += 1
        }
        while index + 4 <= range.upperBound {
            let bits = CounterHash.bits(seed: seed, counter: index >> 2)
            out[0] = decision(bits, quarter: 0, threshold, keepBits)
            out[1] = decision(bits, quarter: 1, threshold, keepBits)
            out[2] = decision(bits, quarter: 2, threshold, keepBits)
            out[3] = decision(bits, quarter: 3, threshold, keepBits)
            index += 4
            out += 4
        }
        while index < range.upperBound {
            out[0] = decision(CounterHash.bits(seed: seed, counter: index >> 2), quarter: index & 3, threshold, keepBits)
            index += 1
            out += 1
        }
    }

    /// As `fill(_:range:probability:seed:)`, for elements `range` of a slice of a whole batch: each run of
    /// elements within one leading row takes the whole batch's mask values of that row.
    @inline(__always)
    public static func fill(_ mask: UnsafeMutablePointer<Float>, range: Range<Int>, probability p: Float,
                            seed: UInt64, indexing: MaskIndexing?) {
        guard let indexing, indexing.rowLength > 0 else {
            fill(mask, range: range, probability: p, seed: seed)
            return
        }
        var start = range.lowerBound
        while start < range.upperBound {
            let row = start / indexing.rowLength
            let end = Swift.min(range.upperBound, (row + 1) * indexing.rowLength)
            let wholeStart = indexing.wholeIndex(start)
            fill(mask + (start - range.lowerBound), range: wholeStart..<(wholeStart + end - start), probability: p, seed: seed)
            start = end
        }
    }

    /// The keep scale (`keepBits`) when quarter `quarter` of `bits` is at least `threshold`, else 0,
    /// computed without a branch (a branch here mispredicts on every dropped element).
    @inline(__always)
    static func decision(_ bits: UInt64, quarter: Int, _ threshold: UInt64, _ keepBits: UInt32) -> Float {
        let value = (bits >> UInt64(16 * quarter)) & 0xFFFF
        let kept = UInt32(truncatingIfNeeded: 1 &- ((value &- threshold) >> 63))
        return Float(bitPattern: kept &* keepBits)
    }

    /// A mask tensor of `shape` for `seed`.
    public static func make(shape: [Int], probability p: Float, seed: UInt64) -> Tensor {
        Tensor(shape: shape) { out in
            fill(out.baseAddress!, count: out.count, probability: p, seed: seed)
        }
    }

    /// `x` times the mask for `seed` (the mask of `make(shape: x.shape, ...)`), without storing the mask:
    /// inverted dropout's forward pass, and (applied to the output gradient with the same seed) its
    /// backward pass.
    /// With `rows`, `x` is a slice of a whole batch and takes the whole batch's mask of its rows.
    public static func apply(_ x: Tensor, probability p: Float, seed: UInt64, rows: BatchRows? = nil) -> Tensor {
        let profiled = Profiler.enter(.dropout)
        defer { Profiler.exit(profiled) }
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let indexing = MaskIndexing(rows: rows, shape: x.shape)
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                Parallelism.forEachChunk(count: input.count, grain: Parallelism.elementwiseGrain) { range in
                    forEachBlock(of: range, probability: p, seed: seed, indexing: indexing) { block, mask in
                        let source = input.baseAddress! + block.lowerBound
                        let target = out.baseAddress! + block.lowerBound
                        for i in 0..<block.count { target[i] = source[i] * mask[i] }
                    }
                }
            }
        }
    }

    /// Calls `body` on consecutive blocks of `range` (at most 4096 elements, so the mask stays in L1)
    /// with the mask values of each block, regenerated into a temporary buffer.
    @inline(__always)
    public static func forEachBlock(of range: Range<Int>, probability p: Float, seed: UInt64,
                                    indexing: MaskIndexing? = nil, _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        let blockSize = 4096
        withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.min(blockSize, Swift.max(range.count, 1))) { mask in
            var start = range.lowerBound
            while start < range.upperBound {
                let block = start..<Swift.min(range.upperBound, start + blockSize)
                fill(mask.baseAddress!, range: block, probability: p, seed: seed, indexing: indexing)
                body(block, UnsafePointer(mask.baseAddress!))
                start = block.upperBound
            }
        }
    }
}

/// Softmax of contiguous rows with 512-bit vectors (see `SGEMM512` for when this module's code may run): bit for bit
/// what `Tensor`'s portable contiguous softmax (`RowMath.maximum`, `RowMath.exponentials`) gives. Each element's
/// exponential is the same sequence of operations, only sixteen lanes wide instead of eight; the sums are the same
/// eight partial sums, fed the same 8-element chunks in the same order, added up the same way.
public enum Softmax512 {
    typealias V = SIMD16<Float>

    /// Replaces each of the `rows` rows of `count` values at `x` (row `r` at `x + r * count`) with its softmax.
    /// `-infinity` entries get 0; a row that is entirely `-infinity` becomes zeros.
    ///
    /// A row's softmax is a chain of dependent steps (maximum, exponentials, sum, scale) too short to keep the vector
    /// units busy, so each step runs over every row before the next: the rows' chains overlap.
    @inline(never)
    public static func rows(_ x: UnsafeMutablePointer<Float>, rows: Int, count n: Int) {
        guard n > 0, rows > 0 else { return }
        // The rows are worked on in a copy padded with -infinity to whole vectors (whose exponentials are 0).
        let vectors = (n + 15) / 16
        withUnsafeTemporaryAllocation(of: V.self, capacity: rows * vectors) { buffer in
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: rows) { sums in
            let padded = UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: Float.self)
            let stride = vectors * 16
            for r in 0..<rows {
                let target = padded + r * stride
                target.update(from: x + r * n, count: n)
                for lane in n..<stride { target[lane] = -.infinity }
            }
            for r in 0..<rows {
                let row = buffer.baseAddress! + r * vectors
                var maxima = row[0]
                for v in 1..<vectors { maxima = maxima.replacing(with: row[v], where: row[v] .> maxima) }
                let maximum = largest(maxima)
                // A wholly masked row: exp(-infinity - -infinity) would be NaN; its values are set to 0 below.
                let shift = V(repeating: maximum == -.infinity ? 0 : maximum)
                var lanes = SIMD8<Float>()
                for v in 0..<vectors {
                    let e = exp(row[v] - shift)
                    row[v] = e
                    // The portable routine's 8-element chunks, in order; a chunk past the row is zeros and adds nothing.
                    lanes += e.lowHalf
                    lanes += e.highHalf
                }
                sums[r] = lanes
            }
            for r in 0..<rows {
                let lanes = sums[r]
                let total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
                let target = x + r * n
                if total == 0 {
                    target.update(repeating: 0, count: n)
                    continue
                }
                let scales = V(repeating: 1 / total)
                let row = buffer.baseAddress! + r * vectors
                for v in 0..<vectors { row[v] *= scales }
                target.update(from: padded + r * stride, count: n)
            }
        }
        }
    }

    /// The largest lane (lanes are never NaN here: NaN scores lose every comparison above).
    @inline(__always)
    static func largest(_ v: V) -> Float {
        let eight = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
        let four = eight.lowHalf.replacing(with: eight.highHalf, where: eight.highHalf .> eight.lowHalf)
        let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
        return Swift.max(two[0], two[1])
    }

    /// `RowMath.exp` on sixteen lanes: the same constants and operations (no fused multiply-adds, which would round
    /// differently).
    @inline(__always)
    static func exp(_ x: V) -> V {
        let low = V(repeating: -87.33654)
        let underflow = unsafeBitCast(x .< low, to: SIMD16<Int32>.self)
        let clamped = select(underflow, low, x)
        let magic = V(repeating: 12_582_912)
        let shifted = clamped * 1.44269504088896341 + magic
        let k = shifted - magic
        let r = clamped - k * 0.693359375 + k * 2.12194440e-4
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        let exponent = (unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        let result = p * unsafeBitCast(exponent, to: V.self)
        return select(underflow, V(), result)
    }

    @inline(__always)
    static func select(_ mask: SIMD16<Int32>, _ whereSet: V, _ otherwise: V) -> V {
        let a = unsafeBitCast(whereSet, to: SIMD16<Int32>.self), b = unsafeBitCast(otherwise, to: SIMD16<Int32>.self)
        return unsafeBitCast((a & mask) | (b & ~mask), to: V.self)
    }
}

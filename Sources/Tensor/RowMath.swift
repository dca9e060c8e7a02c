/// Reductions over one contiguous row with sixteen independent partial sums, so that a row of a few
/// hundred values is not one long chain of dependent additions (the latency of which, not the
/// arithmetic, bounds a naive loop). The order of additions is fixed, so results are deterministic.
enum RowMath {
    /// `sum(x[0..<n])`.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            a += load(x, i)
            b += load(x, i + 8)
            i += 16
        }
        var total = horizontalSum(a + b)
        while i < n {
            total += x[i]
            i += 1
        }
        return total
    }

    /// `sum((x - mean)^2)`.
    @inline(__always)
    static func squaredDeviations(_ x: UnsafePointer<Float>, mean: Float, count n: Int) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        let m = SIMD8<Float>(repeating: mean)
        var i = 0
        while i + 16 <= n {
            let u = load(x, i) - m, v = load(x, i + 8) - m
            a += u * u
            b += v * v
            i += 16
        }
        var total = horizontalSum(a + b)
        while i < n {
            let centred = x[i] - mean
            total += centred * centred
            i += 1
        }
        return total
    }

    /// `sum(x * y)`.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            a += load(x, i) * load(y, i)
            b += load(x, i + 8) * load(y, i + 8)
            i += 16
        }
        var total = horizontalSum(a + b)
        while i < n {
            total += x[i] * y[i]
            i += 1
        }
        return total
    }

    /// `max(x[0..<n])` (`-infinity` for an empty row), with four independent running maxima.
    @inline(__always)
    static func maximum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var m0 = -Float.infinity, m1 = -Float.infinity, m2 = -Float.infinity, m3 = -Float.infinity
        var i = 0
        while i + 4 <= n {
            m0 = Swift.max(m0, x[i])
            m1 = Swift.max(m1, x[i + 1])
            m2 = Swift.max(m2, x[i + 2])
            m3 = Swift.max(m3, x[i + 3])
            i += 4
        }
        while i < n {
            m0 = Swift.max(m0, x[i])
            i += 1
        }
        return Swift.max(Swift.max(m0, m1), Swift.max(m2, m3))
    }

    /// Writes `exp(x - shift)` to `out` and returns the sum of the written values.
    @inline(__always)
    static func exponentials(_ x: UnsafePointer<Float>, minus shift: Float, into out: UnsafeMutablePointer<Float>,
                             count n: Int) -> Float {
        var lanes = SIMD8<Float>()
        let offset = SIMD8<Float>(repeating: shift)
        var i = 0
        while i + 8 <= n {
            let e = exp(load(x, i) - offset)
            store(e, out, i)
            lanes += e
            i += 8
        }
        if i < n {
            // The tail goes through the same vector routine (padded with -infinity, whose exp is 0), so
            // every element of a row is computed the same way.
            var padded = SIMD8<Float>(repeating: -.infinity)
            for lane in 0..<(n - i) { padded[lane] = x[i + lane] - shift }
            let e = exp(padded)
            for lane in 0..<(n - i) { out[i + lane] = e[lane] }
            lanes += e
        }
        return horizontalSum(lanes)
    }

    /// `e^x` on eight lanes (the Cephes single-precision method): `x = k ln 2 + r` with `|r| <= ln 2 / 2`,
    /// `e^r` by a degree-7 polynomial, `2^k` written into the exponent bits. Relative error about 1e-7
    /// (within two ulps of libm's `expf`); exactly 0 below -87.3 (so `-infinity` gives 0, as masked
    /// attention scores need). Meant for `x <= 0` (softmax after subtracting the maximum): results
    /// overflow above 88.
    ///
    /// Written with plain lane arithmetic and bit operations: the generic SIMD helpers (pointwise
    /// min/max, float-to-integer conversion, rounding) are not specialised into vector code.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let low = SIMD8<Float>(repeating: -87.33654)
        let underflow = unsafeBitCast(x .< low, to: SIMD8<Int32>.self)
        let clamped = select(underflow, low, x)
        // Adding 1.5 * 2^23 rounds to the nearest integer k and leaves k in the low mantissa bits.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = clamped * 1.44269504088896341 + magic
        let k = shifted - magic
        let r = clamped - k * 0.693359375 + k * 2.12194440e-4
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        let result = p * unsafeBitCast(exponent, to: SIMD8<Float>.self)
        return select(underflow, SIMD8<Float>(), result)
    }

    /// Lanes of `whereSet` where `mask` is all ones, of `otherwise` where it is zero.
    @inline(__always)
    static func select(_ mask: SIMD8<Int32>, _ whereSet: SIMD8<Float>, _ otherwise: SIMD8<Float>) -> SIMD8<Float> {
        let a = unsafeBitCast(whereSet, to: SIMD8<Int32>.self), b = unsafeBitCast(otherwise, to: SIMD8<Int32>.self)
        return unsafeBitCast((a & mask) | (b & ~mask), to: SIMD8<Float>.self)
    }

    @inline(__always)
    static func load(_ x: UnsafePointer<Float>, _ offset: Int) -> SIMD8<Float> {
        UnsafeRawPointer(x + offset).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ value: SIMD8<Float>, _ x: UnsafeMutablePointer<Float>, _ offset: Int) {
        UnsafeMutableRawPointer(x + offset).storeBytes(of: value, as: SIMD8<Float>.self)
    }

    /// The lanes added in a fixed order.
    @inline(__always)
    static func horizontalSum(_ v: SIMD8<Float>) -> Float {
        ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
    }
}

/// Dropout masks with 512-bit vectors (see `SGEMM512` for when this module's code may run): the same values,
/// bit for bit, as `Tensor`'s portable `DropoutMask.portableFill`: element `i` is `keep` when 16-bit quarter
/// `i % 4` of the counter hash of `i / 4` is at least `threshold`, else 0. Eight hashes at a time give 32
/// elements.
public enum DropoutMask512 {
    /// Writes the mask values of elements `start ..< start + count` into `out[0 ..< count]`.
    @inline(never)
    public static func fill(_ out: UnsafeMutablePointer<Float>, start: Int, count: Int, seed: UInt64, threshold: UInt32,
                            keep: Float) {
        guard count > 0 else { return }
        let end = start + count
        let thresholds = SIMD8<UInt64>(repeating: UInt64(threshold))
        let keeps = SIMD8<UInt64>(repeating: UInt64(keep.bitPattern))
        let lanes = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
        var group = start >> 2 & ~7
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 16) { edge in
            while group * 4 < end {
                // The 32 elements of counters group ..< group + 8, as 16 pairs of floats.
                let first = group * 4
                let whole = first >= start && first + 32 <= end
                let pairs = whole ? UnsafeMutableRawPointer(out + (first - start)).assumingMemoryBound(to: UInt64.self) : edge.baseAddress!
                masks(SIMD8<UInt64>(repeating: UInt64(truncatingIfNeeded: group)) &+ lanes, seed: seed,
                      thresholds: thresholds, keeps: keeps, into: pairs)
                if !whole {
                    let values = UnsafeRawPointer(edge.baseAddress!).assumingMemoryBound(to: Float.self)
                    for element in max(first, start)..<min(first + 32, end) { out[element - start] = values[element - first] }
                }
                group += 8
            }
        }
    }

    /// Counter `c`'s four elements are two pairs of floats: elements 4c and 4c + 1 (its low 32 bits), 4c + 2
    /// and 4c + 3 (its high 32 bits), written to `pairs[2c]` and `pairs[2c + 1]`.
    @inline(__always)
    static func masks(_ counters: SIMD8<UInt64>, seed: UInt64, thresholds: SIMD8<UInt64>, keeps: SIMD8<UInt64>,
                      into pairs: UnsafeMutablePointer<UInt64>) {
        let golden: UInt64 = 0x9E37_79B9_7F4A_7C15
        var z = SIMD8<UInt64>(repeating: seed) &+ counters &* golden &+ golden
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z &>> 31)
        let zeros = SIMD8<UInt64>(repeating: 0), quarter = SIMD8<UInt64>(repeating: 0xFFFF)
        let k0 = zeros.replacing(with: keeps, where: z & quarter .>= thresholds)
        let k1 = zeros.replacing(with: keeps, where: (z &>> 16) & quarter .>= thresholds)
        let k2 = zeros.replacing(with: keeps, where: (z &>> 32) & quarter .>= thresholds)
        let k3 = zeros.replacing(with: keeps, where: z &>> 48 .>= thresholds)
        let low = k0 | (k1 &<< 32), high = k2 | (k3 &<< 32)
        pairs[0] = low[0]; pairs[1] = high[0]; pairs[2] = low[1]; pairs[3] = high[1]
        pairs[4] = low[2]; pairs[5] = high[2]; pairs[6] = low[3]; pairs[7] = high[3]
        pairs[8] = low[4]; pairs[9] = high[4]; pairs[10] = low[5]; pairs[11] = high[5]
        pairs[12] = low[6]; pairs[13] = high[6]; pairs[14] = low[7]; pairs[15] = high[7]
    }
}

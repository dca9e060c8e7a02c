import CVectorKernels

/// Products too small for `SGEMM512`'s packing and blocking to pay for themselves: attention's per-(sample, head)
/// products, tens of rows and columns and one head's width deep. One call per product on the calling thread, with no
/// per-thread state: op(B) is copied once into a zero-padded row-major scratch (on the stack when it is small) unless it
/// is already contiguous row-major with whole 16-float rows, then 8-row blocks of C accumulate over the depth.
///
/// Each element is the depth-ordered chain of fused multiply-adds from zero, times alpha: the operations `SGEMM512`
/// performs for a depth of at most its `depthBlock`, so for such products the two give the same bits.
public enum SmallProduct512 {
    /// `C = alpha * op(A) * op(B)` (C not read), row-major, on the calling thread; `op(A)` is `m x k`, `op(B)` is
    /// `k x n`, all positive.
    @inline(never)
    public static func multiply(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        into c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float
    ) {
        let rowStride = transposeA ? 1 : lda
        let depthStride = transposeA ? lda : 1
        // B is read in place only when its rows are contiguous: an attention head's rows sit a whole row of the
        // [L, D] matrix apart (a kilobyte at D 256), so a few dozen of them fall into a handful of L1 sets and evict
        // each other on every 8-row block of C; packed, they stay in L1.
        if !transposeB && n % 16 == 0 && ldb == n {
            blocks(m: m, n: n, k: k, a, rowStride, depthStride, b, ldb, c, ldc, alpha)
            return
        }
        let paddedColumns = (n + 15) / 16 * 16
        withUnsafeTemporaryAllocation(of: Float.self, capacity: k * paddedColumns) { scratch in
            let packed = scratch.baseAddress!
            if transposeB {
                // op(B)[p, j] = b[j * ldb + p]: 16 x 16 blocks of b turned in registers, the padding columns zero.
                transpose_pack_avx512(b, ldb, n, k, packed, paddedColumns)
            } else {
                for p in 0..<k {
                    let source = b + p &* ldb, target = packed + p &* paddedColumns
                    for j in 0..<n { target[j] = source[j] }
                    for j in n..<paddedColumns { target[j] = 0 }
                }
            }
            blocks(m: m, n: n, k: k, a, rowStride, depthStride, packed, paddedColumns, c, ldc, alpha)
        }
    }

    /// C over `B` row-major at row stride `ldb`, readable to `n` rounded up to 16 columns: blocks of 8 rows of C by
    /// two vectors of columns, then one. A last block of fewer rows reads its missing rows' A from the last row and
    /// stores nothing for them.
    @inline(__always)
    static func blocks(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ rowStride: Int, _ depthStride: Int,
                       _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float) {
        typealias V = SIMD16<Float>
        let alphas = V(repeating: alpha)
        var row = 0
        while row < m {
            let rows = min(8, m - row)
            @inline(__always) func aRow(_ r: Int) -> UnsafePointer<Float> { a + (row + min(r, rows - 1)) * rowStride }
            let a0 = aRow(0), a1 = aRow(1), a2 = aRow(2), a3 = aRow(3), a4 = aRow(4), a5 = aRow(5), a6 = aRow(6), a7 = aRow(7)
            var column = 0
            while column < n {
                let source = UnsafeRawPointer(b + column)
                let stride = ldb * 4
                if n - column > 16 {
                    var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
                    var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
                    var offset = 0
                    for p in 0..<k {
                        let b0 = source.loadUnaligned(fromByteOffset: p * stride, as: V.self)
                        let b1 = source.loadUnaligned(fromByteOffset: p * stride + 64, as: V.self)
                        var x = V(repeating: a0[offset]); c00.addProduct(x, b0); c01.addProduct(x, b1)
                        x = V(repeating: a1[offset]); c10.addProduct(x, b0); c11.addProduct(x, b1)
                        x = V(repeating: a2[offset]); c20.addProduct(x, b0); c21.addProduct(x, b1)
                        x = V(repeating: a3[offset]); c30.addProduct(x, b0); c31.addProduct(x, b1)
                        x = V(repeating: a4[offset]); c40.addProduct(x, b0); c41.addProduct(x, b1)
                        x = V(repeating: a5[offset]); c50.addProduct(x, b0); c51.addProduct(x, b1)
                        x = V(repeating: a6[offset]); c60.addProduct(x, b0); c61.addProduct(x, b1)
                        x = V(repeating: a7[offset]); c70.addProduct(x, b0); c71.addProduct(x, b1)
                        offset += depthStride
                    }
                    let target = c + row * ldc + column
                    let width = min(32, n - column)
                    store(alphas * c00, alphas * c01, target, width: width)
                    if rows > 1 { store(alphas * c10, alphas * c11, target + ldc, width: width) }
                    if rows > 2 { store(alphas * c20, alphas * c21, target + 2 * ldc, width: width) }
                    if rows > 3 { store(alphas * c30, alphas * c31, target + 3 * ldc, width: width) }
                    if rows > 4 { store(alphas * c40, alphas * c41, target + 4 * ldc, width: width) }
                    if rows > 5 { store(alphas * c50, alphas * c51, target + 5 * ldc, width: width) }
                    if rows > 6 { store(alphas * c60, alphas * c61, target + 6 * ldc, width: width) }
                    if rows > 7 { store(alphas * c70, alphas * c71, target + 7 * ldc, width: width) }
                    column += 32
                } else {
                    var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
                    var offset = 0
                    for p in 0..<k {
                        let b0 = source.loadUnaligned(fromByteOffset: p * stride, as: V.self)
                        c0.addProduct(V(repeating: a0[offset]), b0); c1.addProduct(V(repeating: a1[offset]), b0)
                        c2.addProduct(V(repeating: a2[offset]), b0); c3.addProduct(V(repeating: a3[offset]), b0)
                        c4.addProduct(V(repeating: a4[offset]), b0); c5.addProduct(V(repeating: a5[offset]), b0)
                        c6.addProduct(V(repeating: a6[offset]), b0); c7.addProduct(V(repeating: a7[offset]), b0)
                        offset += depthStride
                    }
                    let target = c + row * ldc + column
                    let width = n - column
                    store(alphas * c0, target, width: width)
                    if rows > 1 { store(alphas * c1, target + ldc, width: width) }
                    if rows > 2 { store(alphas * c2, target + 2 * ldc, width: width) }
                    if rows > 3 { store(alphas * c3, target + 3 * ldc, width: width) }
                    if rows > 4 { store(alphas * c4, target + 4 * ldc, width: width) }
                    if rows > 5 { store(alphas * c5, target + 5 * ldc, width: width) }
                    if rows > 6 { store(alphas * c6, target + 6 * ldc, width: width) }
                    if rows > 7 { store(alphas * c7, target + 7 * ldc, width: width) }
                    column += 16
                }
            }
            row += 8
        }
    }

    /// Writes the first `width` (1 ... 16) lanes of `values`.
    @inline(__always)
    static func store(_ values: SIMD16<Float>, _ c: UnsafeMutablePointer<Float>, width: Int) {
        if width >= 16 {
            UnsafeMutableRawPointer(c).storeBytes(of: values, as: SIMD16<Float>.self)
        } else {
            for j in 0..<width { c[j] = values[j] }
        }
    }

    /// Writes the first `width` (17 ... 32) lanes of `low` then `high`.
    @inline(__always)
    static func store(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ c: UnsafeMutablePointer<Float>, width: Int) {
        UnsafeMutableRawPointer(c).storeBytes(of: low, as: SIMD16<Float>.self)
        store(high, c + 16, width: width - 16)
    }
}

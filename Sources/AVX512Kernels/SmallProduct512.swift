import CVectorKernels

/// Products too small for `SGEMM512`'s packing and blocking to pay for themselves: attention's per-(sample, head)
/// products, tens of rows and columns and one head's width deep. One call per product on the calling thread, with no
/// per-thread state: op(B) is copied once into a zero-padded row-major scratch (on the stack when it is small) unless it
/// is already contiguous row-major with whole 16-float rows, then 8-row blocks of C accumulate over the depth
/// (`small_product_blocks_avx512`, in C for its masked stores of a block's last columns).
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
            small_product_blocks_avx512(m, n, k, a, rowStride, depthStride, b, ldb, c, ldc, alpha)
            return
        }
        let paddedColumns = (n + 15) / 16 * 16
        withUnsafeTemporaryAllocation(of: Float.self, capacity: k * paddedColumns) { scratch in
            let packed = scratch.baseAddress!
            if transposeB {
                // op(B)[p, j] = b[j * ldb + p]: 16 x 16 blocks of b turned in registers, the padding columns zero.
                transpose_pack_avx512(b, ldb, n, k, packed, paddedColumns)
            } else {
                pack_rows_avx512(b, ldb, n, k, packed, paddedColumns)
            }
            small_product_blocks_avx512(m, n, k, a, rowStride, depthStride, packed, paddedColumns, c, ldc, alpha)
        }
    }
}

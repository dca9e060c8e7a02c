import AVX512Kernels
import CBLAS
import Foundation

/// Matrix products on raw pointers (for kernels that address sub-matrices through leading dimensions) and
/// on tensors. Each single-threaded product runs on the project's AVX-512 kernel where the CPU has AVX-512
/// (`SGEMM512`), else on OpenBLAS's `cblas_sgemm` (see `kernel`).
public enum GEMM {
    /// The code that computes a single-threaded product.
    public enum Kernel: String, Sendable, CaseIterable {
        /// OpenBLAS's `cblas_sgemm`, with the kernels OpenBLAS picks for this CPU.
        case openBLAS = "openblas"
        /// `SGEMM512`: 8 x 32 register tiles of 512-bit fused multiply-adds. Only on a CPU with AVX-512.
        case avx512 = "avx512"
    }

    /// Whether this CPU (and its operating system) runs the AVX-512 kernel: the instruction sets its module
    /// is compiled for (`-target-cpu skylake-avx512`), as the kernel reports them in `/proc/cpuinfo`.
    public static let avx512Available: Bool = {
        #if arch(x86_64) && os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(line.split(separator: " ").map(String.init))
        let needed = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx2", "fma", "bmi1", "bmi2",
                      "f16c", "movbe", "popcnt", "abm"]
        return needed.allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()

    /// The kernel products run on: AVX-512 where available, else OpenBLAS. Results differ between the two in
    /// the last bits (another summation order); each is deterministic and independent of the thread count.
    /// Setting `.avx512` on a CPU without it stops the process.
    nonisolated(unsafe) public static var kernel: Kernel = avx512Available ? .avx512 : .openBLAS {
        didSet {
            precondition(kernel != .avx512 || avx512Available, "GEMM: this CPU has no AVX-512; use the openblas kernel")
        }
    }

    /// `C[m, n] = alpha * op(A) * op(B) + beta * C`, row-major, where `op(A)` is `m x k` and
    /// `op(B)` is `k x n`. Leading dimensions let a caller address column blocks (e.g. one attention
    /// head inside a `[L, d]` matrix) without copying.
    ///
    /// A large product is split into one block of rows (or columns) per thread, each a single-threaded
    /// product on `kernel` (see `Parallelism.productSplitting`); a small one is one call. On the AVX-512
    /// kernel the result does not depend on the thread count. On OpenBLAS it is reproducible for a given
    /// thread count; like OpenBLAS's own threading, other thread counts may differ in the last bits.
    ///
    /// With `rowBias` (`n` values, `beta` 0), `C = alpha * op(A) * op(B) + rowBias` in every row (a linear layer's
    /// bias), C not read: the bits of filling C's rows with the bias and multiplying with `beta == 1`. The AVX-512
    /// kernel adds the bias as it stores its tiles, which saves that pass over C.
    ///
    /// With `aRowSums` (`m` values, AVX-512 kernel and `transposeA` only), also the column sums of A (the rows of
    /// `op(A)` summed over the depth), each from zero in row order: `Reduction.sum(A, axis: 0)`'s bits, made while
    /// the product reads A (a linear layer's bias gradient beside its weight gradient), not in a pass of their own.
    public static func multiply(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        into c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0, rowBias: UnsafePointer<Float>? = nil,
        aRowSums: UnsafeMutablePointer<Float>? = nil
    ) {
        let profiled = Profiler.enter(Profiler.Product(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB))
        defer { Profiler.exit(profiled) }
        precondition(rowBias == nil || beta == 0, "GEMM.multiply: a row bias replaces C; beta must be 0")
        precondition(aRowSums == nil || (kernel == .avx512 && transposeA && k > 0),
                     "GEMM.multiply: the column sums of A come with the AVX-512 kernel's Aᵀ products only")
        guard m > 0, n > 0 else { return }
        var beta = beta, rowBias = rowBias
        if let bias = rowBias, kernel != .avx512 || k == 0 {
            // The bias rows as C, then beta = 1: a pass over C, split across threads like any element-wise pass.
            Parallelism.forEachChunk(count: m, grain: Parallelism.rowGrain(n)) { range in
                for r in range { (c + r * ldc).update(from: bias, count: n) }
            }
            beta = 1
            rowBias = nil
        }
        if k == 0 {
            // sgemm rejects k == 0 on some builds; the product is empty, so only beta applies.
            for row in 0..<m {
                let line = c + row * ldc
                for column in 0..<n { line[column] = beta == 0 ? 0 : beta * line[column] }
            }
            return
        }
        // OpenBLAS may run a whole product on its own threads; the AVX-512 kernel has only the project's.
        let split = Parallelism.productSplitting || kernel == .avx512
        let parts = split ? Swift.min(Parallelism.threadCount, Swift.max(m, n) / splitAlignment) : 1
        guard parts > 1, m * n * k >= splitThreshold else {
            sgemm(m: m, n: n, k: k, a, lda: lda, transposeA: transposeA, b, ldb: ldb, transposeB: transposeB,
                  into: c, ldc: ldc, alpha: alpha, beta: beta, rowBias: rowBias, aRowSums: aRowSums)
            return
        }
        // Split the longer output dimension: each thread packs its share of one operand and all of the
        // other. Packing that operand twice costs a few percent of these products (k of a few hundred
        // to a few thousand), less than OpenBLAS's idle threads spinning against the next kernel.
        let splitRows = m >= n
        let extent = splitRows ? m : n
        // Each boundary at the multiple of the alignment nearest its even share (2400 rows in two parts of 1200,
        // not 1216 and 1184, which kept one thread waiting on the other at the end of every such product).
        let alignment = splitRows ? rowSplitAlignment : splitAlignment
        func boundary(_ part: Int) -> Int {
            part == parts ? extent : (part * extent + parts * alignment / 2) / (parts * alignment) * alignment
        }
        Parallelism.forEachTask(count: parts) { part in
            let start = boundary(part)
            let length = boundary(part + 1) - start
            if splitRows {
                sgemm(m: length, n: n, k: k, a + (transposeA ? start : start * lda), lda: lda, transposeA: transposeA,
                      b, ldb: ldb, transposeB: transposeB, into: c + start * ldc, ldc: ldc, alpha: alpha, beta: beta,
                      rowBias: rowBias, aRowSums: aRowSums.map { $0 + start })
            } else {
                sgemm(m: m, n: length, k: k, a, lda: lda, transposeA: transposeA,
                      b + (transposeB ? start * ldb : start), ldb: ldb, transposeB: transposeB,
                      into: c + start, ldc: ldc, alpha: alpha, beta: beta, rowBias: rowBias.map { $0 + start },
                      aRowSums: part == 0 ? aRowSums : nil)  // every part reads all of A; one makes the sums
            }
        }
    }

    /// Whether `multiply(..., alpha: 1, beta: 1)` of depth `k` gives C plus the product in one rounding, the bits of
    /// adding the product made on its own (`beta: 0`) to C afterwards: on the AVX-512 kernel when the depth fits one
    /// of its depth blocks (each element's sum is then made from zero, and C added once at the end). Deeper, or on
    /// OpenBLAS, C joins the sum earlier.
    public static func addsProductInOneRounding(depth k: Int) -> Bool {
        kernel == .avx512 && k > 0 && k <= SGEMM512.depthBlock
    }

    /// `C = alpha * op(A) * op(B)` (C not read) for a product small enough to run on the calling thread without
    /// packing: attention's per-(sample, head) products. On the AVX-512 kernel `SmallProduct512`, whose bits equal
    /// `SGEMM512`'s (deeper products than its depth block go to `multiply`); on OpenBLAS one `cblas_sgemm`.
    public static func smallMultiply(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        into c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1
    ) {
        guard kernel == .avx512, m > 0, n > 0, k > 0, k <= SGEMM512.depthBlock else {
            multiply(m: m, n: n, k: k, a, lda: lda, transposeA: transposeA, b, ldb: ldb, transposeB: transposeB,
                     into: c, ldc: ldc, alpha: alpha)
            return
        }
        let profiled = Profiler.enter(Profiler.Product(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB))
        defer { Profiler.exit(profiled) }
        SmallProduct512.multiply(m: m, n: n, k: k, a, lda: lda, transposeA: transposeA, b, ldb: ldb, transposeB: transposeB,
                                 into: c, ldc: ldc, alpha: alpha)
    }

    /// Products below this many multiply-adds run as one call.
    static let splitThreshold = 1 << 21
    /// Parts of a product split by columns are multiples of this many columns (a whole number of the
    /// micro-kernel's panels), and a product is split only when its longer side has this many per thread.
    static let splitAlignment = 32
    /// Parts of a product split by rows are multiples of this many rows (whole micro-tiles).
    static let rowSplitAlignment = 8

    /// One single-threaded product on `kernel` (OpenBLAS on its own threads when `productSplitting` is
    /// off), timed when `Timing` is on.
    @inline(__always)
    static func sgemm(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        into c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float, rowBias: UnsafePointer<Float>? = nil,
        aRowSums: UnsafeMutablePointer<Float>? = nil
    ) {
        let call = {
            if kernel == .avx512 {
                SGEMM512.multiply(m: m, n: n, k: k, a, lda: lda, transposeA: transposeA,
                                  b, ldb: ldb, transposeB: transposeB, into: c, ldc: ldc, alpha: alpha, beta: beta,
                                  rowBias: rowBias, aRowSums: aRowSums)
                return
            }
            precondition(rowBias == nil, "GEMM: the OpenBLAS kernel takes a row bias as C")
            cblas_sgemm(CblasRowMajor,
                        transposeA ? CblasTrans : CblasNoTrans,
                        transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha,
                        a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        if Timing.isEnabled {
            Timing.timed(call)
        } else {
            call()
        }
    }

    /// A batch of independent products `C_i = op(A_i) op(B_i)` (plus `beta * C_i`) at fixed strides,
    /// split across threads with OpenBLAS held to one thread per product. A stride of 0 shares an
    /// operand across the batch. Do not pass `strideC == 0` with more than one item.
    public static func batchedMultiply(
        batch: Int, m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, strideA: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, strideB: Int, transposeB: Bool,
        into c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        precondition(batch <= 1 || strideC != 0, "GEMM.batchedMultiply: outputs of a batch must not alias")
        let body: (Int) -> Void = { index in
            multiply(m: m, n: n, k: k,
                     a + index * strideA, lda: lda, transposeA: transposeA,
                     b + index * strideB, ldb: ldb, transposeB: transposeB,
                     into: c + index * strideC, ldc: ldc, alpha: alpha, beta: beta)
        }
        // Products large enough to be split across threads one at a time (by `multiply`, or by
        // OpenBLAS when splitting is off); small ones side by side, each on one thread.
        if batch == 1 || m * n * k >= splitThreshold {
            for index in 0..<batch { body(index) }
        } else {
            Parallelism.forEachTaskSingleThreadedBLAS(count: batch, body)
        }
    }

    /// `op(a) * op(b)` for tensors:
    /// - `a` of rank >= 2 (`[..., M, K]`) times a matrix `b` (`[K, N]`): leading dimensions of `a` are
    ///   folded into one product (`transposeA` needs rank-2 `a` here);
    /// - `a` `[B, M, K]` times `b` `[B, K, N]`: a batched product.
    /// Transposes apply to the last two dimensions.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                              alpha: Float = 1) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: needs matrices, got shapes \(a.shape) and \(b.shape)")
        let aRows = a.shape[a.rank - 2], aCols = a.shape[a.rank - 1]
        let bRows = b.shape[b.rank - 2], bCols = b.shape[b.rank - 1]
        let m = transposeA ? aCols : aRows
        let k = transposeA ? aRows : aCols
        let kB = transposeB ? bCols : bRows
        let n = transposeB ? bRows : bCols
        precondition(k == kB, "matmul: inner dimensions differ for \(a.shape)\(transposeA ? "ᵀ" : "") x \(b.shape)\(transposeB ? "ᵀ" : "")")
        if b.rank == 2 {
            if a.rank == 2 || !transposeA {
                let rows = a.count / max(1, k)
                let outShape = Array(a.shape.dropLast(2)) + [m, n]
                let totalRows = transposeA ? m : rows
                return Tensor(shape: outShape) { out in
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            multiply(m: totalRows, n: n, k: k,
                                     ap.baseAddress!, lda: aCols, transposeA: transposeA,
                                     bp.baseAddress!, ldb: bCols, transposeB: transposeB,
                                     into: out.baseAddress!, ldc: n, alpha: alpha)
                        }
                    }
                }
            }
        }
        precondition(a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0],
                     "matmul: batched product needs [B, M, K] x [B, K, N], got \(a.shape) and \(b.shape)")
        let batch = a.shape[0]
        return Tensor(shape: [batch, m, n]) { out in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    batchedMultiply(batch: batch, m: m, n: n, k: k,
                                    ap.baseAddress!, lda: aCols, strideA: aRows * aCols, transposeA: transposeA,
                                    bp.baseAddress!, ldb: bCols, strideB: bRows * bCols, transposeB: transposeB,
                                    into: out.baseAddress!, ldc: n, strideC: m * n, alpha: alpha)
                }
            }
        }
    }
}

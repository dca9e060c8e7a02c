import Foundation
import Tensor
import XCTest

/// `GEMM.multiply` on each product kernel this CPU has (OpenBLAS always, AVX-512 where available) against a
/// Double-precision reference: every transpose, shapes that end mid-tile and cross the AVX-512 kernel's depth
/// and column blocks, leading dimensions wider than the matrices, alpha and beta.
final class ProductKernelTests: XCTestCase {
    /// m, n, k: one element; less than a tile; exactly one 8 x 32 tile; one past a tile and past the depth
    /// block (384); past the column block (256); the default pipeline's shapes; tall and deep.
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (7, 5, 3), (8, 32, 1), (9, 33, 385), (17, 300, 40), (41, 41, 16), (40, 8, 16), (64, 64, 900), (130, 70, 5),
    ]

    var kernels: [GEMM.Kernel] { GEMM.avx512Available ? [.openBLAS, .avx512] : [.openBLAS] }

    override func tearDown() {
        GEMM.kernel = GEMM.avx512Available ? .avx512 : .openBLAS
        Parallelism.setThreadCount(Parallelism.availableCores())
    }

    func values(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in generator.nextUniform(in: -1, 1) }
    }

    func testEveryKernelMatchesTheReferenceOnEveryTransposeEdgeAndBlock() {
        for kernel in kernels {
            GEMM.kernel = kernel
            for (index, shape) in Self.shapes.enumerated() {
                for transposeA in [false, true] {
                    for transposeB in [false, true] {
                        for (alpha, beta) in [(Float(1), Float(0)), (0.5, 0.25)] {
                            check(shape, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta,
                                  seed: UInt64(index * 8 + (transposeA ? 4 : 0) + (transposeB ? 2 : 0)), kernel: kernel)
                        }
                    }
                }
            }
        }
    }

    /// One product with leading dimensions 3 wider than needed; C starts as NaN when beta is 0 (it must not be
    /// read) and the padding columns of C must stay untouched.
    func check(_ shape: (m: Int, n: Int, k: Int), transposeA: Bool, transposeB: Bool, alpha: Float, beta: Float, seed: UInt64,
               kernel: GEMM.Kernel, file: StaticString = #filePath, line: UInt = #line) {
        let (m, n, k) = shape
        let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
        let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
        let (lda, ldb, ldc) = (aColumns + 3, bColumns + 3, n + 3)
        let a = values(aRows * lda, seed: seed), b = values(bRows * ldb, seed: seed + 1000)
        let start = values(m * ldc, seed: seed + 2000)
        var c = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : start
        for row in 0..<m { for column in n..<ldc { c[row * ldc + column] = 7 } }
        c.withUnsafeMutableBufferPointer { out in
            GEMM.multiply(m: m, n: n, k: k, a, lda: lda, transposeA: transposeA, b, ldb: ldb, transposeB: transposeB,
                          into: out.baseAddress!, ldc: ldc, alpha: alpha, beta: beta)
        }
        let label = "\(kernel.rawValue) \(m)x\(n)x\(k) \(transposeA ? "Aᵀ" : "A")\(transposeB ? "Bᵀ" : "B") alpha \(alpha) beta \(beta)"
        for i in 0..<m {
            for j in 0..<ldc {
                let actual = Double(c[i * ldc + j])
                guard j < n else {
                    if actual != 7 { return XCTFail("\(label): padding C[\(i), \(j)] was written", file: file, line: line) }
                    continue
                }
                var total = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let x = Double(transposeA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                    total += x * y
                    magnitude += abs(x * y)
                }
                let old = Double(start[i * ldc + j])
                let expected = Double(alpha) * total + (beta == 0 ? 0 : Double(beta) * old)
                let bound = 1e-6 * (Double(abs(alpha)) * magnitude + abs(Double(beta) * old)) + 1e-7
                if !(abs(actual - expected) <= bound) {
                    return XCTFail("\(label): C[\(i), \(j)] = \(actual), reference \(expected)", file: file, line: line)
                }
            }
        }
    }

    /// `smallMultiply` (attention's per-head products, unpacked) gives `multiply`'s bits on the AVX-512 kernel: every
    /// transpose, leading dimensions wider than the matrices, column counts that end mid-vector, alpha. (On OpenBLAS it
    /// is `multiply`.)
    func testSmallProductsGiveTheAVX512KernelsBits() throws {
        try XCTSkipUnless(GEMM.avx512Available, "this CPU has no AVX-512")
        GEMM.kernel = .avx512
        // Widths that end a block's two vectors mid-second (20, 50) or its one vector mid-way (5, 33, 40, 75).
        for (index, (m, n, k)) in [(1, 1, 1), (7, 5, 3), (40, 40, 16), (10, 40, 16), (40, 16, 40), (9, 33, 8), (75, 75, 32),
                                   (8, 48, 384), (12, 20, 7), (10, 50, 9)].enumerated() {
            for transposeA in [false, true] {
                // B's rows padded, or contiguous (read in place when they are whole vectors: n 16 and 48).
                for (transposeB, bPadding) in [(false, 5), (true, 5), (false, 0), (true, 0)] {
                    let (lda, ldb, ldc) = ((transposeA ? m : k) + 3, (transposeB ? k : n) + bPadding, n + 2)
                    let a = values((transposeA ? k : m) * lda, seed: UInt64(3 * index))
                    let b = values((transposeB ? n : k) * ldb, seed: UInt64(3 * index + 1))
                    let alpha: Float = index % 2 == 0 ? 1 : 0.25
                    var small = [Float](repeating: .nan, count: m * ldc), whole = small
                    small.withUnsafeMutableBufferPointer { out in
                        GEMM.smallMultiply(m: m, n: n, k: k, a, lda: lda, transposeA: transposeA, b, ldb: ldb, transposeB: transposeB,
                                           into: out.baseAddress!, ldc: ldc, alpha: alpha)
                    }
                    whole.withUnsafeMutableBufferPointer { out in
                        GEMM.multiply(m: m, n: n, k: k, a, lda: lda, transposeA: transposeA, b, ldb: ldb, transposeB: transposeB,
                                      into: out.baseAddress!, ldc: ldc, alpha: alpha)
                    }
                    let label = "\(m)x\(n)x\(k) transposeA \(transposeA) transposeB \(transposeB) ldb \(ldb)"
                    // Bits, not values: NaN marks the padding columns neither may write.
                    XCTAssertEqual(small.map(\.bitPattern), whole.map(\.bitPattern), label)
                    XCTAssertFalse(small.enumerated().contains { $0.offset % ldc < n && $0.element.isNaN }, label)
                }
            }
        }
    }

    /// A row bias (a linear layer's) gives the bits of filling C's rows with the bias and multiplying with beta 1, on
    /// every kernel: shapes that end mid-tile, cross the depth block (the bias is added in the first block only) and
    /// are split across two threads by rows and by columns; leading dimensions wider than the matrices, alpha.
    func testARowBiasGivesTheBitsOfABiasFilledC() {
        for kernel in kernels {
            GEMM.kernel = kernel
            for (index, (m, n, k)) in ([(1, 1, 1), (7, 5, 3), (9, 33, 385), (17, 300, 40), (130, 70, 5), (700, 64, 96),
                                        (40, 900, 80)] as [(Int, Int, Int)]).enumerated() {
                for transposeB in [false, true] {
                    let (lda, ldb, ldc) = (k + 3, (transposeB ? k : n) + 5, n + 2)
                    let a = values(m * lda, seed: UInt64(4 * index)), b = values((transposeB ? n : k) * ldb, seed: UInt64(4 * index + 1))
                    let bias = values(n, seed: UInt64(4 * index + 2))
                    let alpha: Float = index % 2 == 0 ? 1 : 0.5
                    var withBias = [Float](repeating: .nan, count: m * ldc)
                    var filled = withBias
                    for row in 0..<m { for column in 0..<n { filled[row * ldc + column] = bias[column] } }
                    withBias.withUnsafeMutableBufferPointer { out in
                        GEMM.multiply(m: m, n: n, k: k, a, lda: lda, transposeA: false, b, ldb: ldb, transposeB: transposeB,
                                      into: out.baseAddress!, ldc: ldc, alpha: alpha, rowBias: bias)
                    }
                    filled.withUnsafeMutableBufferPointer { out in
                        GEMM.multiply(m: m, n: n, k: k, a, lda: lda, transposeA: false, b, ldb: ldb, transposeB: transposeB,
                                      into: out.baseAddress!, ldc: ldc, alpha: alpha, beta: 1)
                    }
                    let label = "\(kernel.rawValue) \(m)x\(n)x\(k) transposeB \(transposeB)"
                    // Bits, not values: NaN marks the padding columns neither may write.
                    let differing = zip(withBias, filled).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(differing, 0, "\(label): elements whose bits differ")
                    XCTAssertFalse(withBias.enumerated().contains { $0.offset % ldc < n && $0.element.isNaN }, label)
                }
            }
        }
    }

    /// The column sums of A made by an Aᵀ product on the AVX-512 kernel give `Reduction.sum(A, axis: 0)`'s bits: depths
    /// across the depth block, row counts that end mid-strip, one panel and several column blocks, one call and
    /// products split across two threads by rows and by columns; the product itself is unchanged.
    func testColumnSumsMadeByAnAᵀProductGiveTheReductionsBits() throws {
        try XCTSkipUnless(GEMM.avx512Available, "this CPU has no AVX-512")
        GEMM.kernel = .avx512
        for (index, (m, n, k)) in ([(1, 1, 1), (7, 20, 3), (8, 300, 385), (13, 40, 900), (700, 64, 96), (40, 900, 80),
                                    (256, 1024, 1000)] as [(Int, Int, Int)]).enumerated() {
            let a = values(k * m, seed: UInt64(5 * index)), b = values(k * n, seed: UInt64(5 * index + 1))
            let reduced = Reduction.sum(Tensor(shape: [k, m], data: a), axis: 0).data
            for threads in [1, 2] {
                Parallelism.setThreadCount(threads)
                var plain = [Float](repeating: 0, count: m * n), withSums = plain
                var sums = [Float](repeating: .nan, count: m)
                plain.withUnsafeMutableBufferPointer { out in
                    GEMM.multiply(m: m, n: n, k: k, a, lda: m, transposeA: true, b, ldb: n, transposeB: false,
                                  into: out.baseAddress!, ldc: n)
                }
                withSums.withUnsafeMutableBufferPointer { out in
                    sums.withUnsafeMutableBufferPointer { s in
                        GEMM.multiply(m: m, n: n, k: k, a, lda: m, transposeA: true, b, ldb: n, transposeB: false,
                                      into: out.baseAddress!, ldc: n, aRowSums: s.baseAddress!)
                    }
                }
                let label = "\(m)x\(n)x\(k), \(threads) threads"
                XCTAssertEqual(sums.map(\.bitPattern), reduced.map(\.bitPattern), label)
                XCTAssertEqual(withSums.map(\.bitPattern), plain.map(\.bitPattern), "\(label): the product")
            }
        }
    }

    /// A product large enough to be split across threads gives the same bits on 1 and 2 threads, split by rows
    /// (tall) or by columns (wide).
    func testTheAVX512KernelGivesTheSameBitsOnAnyThreadCount() throws {
        try XCTSkipUnless(GEMM.avx512Available, "this CPU has no AVX-512")
        GEMM.kernel = .avx512
        // Rows split at multiples of 8 (600: 304 + 296; 2400: 1200 + 1200; 700 in three: 232 + 232 + 236), columns
        // at multiples of 32 (900: 448 + 452; 2818 in three: 928 + 960 + 930), each boundary nearest an even share.
        for (m, n, k) in [(700, 64, 96), (600, 48, 80), (2400, 33, 40), (40, 900, 80), (24, 2818, 40)] {
            let a = values(m * k, seed: 1), b = values(k * n, seed: 2)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                Parallelism.setThreadCount(threads)
                var c = [Float](repeating: 0, count: m * n)
                c.withUnsafeMutableBufferPointer { out in
                    GEMM.multiply(m: m, n: n, k: k, a, lda: k, transposeA: false, b, ldb: n, transposeB: false,
                                  into: out.baseAddress!, ldc: n)
                }
                results.append(c)
            }
            XCTAssertEqual(results[0], results[1], "\(m)x\(n)x\(k), two threads")
            XCTAssertEqual(results[0], results[2], "\(m)x\(n)x\(k), three threads")
        }
    }
}

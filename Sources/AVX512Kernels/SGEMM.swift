import CVectorKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Single-precision matrix products with 512-bit vectors: this module is compiled for AVX-512
/// (`-target-cpu skylake-avx512`, see Package.swift), so its code must run only on a CPU that has it.
/// `Tensor`'s `GEMM` checks the CPU once and calls `SGEMM512.multiply` only where it may.
///
/// The product is blocked the usual way: `depthBlock` rows of `op(B)` and `columnBlock` of its columns at a
/// time are packed into panels of 32 columns (one row of a panel is two vectors). Each 8-row strip of `op(A)`
/// runs against every panel, 8 x 32 outputs held in 16 registers. A strip is read in place where it can be
/// (either layout puts the 8 values of one depth step at a fixed stride); a short strip, or a transposed one
/// read against several panels, is first copied contiguous. Each output is a sum over depth in increasing
/// order within a block, blocks added in order, so a result does not depend on how a caller splits the rows
/// or columns of C among threads.
public enum SGEMM512 {
    /// Rows of C per micro-tile.
    static let tileRows = 8
    /// Columns of C per micro-tile (two 16-float vectors).
    static let tileColumns = 32
    /// Depth (rows of op(B)) packed at a time.
    public static let depthBlock = 384
    /// Columns of op(B) packed at a time.
    static let columnBlock = 256

    /// `C = alpha * op(A) * op(B) + beta * C`, row-major, on the calling thread. `op(A)` is `m x k`,
    /// `op(B)` is `k x n`; `m`, `n` and `k` are positive. With `beta == 0` C is not read.
    ///
    /// With `rowBias` (`n` values; `beta` must be 0), `C = alpha * op(A) * op(B) + rowBias` in every row, C not
    /// read: the bits of filling each row of C with the bias and calling with `beta == 1`, without that pass.
    ///
    /// With `aRowSums` (`m` values; `op(A)` must be `Aᵀ`), also `aRowSums[i] = sum over p of op(A)[i, p]`, each
    /// summed from zero in depth order: the column sums of A, as `Reduction.sum(_:axis: 0)` makes them (a linear
    /// layer's bias gradient, made while its weight gradient's product reads the same operand).
    @inline(never)
    public static func multiply(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        into c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float,
        rowBias: UnsafePointer<Float>? = nil, aRowSums: UnsafeMutablePointer<Float>? = nil
    ) {
        precondition(rowBias == nil || beta == 0, "SGEMM512: a row bias replaces C; beta must be 0")
        precondition(aRowSums == nil || transposeA, "SGEMM512: row sums of op(A) are made for op(A) = Aᵀ only")
        let scratch = Scratch.forThisThread()
        let packed = scratch.packedB
        let packedA = scratch.packedA
        // Where op(A)[i, p] is: a[i * rowStride + p * depthStride].
        let rowStride = transposeA ? 1 : lda
        let depthStride = transposeA ? lda : 1
        var column = 0
        while column < n {
            let columns = min(columnBlock, n - column)
            let panels = (columns + tileColumns - 1) / tileColumns
            var depth = 0
            while depth < k {
                let depths = min(depthBlock, k - depth)
                packB(b, ldb: ldb, transposed: transposeB, depth: depth, depths: depths,
                      column: column, columns: columns, into: packed)
                let first = depth == 0
                if let aRowSums, column == 0 {
                    // op(A) = Aᵀ: a depth step's values of all m rows are contiguous in A.
                    addDepthSums(a + depth * depthStride, depthStride: depthStride, depths: depths, rows: m,
                                 into: aRowSums, fromZero: first)
                }
                var row = 0
                while row < m {
                    let rows = min(tileRows, m - row)
                    var strip = a + row * rowStride + depth * depthStride
                    var stripRowStride = rowStride, stripDepthStride = depthStride
                    if rows < tileRows {
                        // A short strip: copy it into an 8-row layout, the missing rows zero.
                        for p in 0..<depths {
                            for r in 0..<tileRows {
                                packedA[p * tileRows + r] = r < rows ? strip[r * rowStride + p * depthStride] : 0
                            }
                        }
                    } else if transposeA && panels > 1 {
                        // op(A) = Aᵀ: a depth step's 8 values are contiguous, but successive steps are a row of A
                        // apart; read against every panel, they would miss the cache and the TLB each time. Copy
                        // the strip once into the same layout, contiguous.
                        let raw = UnsafeMutableRawPointer(packedA)
                        for p in 0..<depths {
                            raw.storeBytes(of: UnsafeRawPointer(strip + p * depthStride).loadUnaligned(as: SIMD8<Float>.self),
                                           toByteOffset: p * 32, as: SIMD8<Float>.self)
                        }
                    }
                    if rows < tileRows || (transposeA && panels > 1) {
                        strip = UnsafePointer(packedA)
                        stripRowStride = 1
                        stripDepthStride = tileRows
                    }
                    for panel in 0..<panels {
                        let j = column + panel * tileColumns
                        let width = min(tileColumns, n - j)
                        let target = c + row * ldc + j
                        // What the tile adds to its sums: C itself (times beta, then 1 after the first depth block),
                        // or on the first block the bias, the same row for every row of the tile.
                        let (addend, addendStride, addendScale): (UnsafePointer<Float>, Int, Float) =
                            first ? (rowBias.map { ($0 + j, 0, 1) } ?? (UnsafePointer(target), ldc, beta)) : (UnsafePointer(target), ldc, 1)
                        // A last panel of at most 16 columns needs only the first vector of each row.
                        (width > 16 ? tile : halfTile)(strip, stripRowStride, stripDepthStride,
                                                       packed + panel * depths * tileColumns, depths,
                                                       target, ldc, rows, width,
                                                       alpha, Addend(values: addend, stride: addendStride, scale: addendScale),
                                                       scratch.edgeC)
                    }
                    row += tileRows
                }
                depth += depths
            }
            column += columns
        }
    }

    /// `sums[r] (+)= values[r + p * depthStride]` over `p` in order, for `rows` rows (each a contiguous run at each depth
    /// step), starting from zero when `fromZero`. Each row's sum is a chain of additions in depth order, so one chain
    /// waits on its last addition at every step; 64 rows at a time keep four vectors of chains in flight.
    @inline(__always)
    static func addDepthSums(_ values: UnsafePointer<Float>, depthStride: Int, depths: Int, rows: Int,
                             into sums: UnsafeMutablePointer<Float>, fromZero: Bool) {
        let raw = UnsafeRawPointer(values), stepBytes = depthStride * MemoryLayout<Float>.size
        let target = UnsafeMutableRawPointer(sums)
        func start(_ r: Int) -> SIMD16<Float> {
            fromZero ? SIMD16<Float>() : UnsafeRawPointer(sums + r).loadUnaligned(as: SIMD16<Float>.self)
        }
        var r = 0
        while r + 64 <= rows {
            var (s0, s1, s2, s3) = (start(r), start(r + 16), start(r + 32), start(r + 48))
            var offset = r * MemoryLayout<Float>.size
            for _ in 0..<depths {
                s0 += raw.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                s1 += raw.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self)
                s2 += raw.loadUnaligned(fromByteOffset: offset + 128, as: SIMD16<Float>.self)
                s3 += raw.loadUnaligned(fromByteOffset: offset + 192, as: SIMD16<Float>.self)
                offset += stepBytes
            }
            let first = r * MemoryLayout<Float>.size
            target.storeBytes(of: s0, toByteOffset: first, as: SIMD16<Float>.self)
            target.storeBytes(of: s1, toByteOffset: first + 64, as: SIMD16<Float>.self)
            target.storeBytes(of: s2, toByteOffset: first + 128, as: SIMD16<Float>.self)
            target.storeBytes(of: s3, toByteOffset: first + 192, as: SIMD16<Float>.self)
            r += 64
        }
        while r + 16 <= rows {
            var lanes = start(r)
            var offset = r * MemoryLayout<Float>.size
            for _ in 0..<depths {
                lanes += raw.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self)
                offset += stepBytes
            }
            target.storeBytes(of: lanes, toByteOffset: r * MemoryLayout<Float>.size, as: SIMD16<Float>.self)
            r += 16
        }
        while r < rows {
            var total: Float = fromZero ? 0 : sums[r]
            for p in 0..<depths { total += values[r + p * depthStride] }
            sums[r] = total
            r += 1
        }
    }

    /// Copies `op(B)[depth ..< depth + depths, column ..< column + columns]` into panels of 32 columns:
    /// panel `q` holds, for each depth step, its 32 values (zero past the last column).
    @inline(__always)
    static func packB(_ b: UnsafePointer<Float>, ldb: Int, transposed: Bool, depth: Int, depths: Int,
                      column: Int, columns: Int, into packed: UnsafeMutablePointer<Float>) {
        var panelStart = 0
        var out = packed
        while panelStart < columns {
            let width = min(tileColumns, columns - panelStart)
            let firstColumn = column + panelStart
            if !transposed {
                var source = b + depth * ldb + firstColumn
                if width == tileColumns {
                    let raw = UnsafeMutableRawPointer(out)
                    for p in 0..<depths {
                        let s = UnsafeRawPointer(source)
                        raw.storeBytes(of: s.loadUnaligned(as: SIMD16<Float>.self), toByteOffset: p * 128, as: SIMD16<Float>.self)
                        raw.storeBytes(of: s.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self), toByteOffset: p * 128 + 64,
                                       as: SIMD16<Float>.self)
                        source += ldb
                    }
                } else {
                    for p in 0..<depths {
                        for j in 0..<tileColumns { out[p * tileColumns + j] = j < width ? source[j] : 0 }
                        source += ldb
                    }
                }
            } else {
                // op(B)[p, j] = b[j * ldb + p]: column j of the panel is a contiguous run of b, turned 16 x 16 at a time
                // in registers.
                transpose_pack_avx512(b + firstColumn * ldb + depth, ldb, width, depths, out, tileColumns)
            }
            out += depths * tileColumns
            panelStart += tileColumns
        }
    }

    /// What a tile adds to `alpha` times its sums: `scale` times the tile of `values` at row stride `stride` (C itself,
    /// or a bias row at stride 0), not read when `scale == 0`.
    struct Addend {
        let values: UnsafePointer<Float>
        let stride: Int
        let scale: Float

        @inline(__always)
        func row(_ r: Int) -> UnsafePointer<Float> { values + r * stride }
    }

    /// One 8 x 32 tile of C over `depths` steps: `C = alpha * acc + addend`, only the first `rows` x `columns` of it
    /// written.
    static func tile(_ a: UnsafePointer<Float>, _ rowStride: Int, _ depthStride: Int,
                     _ panel: UnsafeMutablePointer<Float>, _ depths: Int,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int, _ columns: Int,
                     _ alpha: Float, _ addend: Addend, _ scratch: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        let a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride
        let a4 = a + 4 * rowStride, a5 = a + 5 * rowStride, a6 = a + 6 * rowStride, a7 = a + 7 * rowStride
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        let b = UnsafeRawPointer(panel)
        var offset = 0
        for p in 0..<depths {
            let b0 = b.load(fromByteOffset: p * 128, as: V.self)
            let b1 = b.load(fromByteOffset: p * 128 + 64, as: V.self)
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
        if rows == tileRows && columns == tileColumns {
            let alphas = V(repeating: alpha)
            store(c00, c01, c, addend.row(0), alphas, addend.scale); store(c10, c11, c + ldc, addend.row(1), alphas, addend.scale)
            store(c20, c21, c + 2 * ldc, addend.row(2), alphas, addend.scale)
            store(c30, c31, c + 3 * ldc, addend.row(3), alphas, addend.scale)
            store(c40, c41, c + 4 * ldc, addend.row(4), alphas, addend.scale)
            store(c50, c51, c + 5 * ldc, addend.row(5), alphas, addend.scale)
            store(c60, c61, c + 6 * ldc, addend.row(6), alphas, addend.scale)
            store(c70, c71, c + 7 * ldc, addend.row(7), alphas, addend.scale)
            return
        }
        // An edge tile: the whole tile to scratch, then its valid part.
        let raw = UnsafeMutableRawPointer(scratch)
        raw.storeBytes(of: c00, toByteOffset: 0, as: V.self); raw.storeBytes(of: c01, toByteOffset: 64, as: V.self)
        raw.storeBytes(of: c10, toByteOffset: 128, as: V.self); raw.storeBytes(of: c11, toByteOffset: 192, as: V.self)
        raw.storeBytes(of: c20, toByteOffset: 256, as: V.self); raw.storeBytes(of: c21, toByteOffset: 320, as: V.self)
        raw.storeBytes(of: c30, toByteOffset: 384, as: V.self); raw.storeBytes(of: c31, toByteOffset: 448, as: V.self)
        raw.storeBytes(of: c40, toByteOffset: 512, as: V.self); raw.storeBytes(of: c41, toByteOffset: 576, as: V.self)
        raw.storeBytes(of: c50, toByteOffset: 640, as: V.self); raw.storeBytes(of: c51, toByteOffset: 704, as: V.self)
        raw.storeBytes(of: c60, toByteOffset: 768, as: V.self); raw.storeBytes(of: c61, toByteOffset: 832, as: V.self)
        raw.storeBytes(of: c70, toByteOffset: 896, as: V.self); raw.storeBytes(of: c71, toByteOffset: 960, as: V.self)
        storeEdge(scratch, c, ldc: ldc, rows: rows, columns: columns, alpha: alpha, addend: addend)
    }

    /// `tile` for a panel whose valid columns are at most 16: the same sums, in the same order, over the
    /// first vector of each panel row only.
    static func halfTile(_ a: UnsafePointer<Float>, _ rowStride: Int, _ depthStride: Int,
                         _ panel: UnsafeMutablePointer<Float>, _ depths: Int,
                         _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int, _ columns: Int,
                         _ alpha: Float, _ addend: Addend, _ scratch: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        let a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride
        let a4 = a + 4 * rowStride, a5 = a + 5 * rowStride, a6 = a + 6 * rowStride, a7 = a + 7 * rowStride
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
        let b = UnsafeRawPointer(panel)
        var offset = 0
        for p in 0..<depths {
            let b0 = b.load(fromByteOffset: p * 128, as: V.self)
            c0.addProduct(V(repeating: a0[offset]), b0); c1.addProduct(V(repeating: a1[offset]), b0)
            c2.addProduct(V(repeating: a2[offset]), b0); c3.addProduct(V(repeating: a3[offset]), b0)
            c4.addProduct(V(repeating: a4[offset]), b0); c5.addProduct(V(repeating: a5[offset]), b0)
            c6.addProduct(V(repeating: a6[offset]), b0); c7.addProduct(V(repeating: a7[offset]), b0)
            offset += depthStride
        }
        let raw = UnsafeMutableRawPointer(scratch)
        raw.storeBytes(of: c0, toByteOffset: 0, as: V.self); raw.storeBytes(of: c1, toByteOffset: 128, as: V.self)
        raw.storeBytes(of: c2, toByteOffset: 256, as: V.self); raw.storeBytes(of: c3, toByteOffset: 384, as: V.self)
        raw.storeBytes(of: c4, toByteOffset: 512, as: V.self); raw.storeBytes(of: c5, toByteOffset: 640, as: V.self)
        raw.storeBytes(of: c6, toByteOffset: 768, as: V.self); raw.storeBytes(of: c7, toByteOffset: 896, as: V.self)
        storeEdge(scratch, c, ldc: ldc, rows: rows, columns: columns, alpha: alpha, addend: addend)
    }

    /// Writes the first `rows` x `columns` of an 8 x 32 tile held in `scratch` into C.
    @inline(__always)
    static func storeEdge(_ scratch: UnsafeMutablePointer<Float>, _ c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int,
                          columns: Int, alpha: Float, addend: Addend) {
        let beta = addend.scale
        for r in 0..<rows {
            let line = c + r * ldc
            let values = scratch + r * tileColumns
            if beta == 0 {
                for j in 0..<columns { line[j] = alpha * values[j] }
            } else {
                let old = addend.row(r)
                for j in 0..<columns { line[j] = alpha * values[j] + beta * old[j] }
            }
        }
    }

    @inline(__always)
    static func store(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ c: UnsafeMutablePointer<Float>,
                      _ old: UnsafePointer<Float>, _ alphas: SIMD16<Float>, _ beta: Float) {
        let raw = UnsafeMutableRawPointer(c)
        if beta == 0 {
            raw.storeBytes(of: alphas * low, as: SIMD16<Float>.self)
            raw.storeBytes(of: alphas * high, toByteOffset: 64, as: SIMD16<Float>.self)
        } else {
            let betas = SIMD16<Float>(repeating: beta)
            let oldLow = UnsafeRawPointer(old).loadUnaligned(as: SIMD16<Float>.self)
            let oldHigh = UnsafeRawPointer(old).loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            raw.storeBytes(of: (alphas * low).addingProduct(betas, oldLow), as: SIMD16<Float>.self)
            raw.storeBytes(of: (alphas * high).addingProduct(betas, oldHigh), toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// Per-thread packing buffers, 64-byte aligned, made on a thread's first product and kept for its life.
    final class Scratch {
        let packedB: UnsafeMutablePointer<Float>
        let packedA: UnsafeMutablePointer<Float>
        let edgeC: UnsafeMutablePointer<Float>

        init() {
            let packedCount = SGEMM512.depthBlock * SGEMM512.columnBlock
            let packedACount = SGEMM512.depthBlock * SGEMM512.tileRows
            let edgeCCount = SGEMM512.tileRows * SGEMM512.tileColumns
            let base = UnsafeMutableRawPointer.allocate(byteCount: (packedCount + packedACount + edgeCCount) * 4, alignment: 64)
            packedB = base.bindMemory(to: Float.self, capacity: packedCount + packedACount + edgeCCount)
            packedA = packedB + packedCount
            edgeC = packedA + packedACount
        }

        deinit { UnsafeMutableRawPointer(packedB).deallocate() }

        nonisolated(unsafe) static var key: pthread_key_t = {
            var key = pthread_key_t()
            pthread_key_create(&key) { pointer in
                #if canImport(Darwin)
                Unmanaged<Scratch>.fromOpaque(pointer).release()
                #else
                if let pointer { Unmanaged<Scratch>.fromOpaque(pointer).release() }
                #endif
            }
            return key
        }()

        static func forThisThread() -> Scratch {
            if let existing = pthread_getspecific(key) {
                return Unmanaged<Scratch>.fromOpaque(existing).takeUnretainedValue()
            }
            let scratch = Scratch()
            pthread_setspecific(key, Unmanaged.passRetained(scratch).toOpaque())
            return scratch
        }
    }
}

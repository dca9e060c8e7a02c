import CBLAS
import Dispatch
import Foundation

/// The thread budget shared by OpenBLAS and the project's own parallel loops.
///
/// Both draw from the same cores, so they are configured together: `setThreadCount(_:)` sets OpenBLAS's
/// thread count and the number of workers the element-wise and batched kernels split across.
/// The default is every active core.
public enum Parallelism {
    nonisolated(unsafe) private static var configuredThreadCount: Int = 0

    /// Threads used by OpenBLAS and by the project's parallel loops.
    public static var threadCount: Int {
        if configuredThreadCount == 0 {
            setThreadCount(ProcessInfo.processInfo.activeProcessorCount)
        }
        return configuredThreadCount
    }

    /// Sets the thread count for OpenBLAS and for the project's kernels (at least 1).
    public static func setThreadCount(_ count: Int) {
        let resolved = max(1, count)
        configuredThreadCount = resolved
        openblas_set_num_threads(Int32(resolved))
    }

    /// Calls `body` on consecutive chunks of `0..<count`, each at most `grain` long, in parallel when
    /// there is more than one chunk and more than one thread.
    ///
    /// Chunk boundaries depend only on `count` and `grain`, never on the thread count, so a kernel
    /// that reduces within a chunk gives the same bits whatever the number of threads.
    public static func forEachChunk(count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunkSize = max(1, grain)
        let chunks = (count + chunkSize - 1) / chunkSize
        if chunks == 1 || threadCount == 1 {
            var start = 0
            while start < count {
                body(start..<min(count, start + chunkSize))
                start += chunkSize
            }
            return
        }
        concurrentPerform(iterations: chunks) { chunk in
            let start = chunk * chunkSize
            body(start..<min(count, start + chunkSize))
        }
    }

    /// Runs `body(i)` for `i` in `0..<count` across threads, with OpenBLAS pinned to one thread
    /// meanwhile so that BLAS calls made inside `body` do not oversubscribe the cores.
    public static func forEachTaskSingleThreadedBLAS(count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let threads = threadCount
        if threads == 1 || count == 1 {
            for index in 0..<count { body(index) }
            return
        }
        openblas_set_num_threads(1)
        concurrentPerform(iterations: count, body)
        openblas_set_num_threads(Int32(threads))
    }

    /// `DispatchQueue.concurrentPerform` for kernels whose closures capture raw pointers.
    /// The closure runs synchronously and every caller partitions its writes by iteration, which is
    /// what makes sharing the (non-Sendable) pointers across the worker threads sound.
    private static func concurrentPerform(iterations: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { escapable in
            let shared = UncheckedSendableBox(escapable)
            DispatchQueue.concurrentPerform(iterations: iterations) { shared.value($0) }
        }
    }

    /// Element count below which element-wise kernels stay on one thread (thread wake-up costs more).
    public static let elementwiseGrain = 1 << 15
}

private struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

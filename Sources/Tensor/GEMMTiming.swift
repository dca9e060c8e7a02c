import CBLAS
import Foundation

extension GEMM {
    /// Opt-in accounting of the time spent inside `cblas_sgemm`, for benchmarks that report how much of
    /// an op's time lies outside BLAS. Off by default; when off, a product pays one load of a flag.
    ///
    /// Time is counted in core-seconds: each call's wall time times the OpenBLAS threads it may use at
    /// that moment (all threads for a product made outside a parallel region, one inside the
    /// single-threaded-BLAS regions that run per-head products side by side). Dividing by wall time
    /// times `Parallelism.threadCount` gives the share of the machine spent in BLAS.
    public enum Timing {
        @usableFromInline nonisolated(unsafe) static var enabled = false
        nonisolated(unsafe) private static var totalCoreSeconds: Double = 0
        nonisolated(unsafe) private static var totalCalls = 0
        private static let lock = NSLock()

        /// Whether products are being timed.
        @inlinable public static var isEnabled: Bool { enabled }

        /// Starts timing from zero.
        public static func start() {
            lock.lock()
            totalCoreSeconds = 0
            totalCalls = 0
            lock.unlock()
            enabled = true
        }

        /// Stops timing and returns the core-seconds spent in `cblas_sgemm` and the number of calls since `start()`.
        @discardableResult
        public static func stop() -> (coreSeconds: Double, calls: Int) {
            enabled = false
            lock.lock()
            defer { lock.unlock() }
            return (totalCoreSeconds, totalCalls)
        }

        @usableFromInline
        static func timed(_ product: () -> Void) {
            let threads = Int(openblas_get_num_threads())
            let start = DispatchTime.now().uptimeNanoseconds
            product()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            lock.lock()
            totalCoreSeconds += seconds * Double(threads)
            totalCalls += 1
            lock.unlock()
        }
    }
}

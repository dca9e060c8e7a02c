import CBLAS
import Foundation

extension GEMM {
    /// Opt-in accounting of the CPU time spent inside `cblas_sgemm`, for benchmarks that report how much
    /// of an op's time lies outside BLAS. Off by default; when off, a product pays one load of a flag.
    ///
    /// Each call is timed with the calling thread's CPU clock, so time the thread spends descheduled
    /// (on a shared machine) is not counted, and calls made side by side on several threads add up.
    /// A call made while OpenBLAS runs its own threads (only when product splitting is off) counts its
    /// caller's time once per OpenBLAS thread. Compare the total with the process's CPU time over the
    /// same interval.
    public enum Timing {
        @usableFromInline nonisolated(unsafe) static var enabled = false
        nonisolated(unsafe) private static var totalSeconds: Double = 0
        nonisolated(unsafe) private static var totalCalls = 0
        private static let lock = NSLock()

        /// Whether products are being timed.
        @inlinable public static var isEnabled: Bool { enabled }

        /// Starts timing from zero.
        public static func start() {
            lock.lock()
            totalSeconds = 0
            totalCalls = 0
            lock.unlock()
            enabled = true
        }

        /// Stops timing and returns the CPU seconds spent in `cblas_sgemm` and the number of calls since `start()`.
        @discardableResult
        public static func stop() -> (cpuSeconds: Double, calls: Int) {
            enabled = false
            lock.lock()
            defer { lock.unlock() }
            return (totalSeconds, totalCalls)
        }

        /// CPU seconds used so far by the calling thread (`thread: true`) or the whole process.
        public static func cpuSeconds(thread: Bool) -> Double {
            var ts = timespec()
            clock_gettime(thread ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }

        static func timed(_ product: () -> Void) {
            let threads = Double(openblas_get_num_threads())
            let start = cpuSeconds(thread: true)
            product()
            let seconds = (cpuSeconds(thread: true) - start) * threads
            lock.lock()
            totalSeconds += seconds
            totalCalls += 1
            lock.unlock()
        }
    }
}

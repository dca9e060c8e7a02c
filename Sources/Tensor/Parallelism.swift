import CBLAS
import Foundation

/// The thread budget shared by matrix products and the project's own parallel loops.
///
/// Both draw from the same cores, so they are configured together: `setThreadCount(_:)` sets the number
/// of workers (the default is every active core). With `productSplitting` (the default) OpenBLAS is held
/// to one thread and the project splits all work on the same workers (`WorkerPool`): a large product into one
/// block per thread (`GEMM.multiply`), a batch of small ones side by side, element-wise loops into
/// chunks. OpenBLAS's own worker threads spin for a while after each call; on two cores they then
/// compete with the element-wise loop that follows, and on a shared machine with other processes.
public enum Parallelism {
    nonisolated(unsafe) private static var configuredThreadCount: Int = 0

    /// Threads used by matrix products and by the project's parallel loops.
    public static var threadCount: Int {
        if configuredThreadCount == 0 {
            setThreadCount(availableCores())
        }
        return configuredThreadCount
    }

    /// The environment variable in which the pipeline driver tells a stage how many stages it runs at once
    /// (`pipeline run --jobs N`), so that each takes its share of the cores.
    public static let concurrentStagesVariable = "PIPELINE_JOBS"

    /// The cores this process may use, the default of every `threads: 0`:
    /// - the CPUs of the process's affinity mask (what `taskset`, a cgroup cpuset or Slurm's task binding leave
    ///   it), else every online CPU;
    /// - no more than `SLURM_CPUS_PER_TASK` in a Slurm job that sets it;
    /// - shared among the stages the pipeline driver runs at once (`PIPELINE_JOBS`) and among the ranks Open MPI
    ///   started on this node (`OMPI_COMM_WORLD_LOCAL_SIZE`), so that N processes do not each take every core.
    ///
    /// At least 1. The thread count does not change the project's results (kernels split work at fixed boundaries).
    public static func availableCores(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        func positive(_ name: String) -> Int? { environment[name].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } }
        var cores = affinityCPUCount() ?? ProcessInfo.processInfo.activeProcessorCount
        if let slurm = positive("SLURM_CPUS_PER_TASK") { cores = min(cores, slurm) }
        for sharers in [concurrentStagesVariable, "OMPI_COMM_WORLD_LOCAL_SIZE"] {
            if let count = positive(sharers) { cores /= count }
        }
        return max(1, cores)
    }

    /// CPUs in the calling thread's affinity mask, or nil where that cannot be read.
    static func affinityCPUCount() -> Int? {
        #if canImport(Glibc)
        // sched_getaffinity is a _GNU_SOURCE declaration the Glibc module map does not expose; its mask is
        // glibc's cpu_set_t, 1024 bits.
        guard let symbol = dlsym(nil, "sched_getaffinity") else { return nil }
        let getAffinity = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32).self)
        var mask = [UInt64](repeating: 0, count: 16)
        let count = mask.withUnsafeMutableBytes { bytes -> Int in
            getAffinity(0, bytes.count, bytes.baseAddress!) == 0 ? bytes.reduce(0) { $0 + $1.nonzeroBitCount } : 0
        }
        return count > 0 ? count : nil
        #else
        return nil
        #endif
    }

    /// Sets the thread count for matrix products and for the project's kernels (at least 1).
    public static func setThreadCount(_ count: Int) {
        _ = allocatorTuned
        let resolved = max(1, count)
        configuredThreadCount = resolved
        openblas_set_num_threads(productSplitting ? 1 : Int32(resolved))
    }

    /// Whether large matrix products are split across threads by `GEMM.multiply` (the default; OpenBLAS
    /// runs on one thread) or handed to OpenBLAS's own threads. Setting it resets OpenBLAS's thread count.
    nonisolated(unsafe) public static var productSplitting = true {
        didSet { setThreadCount(threadCount) }
    }

    /// Runs `body(i)` for `i` in `0..<count` across threads.
    static func forEachTask(count: Int, _ body: (Int) -> Void) {
        if count == 1 || threadCount == 1 {
            for index in 0..<count { body(index) }
            return
        }
        concurrentPerform(iterations: count, body)
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

    /// Runs `body(i)` for `i` in `0..<count` across threads, with OpenBLAS on one thread meanwhile (it
    /// always is when products are split) so that BLAS calls made inside `body` do not oversubscribe
    /// the cores.
    public static func forEachTaskSingleThreadedBLAS(count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let threads = threadCount
        if threads == 1 || count == 1 {
            for index in 0..<count { body(index) }
            return
        }
        if productSplitting {
            concurrentPerform(iterations: count, body)
            return
        }
        openblas_set_num_threads(1)
        concurrentPerform(iterations: count, body)
        openblas_set_num_threads(Int32(threads))
    }

    /// Makes the calling thread a background thread for the rest of its life: its parallel loops run serially
    /// on it, leaving the workers to the compute thread, and it runs at the idle scheduling class (Linux
    /// SCHED_IDLE), so it takes a core only when the compute thread and its workers leave one free. A thread
    /// that prepares the next batch must not slow the current step: every fork-join kernel waits for its
    /// slowest part, so a worker that loses its core to the background thread for one time slice stalls the
    /// whole kernel.
    public static func becomeBackgroundThread() {
        WorkerPool.markBackgroundThread()
        #if canImport(Glibc)
        var parameters = sched_param()
        // SCHED_IDLE = 5 (sched.h, under _GNU_SOURCE, which the Glibc module map does not expose); on the
        // calling thread only (pid 0). Failure leaves the thread at the normal class.
        _ = sched_setscheduler(0, 5, &parameters)
        #endif
    }

    /// Runs `body(i)` for `i` in `0..<iterations` on the calling thread and the `WorkerPool`'s workers.
    /// The closure runs synchronously and every caller partitions its writes by iteration, which is
    /// what makes sharing the (non-Sendable) pointers it captures across the threads sound.
    private static func concurrentPerform(iterations: Int, _ body: (Int) -> Void) {
        WorkerPool.shared.run(count: iterations, helpers: threadCount - 1, body)
    }

    /// glibc's malloc hands large blocks back to the kernel as soon as they are freed (blocks it mapped
    /// on their own, and the top of the heap beyond the trim threshold), so each training step would
    /// page-fault its activations in again, the kernel zeroing every page: about a tenth of the CPU
    /// time of a transformer layer. Raising both thresholds keeps freed activation buffers in the heap
    /// for the next step's allocations of the same sizes. Applied once, when the kernels first run.
    private static let allocatorTuned: Bool = {
        #if canImport(Glibc)
        // mallopt is not in the Glibc module map; M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3 (malloc.h).
        guard let symbol = dlsym(nil, "mallopt") else { return false }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        return mallopt(-3, 256 << 20) == 1 && mallopt(-1, 1 << 30) == 1
        #else
        return false
        #endif
    }()

    /// Element count below which element-wise kernels stay on one thread (thread wake-up costs more).
    public static let elementwiseGrain = 1 << 15

    /// Rows of `width` elements per parallel chunk of a row-wise kernel: about `elementwiseGrain` elements.
    public static func rowGrain(_ width: Int) -> Int { max(1, elementwiseGrain / max(1, width)) }
}


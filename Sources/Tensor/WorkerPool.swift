import Foundation
import Synchronization

/// Persistent worker threads for the project's fork-join loops (`Parallelism`).
///
/// Dispatch's `concurrentPerform` on Linux often starts its second worker milliseconds late, or not at
/// all, so a loop split in two ran on one thread about half the time (measured: the second of two 3 ms
/// iterations started after the first had finished in 5 of 10 calls). Here the workers wait for work
/// spinning briefly, then sleeping on a condition variable, and the calling thread always takes part.
///
/// A loop started while another is running (from a worker, or from a second thread) runs serially on
/// its caller, so nested parallelism cannot deadlock or oversubscribe the cores.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// One loop: iterations are claimed one at a time from `next`. The body is reached through a raw
    /// pointer to the caller's closure, which the caller keeps alive until every claimed iteration has
    /// finished; a worker that arrives late claims no iteration and never touches it.
    private final class Job: @unchecked Sendable {
        let count: Int
        let body: UnsafePointer<(Int) -> Void>
        let helpers: Int
        let next = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        let joined = Atomic<Int>(0)

        init(count: Int, helpers: Int, body: UnsafePointer<(Int) -> Void>) {
            self.count = count
            self.helpers = helpers
            self.body = body
        }

        func participate() {
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if index >= count { return }
                body.pointee(index)
                finished.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    /// Marks the calling thread as background work (batch prefetching): its loops run serially on it and never
    /// take the workers, which the compute thread's next kernel would otherwise find busy and run serially.
    static func markBackgroundThread() { pthread_setspecific(backgroundKey, UnsafeRawPointer(bitPattern: 1)) }

    static var isBackgroundThread: Bool { pthread_getspecific(backgroundKey) != nil }

    nonisolated(unsafe) private static let backgroundKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private let running = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let condition = NSCondition()
    /// The current job; written and read under `condition`'s lock.
    private var current: Job?
    private var workerCount = 0

    /// How long a worker keeps watching for the next loop (yielding its core meanwhile) before it
    /// sleeps: long enough to bridge the serial code between the kernels of a step, short enough not to
    /// hold a core from other processes for long. Waking a sleeping worker costs tens of microseconds,
    /// and on a virtual machine whose idle CPU has been halted, milliseconds.
    private static let spinNanoseconds: UInt64 = 1_000_000

    /// Runs `body(i)` for `i` in `0..<count` on the caller and up to `helpers` workers.
    func run(count: Int, helpers: Int, _ body: (Int) -> Void) {
        guard count > 1, helpers > 0, !Self.isBackgroundThread,
              running.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            for index in 0..<count { body(index) }
            return
        }
        defer { running.store(false, ordering: .releasing) }
        startWorkers(upTo: helpers)
        withoutActuallyEscaping(body) { escapable in
            var closure = escapable
            withUnsafePointer(to: &closure) { pointer in
                let job = Job(count: count, helpers: helpers, body: pointer)
                condition.lock()
                current = job
                generation.wrappingAdd(1, ordering: .releasing)
                condition.broadcast()
                condition.unlock()
                job.participate()
                while job.finished.load(ordering: .acquiring) < count { sched_yield() }
            }
        }
    }

    /// Called with `running` held, so `workerCount` has one writer at a time.
    private func startWorkers(upTo helpers: Int) {
        while workerCount < helpers {
            workerCount += 1
            // The worker waits for loops published after this point, including the caller's next one.
            let seen = generation.load(ordering: .acquiring)
            let thread = Thread { self.workerLoop(seen: seen) }
            thread.name = "tensor-worker-\(workerCount)"
            thread.start()
        }
    }

    private func workerLoop(seen initial: Int) {
        var seen = initial
        while true {
            let spinStart = DispatchTime.now().uptimeNanoseconds
            while generation.load(ordering: .acquiring) == seen
                    && DispatchTime.now().uptimeNanoseconds - spinStart < Self.spinNanoseconds {
                sched_yield()
            }
            condition.lock()
            while generation.load(ordering: .acquiring) == seen { condition.wait() }
            seen = generation.load(ordering: .acquiring)
            let job = current
            condition.unlock()
            guard let job, job.joined.wrappingAdd(1, ordering: .relaxed).oldValue < job.helpers else { continue }
            job.participate()
        }
    }
}

import Foundation
import Tensor

/// Produces items `0..<count` in order on a background thread, at most `depth` ahead of the consumer, so that
/// reading and preparing the next batch overlaps the computation on the current one. Items are made strictly
/// one after another in index order, so a `make` that draws random numbers draws them as a plain loop would.
final class Prefetcher<Item>: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: Result<Item, Error>] = [:]
    private var consumed = 0
    private var cancelled = false
    private let depth: Int

    init(count: Int, depth: Int, make: @escaping (Int) throws -> Item) {
        self.depth = max(1, depth)
        guard count > 0 else { return }
        // The thread keeps the prefetcher alive until it has produced its last item or been cancelled.
        let worker = Thread { [self] in produce(count: count, make: make) }
        worker.stackSize = 8 << 20
        worker.start()
    }

    private func produce(count: Int, make: (Int) throws -> Item) {
        Parallelism.becomeBackgroundThread()
        for i in 0..<count {
            condition.lock()
            while !cancelled && i - consumed >= depth { condition.wait() }
            let stop = cancelled
            condition.unlock()
            if stop { return }
            let result = Result { try make(i) }
            condition.lock()
            ready[i] = result
            condition.broadcast()
            condition.unlock()
            if case .failure = result { return }
        }
    }

    /// Item `i` (items must be taken in order), waiting for it if it is not ready yet.
    func next(_ i: Int) throws -> Item {
        condition.lock()
        while ready[i] == nil { condition.wait() }
        let result = ready.removeValue(forKey: i)!
        consumed = i + 1
        condition.broadcast()
        condition.unlock()
        return try result.get()
    }

    /// Stops production after the item in progress; safe to call more than once.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGINT and SIGTERM into a flag the driver checks between polls, for as long as it lives, so that
/// a driver told to stop cancels its cluster jobs before it exits. The signals' earlier dispositions come
/// back with `stop()`.
final class InterruptWatch: @unchecked Sendable {
    static let watched: [Int32] = [SIGINT, SIGTERM]

    private var sources: [DispatchSourceSignal] = []
    private var previous: [Int32: sighandler_t?] = [:]
    private let lock = NSLock()
    private var received: Int32?

    init() {
        for number in Self.watched {
            // Ignored, so that the default action (exit) waits for the source's handler instead.
            previous[number] = Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                if self.received == nil { self.received = number }
                self.lock.unlock()
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal received, if any.
    var signal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    func stop() {
        sources.forEach { $0.cancel() }
        sources = []
        for (number, handler) in previous { _ = Glibc.signal(number, handler ?? SIG_DFL) }
        previous = [:]
    }

    deinit { stop() }

    /// Sleeps up to `seconds`, in short slices, returning early once a signal has arrived.
    func sleep(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while signal == nil && Date() < end {
            Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow)))
        }
    }
}

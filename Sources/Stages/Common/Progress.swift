import Foundation

/// Progress of a long loop: a self-rewriting line with items/s and ETA on a terminal, a plain line every
/// few seconds otherwise (logs stay readable).
public final class Progress {
    private let label: String
    private var total: Int
    private let start = Date()
    private var lastPrint = Date.distantPast
    private let isTerminal = isatty(STDERR_FILENO) != 0

    public init(_ label: String, total: Int) {
        self.label = label
        self.total = total
    }

    /// Progress of a loop whose length is known only once it runs.
    public func update(_ done: Int, total: Int, note: String = "") {
        self.total = total
        update(done, note: note)
    }

    public func update(_ done: Int, note: String = "") {
        let now = Date()
        let interval = isTerminal ? 0.2 : 5.0
        guard done == total || now.timeIntervalSince(lastPrint) >= interval else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = String(format: "%@ %d/%d  %.1f/s  ETA %.0fs%@", label, done, total, rate, eta, note.isEmpty ? "" : "  " + note)
        if isTerminal {
            FileHandle.standardError.write(Data(("\r" + line + (done == total ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
}

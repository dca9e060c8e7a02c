import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One of a stage's output streams as the driver reads it: copied to the stage's log and to the terminal
/// (line by line behind a prefix when several stages run at once), and, for standard error, scanned for
/// the line that says why the stage failed.
final class StageStream {
    let fd: Int32
    let echoPrefix: String?
    let scansErrors: Bool
    private(set) var errorLine = ErrorLine()
    private var pendingEcho = Data()

    /// Takes ownership of `fd`, the read end of a pipe.
    init(fd: Int32, echoPrefix: String?, scansErrors: Bool) {
        self.fd = fd
        self.echoPrefix = echoPrefix
        self.scansErrors = scansErrors
    }

    deinit { close(fd) }

    /// Reads every stream until all of them end, that is until the stage and everything that inherited
    /// its descriptors have exited.
    static func pump(_ streams: [StageStream], into log: FileHandle) {
        var open = streams
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while !open.isEmpty {
            var polled = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if poll(&polled, nfds_t(polled.count), -1) < 0 {
                if errno == EINTR { continue }
                // Cannot wait on the pipes any more; closing them (on deinit) ends the stage's writes.
                open.forEach { $0.finish() }
                return
            }
            var ended = Set<Int32>()
            for (stream, p) in zip(open, polled) where p.revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    stream.consume(Data(buffer[0..<count]), log: log)
                } else if count == 0 || errno != EINTR {
                    stream.finish()
                    ended.insert(p.fd)
                }
            }
            open.removeAll { ended.contains($0.fd) }
        }
    }

    private func consume(_ chunk: Data, log: FileHandle) {
        log.write(chunk)
        if scansErrors { errorLine.feed(chunk) }
        guard let prefix = echoPrefix else {
            FileHandle.standardError.write(chunk)
            return
        }
        pendingEcho.append(chunk)
        while let newline = pendingEcho.firstIndex(of: UInt8(ascii: "\n")) {
            FileHandle.standardError.write(Data(prefix.utf8) + pendingEcho[pendingEcho.startIndex...newline])
            pendingEcho = Data(pendingEcho[(newline + 1)...])
        }
    }

    private func finish() {
        if let prefix = echoPrefix, !pendingEcho.isEmpty {
            FileHandle.standardError.write(Data(prefix.utf8) + pendingEcho + Data("\n".utf8))
            pendingEcho = Data()
        }
        errorLine.finish()
    }
}

/// Picks, from a stage's standard error, the line that says why it failed: the last `error: ...` line (the
/// convention of this package's stages; kept without the prefix), else the last Swift runtime
/// `Fatal error:` line (a trap, followed by a backtrace), else the last line that is not blank. A carriage
/// return ends a line too, so a progress bar counts as its last state. Lines are cut at 300 characters.
struct ErrorLine {
    static let maxLength = 300
    private var pending = Data()
    private var lastError: String?
    private var lastFatal: String?
    private var last: String?

    var best: String? { lastError ?? lastFatal ?? last }

    mutating func feed(_ chunk: Data) {
        pending.append(chunk)
        while let end = pending.firstIndex(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) {
            take(pending[pending.startIndex..<end])
            pending = Data(pending[(end + 1)...])
        }
        // A stream without line ends (binary output) is looked at in pieces rather than held whole.
        if pending.count > 1 << 16 {
            take(pending)
            pending = Data()
        }
    }

    mutating func finish() {
        take(pending)
        pending = Data()
    }

    private mutating func take(_ bytes: Data) {
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard !line.isEmpty else { return }
        if line.hasPrefix("error:") {
            let message = line.dropFirst("error:".count).trimmingCharacters(in: .whitespaces)
            if !message.isEmpty { lastError = String(message.prefix(Self.maxLength)) }
        } else if line.contains("Fatal error:") {
            lastFatal = String(line.prefix(Self.maxLength))
        }
        last = String(line.prefix(Self.maxLength))
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A stage's scratch directory (where it keeps resumable state), claimed with an exclusive flock on its
/// lock file. The descriptor is handed to the stage's processes, which keep it open, so the lock lasts as
/// long as the stage or anything it started lives, whatever happens to the driver: a child that outlived
/// an earlier driver still holds its directory, and a rerun takes another one rather than share it.
final class ScratchDirectory: @unchecked Sendable {
    /// The lock file's name inside the directory.
    static let lockName = ".lock"
    /// How many directories a cache key may try (`KEY`, `KEY.1`, ...) before giving up.
    static let attempts = 16

    let url: URL
    /// Open, close-on-exec, holding the lock.
    let descriptor: Int32

    private init(url: URL, descriptor: Int32) {
        self.url = url
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Claims `base`, or the first of `base.1`, `base.2`, ... that no live process holds; `onBusy` hears of
    /// each one that is held.
    static func claim(_ base: URL, onBusy: (URL) -> Void) throws -> ScratchDirectory {
        for attempt in 0..<attempts {
            let url = attempt == 0 ? base : base.appendingPathExtension("\(attempt)")
            if let claimed = try tryLock(url) { return claimed }
            onBusy(url)
        }
        throw PipelineError("\(base.path): this scratch directory and \(attempts - 1) others are held by processes of earlier "
                            + "runs that are still alive; stop them, then run again")
    }

    /// Nil when another process holds the lock.
    static func tryLock(_ url: URL) throws -> ScratchDirectory? {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw PipelineError("\(url.path): cannot create the stage's scratch directory (\(error.localizedDescription))")
        }
        let lock = url.appendingPathComponent(lockName).path
        let fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PipelineError("\(lock): cannot open (\(String(cString: strerror(errno))))") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw PipelineError("\(lock): cannot lock (\(String(cString: strerror(code))))")
        }
        return ScratchDirectory(url: url, descriptor: fd)
    }

    /// Whether a live process holds the directory's lock (a directory without a lock file is free).
    static func isHeld(_ url: URL) -> Bool {
        let fd = open(url.appendingPathComponent(lockName).path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on the artifact root, so two drivers never write the store or the manifest
/// at once. The kernel drops it when the holder exits, even by SIGKILL, so a crash never leaves it stuck.
public final class PipelineLock {
    private let fd: Int32
    public let url: URL

    /// Takes the lock; if another process holds it, calls `onWait` once with its pid, then waits.
    public init(root: URL, onWait: (String) -> Void) throws {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        url = root.appendingPathComponent("lock")
        fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ManifestError("\(url.path): cannot open lock file (\(String(cString: strerror(errno))))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            onWait("another pipeline (pid \(holder.isEmpty ? "?" : holder)) holds \(url.path); waiting for it to finish")
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    close(fd)
                    throw ManifestError("\(url.path): cannot lock (\(String(cString: strerror(errno))))")
                }
            }
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

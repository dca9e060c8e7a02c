import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes files so that a reader never sees a half-written file under its final name: the bytes go to a
/// temporary file in the same directory, which is fsynced and then renamed over the destination.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { fd in
            try data.withUnsafeBytes { try writeAll(fd: fd, $0, file: url.path) }
        }
    }

    /// Runs `body` with a descriptor of a temporary file, then fsyncs and renames it to `url`.
    /// On any error the temporary file is removed and the destination is left as it was.
    public static func write(to url: URL, _ body: (Int32) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let temp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ShardError.writeFailed(file: url.path, reason: String(cString: strerror(errno)))
        }
        var ok = false
        defer {
            if !ok { unlink(temp.path) }
        }
        do {
            try body(fd)
            guard fsync(fd) == 0 else { throw ShardError.writeFailed(file: url.path, reason: "fsync: \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temp.path, url.path) == 0 else {
            throw ShardError.writeFailed(file: url.path, reason: "rename: \(String(cString: strerror(errno)))")
        }
        ok = true
        let dfd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    public static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, file: String) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ShardError.writeFailed(file: file, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }
}

import Foundation
import Shards

#if canImport(Glibc)
import Glibc
#endif

/// Hashes files and directories, remembering (path, inode, mtime, size) -> hash in the manifest so an
/// unchanged file is never read twice. A shard's hash is its logical hash (verified on first sight);
/// any other file's is the SHA-256 of its bytes; a directory's combines its files' relative paths and hashes.
public final class ContentHasher {
    public typealias State = (inode: UInt64, mtimeNs: Int64, size: Int64, hash: String)

    private let manifest: Manifest
    private var known: [String: State]
    private var fresh: [(path: String, inode: UInt64, mtimeNs: Int64, size: Int64, hash: String)] = []

    public init(manifest: Manifest) throws {
        self.manifest = manifest
        self.known = try manifest.allFileStates()
    }

    /// Writes the hashes computed since the last call into the manifest.
    public func flush() throws {
        try manifest.storeHashes(fresh)
        fresh.removeAll()
    }

    /// The content hash of a file or directory (recursively), "sha256:"-free hex.
    public func hash(of url: URL) throws -> String {
        var st = stat()
        guard stat(url.path, &st) == 0 else {
            throw ManifestError("\(url.path): \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            return try hashDirectory(url)
        }
        let path = url.standardizedFileURL.path
        let inode = UInt64(st.st_ino)
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        let size = Int64(st.st_size)
        if let k = known[path], k.inode == inode, k.mtimeNs == mtime, k.size == size {
            return k.hash
        }
        let digest = try Self.computeHash(of: url)
        // A file modified within the last 2 s could change again within its timestamp's granularity
        // without its stat changing ("racy clean"): hash it again next time rather than trust the state.
        let now = Date().timeIntervalSince1970
        if now - Double(mtime) / 1e9 > 2 {
            known[path] = (inode, mtime, size, digest)
            fresh.append((path, inode, mtime, size, digest))
        }
        return digest
    }

    /// Reads the file: a shard is fully verified and identified by its logical hash. Anything that is not
    /// a regular file (a directory where a file should be, a device) is refused with an error, as is a
    /// file that cannot be read to its end.
    public static func computeHash(of url: URL) throws -> String {
        if url.pathExtension == ShardFormat.fileExtension {
            return try ShardReader(url: url).verify()
        }
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ManifestError("\(url.path): cannot open for hashing (\(String(cString: strerror(errno))))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ManifestError("\(url.path): not a regular file, cannot be hashed")
        }
        var hasher = SHA256()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
            }
        } catch {
            throw ManifestError("\(url.path): cannot be read for hashing (\(error.localizedDescription))")
        }
        return Hex.encode(hasher.finalize())
    }

    private func hashDirectory(_ url: URL) throws -> String {
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw ManifestError("\(url.path): cannot list directory")
        }
        var entries: [(String, URL)] = []
        let base = url.standardizedFileURL.path
        for case let file as URL in walker {
            let values = try file.resourceValues(forKeys: [.isRegularFileKey])
            guard values.isRegularFile == true else { continue }
            let full = file.standardizedFileURL.path
            let rel = full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : file.lastPathComponent
            // Editor and build droppings do not change what a stage computes.
            if rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            entries.append((rel, file))
        }
        var hasher = SHA256()
        for (rel, file) in entries.sorted(by: { $0.0 < $1.0 }) {
            hasher.update(data: Data("\(rel)\0\(try hash(of: file))\n".utf8))
        }
        return Hex.encode(hasher.finalize())
    }
}

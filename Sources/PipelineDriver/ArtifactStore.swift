import Foundation
import Lineage
import Shards

#if canImport(Glibc)
import Glibc
#endif

/// The artifact root: content-addressed files under `objects/`, the manifest, logs, scratch space for
/// running stages, and `stages/NODE/FILE` links to each node's current outputs for people to open.
public struct ArtifactStore: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public var manifestURL: URL { root.appendingPathComponent("manifest.sqlite") }
    public var objectsDir: URL { root.appendingPathComponent("objects") }
    public var tmpDir: URL { root.appendingPathComponent("tmp") }
    public var logsDir: URL { root.appendingPathComponent("logs") }
    public var linksDir: URL { root.appendingPathComponent("stages") }
    public var scratchRoot: URL { root.appendingPathComponent("scratch") }

    /// Per cache key: where a stage may keep state to resume after being killed.
    public func scratchDir(cacheKey: String) -> URL { scratchRoot.appendingPathComponent(cacheKey) }

    /// The store path (relative to the root) of an artifact with this hash and file name.
    public func relativePath(hash: String, fileName: String) -> String {
        let ext = (fileName as NSString).pathExtension
        let name = ext.isEmpty ? hash : "\(hash).\(ext)"
        return "objects/\(hash.prefix(2))/\(name)"
    }

    public func url(relative: String) -> URL { root.appendingPathComponent(relative) }

    public func logURL(node: String) -> URL { logsDir.appendingPathComponent(Self.safeName(node) + ".log") }

    /// Where Slurm jobs of `pipeline run --executor slurm` keep their command lines, outputs and reports
    /// until the driver has collected them and no queued job reads them any more.
    public var jobsDir: URL { root.appendingPathComponent("jobs") }

    /// `url`'s path relative to the artifact root, or its full path when it lies outside.
    public func relativePath(of url: URL) -> String {
        let base = root.standardizedFileURL.path + "/"
        let path = url.standardizedFileURL.path
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }

    /// Moves a verified output into the store under its hash (keeping an identical existing copy). Whatever
    /// holds the place and is not a good copy (edited or corrupt bytes, a directory, a link) is replaced.
    /// With `keepSource` the file stays where it is as well (a hard link, or a copy across file systems), for
    /// readers that were given its path before it was verified.
    public func adopt(_ file: URL, hash: String, keepSource: Bool = false) throws -> (relative: String, bytes: Int) {
        let rel = relativePath(hash: hash, fileName: file.lastPathComponent)
        let dest = url(relative: rel)
        let fm = FileManager.default
        let folder = dest.deletingLastPathComponent()
        var st = stat()
        // A folder may be a link to a directory elsewhere; anything else in its place is damage.
        if Self.kind(of: folder) != nil && (stat(folder.path, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR) {
            try Self.remove(folder, what: "a store folder that is not a directory")
        }
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let bytes = (try fm.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
        switch Self.kind(of: dest) {
        case .some(S_IFREG) where (try? ContentHasher.computeHash(of: dest)) == hash:
            if !keepSource { try fm.removeItem(at: file) }
            return (rel, bytes)
        case .some(S_IFREG), nil:
            break
        default:
            // rename(2) cannot replace a directory with a file.
            try Self.remove(dest, what: "a store object that is not a regular file")
        }
        if keepSource {
            try Self.linkOrCopy(file, to: dest)
        } else if rename(file.path, dest.path) != 0 {
            throw ManifestError("\(file.path): cannot move into the store (\(String(cString: strerror(errno))))")
        }
        // Stored artifacts are immutable: make accidental edits fail loudly.
        chmod(dest.path, 0o444)
        return (rel, bytes)
    }

    /// Puts a second name on `file` at `dest` (replacing what is there), or, across file systems, a copy
    /// written beside `dest` and renamed over it.
    static func linkOrCopy(_ file: URL, to dest: URL) throws {
        let staged = dest.deletingLastPathComponent().appendingPathComponent(".\(dest.lastPathComponent).\(getpid()).tmp")
        unlink(staged.path)
        if Glibc.link(file.path, staged.path) != 0 {
            guard errno == EXDEV else {
                throw ManifestError("\(file.path): cannot link into the store (\(String(cString: strerror(errno))))")
            }
            do { try FileManager.default.copyItem(at: file, to: staged) } catch {
                throw ManifestError("\(file.path): cannot copy into the store (\(error.localizedDescription))")
            }
        }
        guard rename(staged.path, dest.path) == 0 else {
            let code = errno
            unlink(staged.path)
            throw ManifestError("\(file.path): cannot move into the store (\(String(cString: strerror(code))))")
        }
    }

    /// The file type bits of what is at `url` (not following a link), or nil when nothing is.
    static func kind(of url: URL) -> mode_t? {
        var st = stat()
        guard lstat(url.path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    static func remove(_ url: URL, what: String) throws {
        do {
            try FileManager.default.removeItem(at: url)
        } catch {
            throw ManifestError("\(url.path): cannot remove \(what) (\(error.localizedDescription))")
        }
    }

    /// An entry of the store's `objects/` folder: its path relative to the root, its URL and file type.
    public struct Entry {
        public let relative: String
        public let url: URL
        public let kind: mode_t
    }

    /// Everything under `objects/`: each entry of each `objects/XX/` folder (a folder may be a link to a
    /// directory, as in `adopt`), and whatever sits in `objects/` itself that is not a folder. Entries that
    /// are links are not followed.
    public func objectEntries() -> [Entry] {
        let fm = FileManager.default
        var entries: [Entry] = []
        for top in ((try? fm.contentsOfDirectory(atPath: objectsDir.path)) ?? []).sorted() {
            let folder = objectsDir.appendingPathComponent(top)
            guard let kind = Self.kind(of: folder) else { continue }
            var st = stat()
            guard stat(folder.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                entries.append(Entry(relative: "objects/\(top)", url: folder, kind: kind))
                continue
            }
            for name in ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? []).sorted() {
                let url = folder.appendingPathComponent(name)
                guard let kind = Self.kind(of: url) else { continue }
                entries.append(Entry(relative: "objects/\(top)/\(name)", url: url, kind: kind))
            }
        }
        return entries
    }

    /// Points `stages/NODE/FILE` at the stored artifact.
    public func link(node: String, file: String, relative: String) {
        let dir = linksDir.appendingPathComponent(Self.safeName(node))
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let link = dir.appendingPathComponent(file)
        let target = "../../" + relative
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: link.path), existing == target { return }
        unlink(link.path)
        symlink(target, link.path)
    }

    /// A node id as a file name: sweep labels may hold characters a file system dislikes. When characters
    /// had to be replaced, a short hash of the id keeps two ids from sharing a name ("a/b" vs "a_b").
    public static func safeName(_ node: String) -> String {
        let cleaned = String(node.map { c -> Character in
            c.isLetter || c.isNumber || "-_.=@,+".contains(c) ? c : "_"
        })
        guard cleaned != node else { return cleaned }
        return cleaned + "~" + String(CacheKey.make(stage: node, codeFingerprint: "", params: .null, inputs: []).prefix(8))
    }
}

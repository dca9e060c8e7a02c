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

    /// Moves a verified output into the store under its hash (keeping an identical existing copy).
    public func adopt(_ file: URL, hash: String) throws -> (relative: String, bytes: Int) {
        let rel = relativePath(hash: hash, fileName: file.lastPathComponent)
        let dest = url(relative: rel)
        let fm = FileManager.default
        try fm.createDirectory(at: dest.deletingLastPathComponent(), withIntermediateDirectories: true)
        let bytes = (try fm.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
        if fm.fileExists(atPath: dest.path), (try? ContentHasher.computeHash(of: dest)) == hash {
            try fm.removeItem(at: file)
        } else {
            // A stored copy that no longer verifies (edited or corrupt) is replaced by the new, good bytes.
            guard rename(file.path, dest.path) == 0 else {
                throw ManifestError("\(file.path): cannot move into the store (\(String(cString: strerror(errno))))")
            }
            // Stored artifacts are immutable: make accidental edits fail loudly.
            chmod(dest.path, 0o444)
        }
        return (rel, bytes)
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

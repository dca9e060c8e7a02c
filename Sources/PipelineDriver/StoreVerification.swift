import Foundation
import Lineage

/// What `pipeline verify` found: a line per damaged object, then a summary.
public struct StoreVerification: Sendable {
    public var lines: [String] = []
    /// Objects re-read.
    public var checked = 0
    /// Objects that are damaged (and still in the store unless `repaired`).
    public var damaged = 0
    public var repaired = false
}

extension Pipeline {
    /// Re-reads every object in the store, ignoring the (inode, mtime, size) cache that `status` and `run`
    /// trust, so that damage which left a file's stat unchanged (a flipped bit, a byte edited with its mtime
    /// restored) is found: a shard must verify and have the logical hash it is stored under, any other file
    /// the SHA-256 it is stored under, and each must be a regular file. With `repair`, damaged objects are
    /// removed and their remembered hashes forgotten; their producers are then stale (an output missing
    /// from the store) and the next `run` rebuilds them.
    public func verify(repair: Bool) throws -> StoreVerification {
        let lock = repair ? try PipelineLock(root: store.root, onWait: log) : nil
        defer { withExtendedLifetime(lock) {} }
        let recorded = Dictionary(try manifest.allArtifacts().map { ($0.path, $0.hash) }, uniquingKeysWith: { first, _ in first })
        var result = StoreVerification(repaired: repair)
        var forgotten: [String] = []
        for entry in store.objectEntries() {
            result.checked += 1
            let name = entry.url.lastPathComponent
            let expected = recorded[entry.relative] ?? String(name.prefix { $0 != "." })
            guard let problem = Self.damage(of: entry, expected: expected) else { continue }
            result.damaged += 1
            var producer = ""
            if let hash = recorded[entry.relative], let run = try manifest.producer(of: hash) {
                let role = run.outputs.first { $0.hash == hash }?.role ?? "?"
                producer = " (output \(role) of \(run.node)\(repair ? ", which runs again on the next `pipeline run`" : ""))"
            }
            if repair {
                try ArtifactStore.remove(entry.url, what: "a damaged store object")
                forgotten.append(entry.url.standardizedFileURL.path)
                result.lines.append("removed  \(entry.url.path): \(problem)\(producer)")
            } else {
                result.lines.append("damaged  \(entry.url.path): \(problem)\(producer)")
            }
        }
        try manifest.forgetFileStates(paths: forgotten)
        let outcome = result.damaged == 0 ? "none damaged" : "\(result.damaged) damaged\(repair ? ", removed" : "")"
        result.lines.append("verified \(result.checked) object\(result.checked == 1 ? "" : "s") in \(store.objectsDir.path): \(outcome)")
        return result
    }

    /// Why an object is damaged, or nil when it is a regular file with the content it is stored under.
    static func damage(of entry: ArtifactStore.Entry, expected: String) -> String? {
        guard entry.kind == S_IFREG else { return "not a regular file" }
        let actual: String
        do {
            actual = try ContentHasher.computeHash(of: entry.url)
        } catch {
            // Reader errors begin with the file's path, which the caller's line already names.
            let text = "\(error)"
            let prefix = entry.url.path + ": "
            return text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text
        }
        guard actual == expected else {
            return "its content hashes to \(actual.prefix(12)), not to the \(expected.prefix(12)) it is stored under"
        }
        return nil
    }
}

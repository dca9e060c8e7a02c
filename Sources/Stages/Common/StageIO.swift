import ArgumentParser
import Foundation
import Shards

/// The command-line contract every stage shares with the driver (and with any future scheduler):
/// `--out DIR --params JSON --in ROLE=PATH ...`. Nothing else is read, so a stage depends only on its files.
public struct StageIO: ParsableArguments {
    /// Required to run; empty only for `--describe`, which writes nothing (checked by `DescribedStage.resolve`).
    @Option(help: "Directory to write the outputs into (required, except with --describe).")
    public var out: String = ""

    @Option(help: "Parameters as a JSON object; unset ones take their defaults (see --describe).")
    public var params: String = "{}"

    @Option(name: .customLong("in"), help: ArgumentHelp("An input, as ROLE=PATH (repeatable).", valueName: "role=path"))
    public var inputs: [String] = []

    @Flag(help: "Print the parameters in the stages/*.json form and exit.")
    public var describe = false

    public init() {}

    /// All paths given for a role, in order.
    public func inputs(_ role: String) throws -> [URL] {
        try parsedInputs().filter { $0.role == role }.map(\.url)
    }

    /// The one path of a role.
    public func input(_ role: String, stage: String) throws -> URL {
        let urls = try inputs(role)
        guard urls.count == 1 else {
            throw StageError("\(stage): needs exactly one --in \(role)=PATH, got \(urls.count)")
        }
        guard FileManager.default.fileExists(atPath: urls[0].path) else {
            throw StageError("\(urls[0].path): no such file (input '\(role)')")
        }
        return urls[0]
    }

    /// Checks that every input role is one the stage knows.
    public func checkRoles(_ known: [String], stage: String) throws {
        for item in try parsedInputs() where !known.contains(item.role) {
            throw StageError("\(stage): unknown input '\(item.role)' (known: \(known.joined(separator: ", ")))")
        }
    }

    private func parsedInputs() throws -> [(role: String, url: URL)] {
        try inputs.map { item in
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw StageError("--in '\(item)': expected ROLE=PATH")
            }
            return (String(item[..<eq]), URL(fileURLWithPath: String(item[item.index(after: eq)...])))
        }
    }

    public var outDirectory: URL { URL(fileURLWithPath: out) }
}

/// Collects a stage's output files; if the stage fails, `discard()` removes what was written, and the
/// output directory too when this stage created it, so a failed stage leaves nothing behind. A directory
/// that existed before is never removed.
public final class StageOutputs {
    public let directory: URL
    private var written: [URL] = []
    /// The outermost directory that `init` created (the output directory or an ancestor), if any.
    private var created: URL?

    public init(directory: URL) throws {
        self.directory = directory
        var missing: URL?
        var ancestor = directory.standardizedFileURL
        while !FileManager.default.fileExists(atPath: ancestor.path) && ancestor.path != "/" {
            missing = ancestor
            ancestor = ancestor.deletingLastPathComponent()
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        created = missing
    }

    public func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    public func write(_ shard: ShardWriter, as name: String) throws {
        let url = self.url(name)
        try shard.write(to: url)
        written.append(url)
    }

    /// The path of output `name`, registered as written: a stage that streams into it (and renames into place
    /// when done) gets it removed with the other outputs if it fails.
    public func streamed(_ name: String) -> URL {
        let url = self.url(name)
        written.append(url)
        return url
    }

    public func write(_ data: Data, as name: String) throws {
        let url = self.url(name)
        try AtomicFile.write(data, to: url)
        written.append(url)
    }

    /// Registers a file already written (e.g. a checkpoint saved atomically elsewhere) as output `name`,
    /// moving or copying it into place.
    public func adopt(_ file: URL, as name: String, keepSource: Bool) throws {
        let url = self.url(name)
        if file.standardizedFileURL != url.standardizedFileURL {
            try? FileManager.default.removeItem(at: url)
            if keepSource {
                try FileManager.default.copyItem(at: file, to: url)
            } else {
                try FileManager.default.moveItem(at: file, to: url)
            }
        }
        written.append(url)
    }

    public func discard() {
        for url in written { try? FileManager.default.removeItem(at: url) }
        written.removeAll()
        // Everything in a directory this stage made is its own (a stream's temporary file, a checkpoint in progress).
        if let created { try? FileManager.default.removeItem(at: created) }
        created = nil
    }
}

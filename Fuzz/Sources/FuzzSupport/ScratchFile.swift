import Foundation

/// A file the harness rewrites with each input, for readers that take a path: one per process, in the
/// directory the fuzz script gives (`FUZZ_SCRATCH`) or the system temporary directory.
public enum ScratchFile {
    static let directory: URL = {
        let base = ProcessInfo.processInfo.environment["FUZZ_SCRATCH"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory
        let dir = base.appendingPathComponent("fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// `bytes` written to `name` inside the scratch directory.
    public static func write(_ bytes: UnsafeRawBufferPointer, as name: String) -> URL {
        let url = directory.appendingPathComponent(name)
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        return url
    }

    public static var root: URL { directory }
}

import Foundation

/// How a stage command line gets run. Today: a local child process; the same command lines can later be
/// submitted to a cluster scheduler (ARCHITECTURE.md section 12), which is why a stage takes every input,
/// output and param on its command line.
public protocol StageExecutor: Sendable {
    /// Runs the command to completion, streaming its output to `log` (and the terminal); returns the exit
    /// status, or a negative signal number when it was killed.
    func run(executable: URL, arguments: [String], environment: [String: String], workingDirectory: URL, log: URL,
             echoPrefix: String?) -> Int32
}

/// Runs stages as child processes of the driver.
public struct LocalExecutor: StageExecutor {
    public init() {}

    public func run(executable: URL, arguments: [String], environment: [String: String], workingDirectory: URL, log: URL,
                    echoPrefix: String?) -> Int32 {
        try? FileManager.default.createDirectory(at: log.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        guard let logHandle = FileHandle(forWritingAtPath: log.path) else { return 127 }
        defer { try? logHandle.close() }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = workingDirectory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            let message = "cannot start \(executable.path): \(error.localizedDescription)\n"
            logHandle.write(Data(message.utf8))
            return 127
        }
        // Close our copy of the write end so reading ends when the child (and its children) exit.
        try? pipe.fileHandleForWriting.close()
        let reader = pipe.fileHandleForReading
        var pendingLine = Data()
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            logHandle.write(chunk)
            if let prefix = echoPrefix {
                pendingLine.append(chunk)
                while let newline = pendingLine.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pendingLine[pendingLine.startIndex...newline]
                    FileHandle.standardError.write(Data(prefix.utf8) + line)
                    pendingLine = Data(pendingLine[(newline + 1)...])
                }
            } else {
                FileHandle.standardError.write(chunk)
            }
        }
        if let prefix = echoPrefix, !pendingLine.isEmpty {
            FileHandle.standardError.write(Data(prefix.utf8) + pendingLine + Data("\n".utf8))
        }
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal { return -process.terminationStatus }
        return process.terminationStatus
    }
}

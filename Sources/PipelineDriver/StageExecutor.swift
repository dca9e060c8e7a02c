import Foundation
import Lineage

/// How a stage's child process ended and what it used.
public struct StageExit: Sendable {
    /// The exit status, or a negative signal number when the child was killed.
    public let status: Int32
    /// Nil when the child never started (or an executor cannot measure it).
    public let resources: RunResources?
    /// The line of its standard error that says why it failed (see `ErrorLine`), if it wrote one.
    public let errorLine: String?

    public init(status: Int32, resources: RunResources?, errorLine: String? = nil) {
        self.status = status
        self.resources = resources
        self.errorLine = errorLine
    }
}

/// How a stage command line gets run as a local child process. The same command lines also go to Slurm
/// as jobs (`SlurmRun`, `run --executor slurm`), which queues a whole graph at once rather than one child
/// at a time and so is its own loop rather than a `StageExecutor`; that is why a stage takes every input,
/// output and param on its command line (ARCHITECTURE.md section 12).
public protocol StageExecutor: Sendable {
    /// Throws, with a message for people, when no stage can be started (checked before the first one).
    func checkReady() throws

    /// Runs the command to completion in `workingDirectory`, streaming its output to `log` (and the
    /// terminal); returns how it ended and what it used. `scratchLock`, an open descriptor holding the lock
    /// on the stage's scratch directory, must stay open in the stage's processes for as long as they live.
    func run(executable: URL, arguments: [String], environment: [String: String], scratchLock: Int32,
             workingDirectory: URL, log: URL, echoPrefix: String?) -> StageExit
}

/// Runs stages as child processes of the driver, each through `stage-launcher`, which starts the stage as
/// its only child and reports that child's wait4 resource usage on descriptor 3. Per-child figures stay
/// exact when several stages run at once (unlike getrusage(RUSAGE_CHILDREN)), and the peak RSS does not
/// start at the driver's own (see Sources/stage-launcher/main.c). Foundation's Process reaps its children
/// itself and discards their usage, hence posix_spawn. The launcher also ties the stage's life to the
/// driver's and keeps the scratch lock (descriptor 4) open in it.
public struct LocalExecutor: StageExecutor {
    /// The launcher's product name; it is built beside the driver.
    public static let launcherProduct = "stage-launcher"

    /// Held from creating a child's pipes until it is spawned, so that no other stage's launcher inherits
    /// them before they are close-on-exec.
    private static let spawnLock = NSLock()

    public let launcher: URL

    public init(launcher: URL) {
        self.launcher = launcher
    }

    public func checkReady() throws {
        guard FileManager.default.isExecutableFile(atPath: launcher.path) else {
            throw PipelineError("\(launcher.path) is missing; stages run through it so that each records its own CPU time "
                                + "and peak memory (build it with `swift build --product \(Self.launcherProduct)`)")
        }
    }

    public func run(executable: URL, arguments: [String], environment: [String: String], scratchLock: Int32,
                    workingDirectory: URL, log: URL, echoPrefix: String?) -> StageExit {
        try? FileManager.default.createDirectory(at: log.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        guard let logHandle = FileHandle(forWritingAtPath: log.path) else { return StageExit(status: 127, resources: nil) }
        defer { try? logHandle.close() }
        func refuse(_ code: Int32) -> StageExit {
            let line = "cannot start \(launcher.path): \(String(cString: strerror(code)))"
            logHandle.write(Data((line + "\n").utf8))
            return StageExit(status: 127, resources: nil, errorLine: line)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Like Process: the child starts with no blocked signals and default handlers.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([launcher.path, workingDirectory.path, executable.path] + arguments).map { strdup($0) } + [nil]
        let merged = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        // Standard output and standard error apart, so that the error line is found even when a stage's
        // buffered standard output is flushed after it.
        Self.spawnLock.lock()
        var pipes: [[Int32]] = []
        for _ in 0..<3 {
            var fds: [Int32] = [-1, -1]
            guard Self.closeOnExecPipe(&fds) else {
                let code = errno
                pipes.joined().forEach { close($0) }
                Self.spawnLock.unlock()
                return refuse(code)
            }
            pipes.append(fds)
        }
        let (output, errors, report) = (pipes[0], pipes[1], pipes[2])
        // The duplications to 0...4 run in order, so no source may sit among those targets.
        let lock = scratchLock > Self.lastTarget ? scratchLock : fcntl(scratchLock, F_DUPFD_CLOEXEC, Self.lastTarget + 1)
        defer { if lock != scratchLock { close(lock) } }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        posix_spawn_file_actions_adddup2(&actions, report[1], 3)
        posix_spawn_file_actions_adddup2(&actions, lock, 4)
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, launcher.path, &actions, &attributes, argv, envp)
        Self.spawnLock.unlock()
        // Our copies of the write ends go now, so reading ends when the child (and its children) exit.
        pipes.forEach { close($0[1]) }
        let reportHandle = FileHandle(fileDescriptor: report[0], closeOnDealloc: true)
        guard spawned == 0 else {
            close(output[0])
            close(errors[0])
            return refuse(spawned)
        }

        let streams = [StageStream(fd: output[0], echoPrefix: echoPrefix, scansErrors: false),
                       StageStream(fd: errors[0], echoPrefix: echoPrefix, scansErrors: true)]
        StageStream.pump(streams, into: logHandle)
        let reported = String(decoding: reportHandle.readDataToEndOfFile(), as: UTF8.self)
        let errorLine = streams[1].errorLine.best

        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else {
                logHandle.write(Data("lost \(launcher.path) (process \(pid)): \(String(cString: strerror(errno)))\n".utf8))
                return StageExit(status: 127, resources: nil, errorLine: errorLine)
            }
        }
        if let exit = Self.parseReport(reported) {
            return StageExit(status: exit.status, resources: exit.resources, errorLine: errorLine)
        }
        // No report: the stage never started (the launcher said why, into the log) or the launcher was killed.
        let signal = status & 0x7f
        return StageExit(status: signal == 0 ? (status >> 8) & 0xff : -signal, resources: nil, errorLine: errorLine)
    }

    /// The highest descriptor the launcher is given (4, the scratch lock).
    private static let lastTarget: Int32 = 4

    /// A pipe whose two ends are closed on exec and lie above the launcher's descriptors (a driver started
    /// with one of 0...2 closed would otherwise get them).
    private static func closeOnExecPipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for i in fds.indices {
            let original = fds[i]
            if original <= lastTarget {
                fds[i] = fcntl(original, F_DUPFD_CLOEXEC, lastTarget + 1)
            } else if fcntl(original, F_SETFD, FD_CLOEXEC) == -1 {
                fds[i] = -1
            }
            let code = errno
            if fds[i] != original { close(original) }
            if fds[i] == -1 {
                fds.filter { $0 >= 0 }.forEach { close($0) }
                errno = code
                return false
            }
        }
        return true
    }

    /// The launcher's line `EXIT WALL_NS USER_US SYSTEM_US MAXRSS_KIB`; nil unless it is complete.
    static func parseReport(_ line: String) -> StageExit? {
        let fields = line.split(separator: " ").map { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard fields.count == 5, let code = fields[0], let wallNs = fields[1], let userUs = fields[2],
              let systemUs = fields[3], let maxRSSKiB = fields[4], let status = Int32(exactly: code) else { return nil }
        return StageExit(status: status, resources: RunResources(wallSeconds: Double(wallNs) * 1e-9,
                                                                 cpuSeconds: Double(userUs + systemUs) * 1e-6,
                                                                 // Linux reports ru_maxrss in KiB.
                                                                 peakRSSBytes: maxRSSKiB * 1024))
    }
}

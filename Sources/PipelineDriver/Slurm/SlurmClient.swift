import Foundation

/// A tool's standard error, filled in by the thread that reads it (and read after that thread is done).
private final class ErrorText: @unchecked Sendable {
    var data = Data()
}

/// How Slurm says a job stands: its state (`PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`,
/// `TIMEOUT`, `PREEMPTED`, `NODE_FAIL`, `OUT_OF_MEMORY`, ...), the reason it gives, and the nodes it runs on.
public struct SlurmJobState: Equatable, Sendable {
    public let state: String
    public let reason: String?
    public let nodes: String?

    public init(state: String, reason: String? = nil, nodes: String? = nil) {
        self.state = state
        self.reason = reason
        self.nodes = nodes
    }

    /// The states a job leaves only by ending (or by being requeued, which puts it back in `PENDING`).
    static let terminal: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL",
                                        "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT"]

    public var hasEnded: Bool { Self.terminal.contains(state) }
    public var isPending: Bool { state == "PENDING" || state.hasPrefix("REQUEUE") }

    /// For people: `PENDING (Dependency)`, `RUNNING on node1`, `TIMEOUT (TimeLimit)`.
    public var summary: String {
        if state == "RUNNING", let nodes, !nodes.isEmpty { return "RUNNING on \(nodes)" }
        if let reason, !reason.isEmpty, reason != "None" { return "\(state) (\(reason))" }
        return state
    }
}

/// The Slurm command-line tools, run as child processes: `sbatch` submits, `squeue` (jobs the controller
/// still holds, finished ones included for `MinJobAge` seconds) then `sacct` (the accounting database, or
/// with `--completion` the job-completion log where there is no database) tell how jobs stand, `scancel`
/// cancels, `scontrol` reads the configuration. Nothing here talks to Slurm any other way.
public struct SlurmClient: Sendable {
    public init() {}

    /// The tools `pipeline run --executor slurm` cannot work without.
    static let requiredTools = ["sbatch", "squeue", "scancel"]

    /// The first executable `name` on PATH.
    public static func which(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    /// Throws, naming the first missing tool, unless sbatch, squeue and scancel are on PATH.
    public func checkReady() throws {
        if let missing = Self.requiredTools.first(where: { Self.which($0) == nil }) {
            throw PipelineError("--executor slurm needs \(missing) on PATH")
        }
    }

    /// Runs a tool with `arguments`; its exit status, standard output and standard error.
    func run(_ tool: String, _ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        guard let executable = Self.which(tool) else { return (127, "", "\(tool): not found on PATH") }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return (127, "", "\(tool): \(error.localizedDescription)") }
        // Standard error on another thread, so that neither pipe fills up while the other is read.
        let errorText = ErrorText()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorText.data = errors.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        let errorData = errorText.data
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }

    /// Submits `script` with `arguments` (sbatch options); returns the job id (for an array, the array's id).
    public func submit(script: URL, arguments: [String]) throws -> String {
        let result = run("sbatch", ["--parsable"] + arguments + [script.path])
        let firstError = result.errors.split(whereSeparator: \.isNewline).last.map(String.init)
        guard result.status == 0 else {
            throw PipelineError("sbatch refused the job: \(firstError ?? "exit \(result.status)")")
        }
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let id = result.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw PipelineError("sbatch answered '\(result.output.trimmingCharacters(in: .whitespacesAndNewlines))' instead of a job id")
        }
        return id
    }

    /// Cancels jobs (`123`, a whole array, or `123_4`, one task of it). Errors about jobs that have already
    /// ended are of no interest.
    public func cancel(_ ids: [String]) {
        guard !ids.isEmpty else { return }
        _ = run("scancel", ids)
    }

    /// The states of `ids` (`123` or `123_4`) that Slurm still knows: from squeue, then sacct, then the
    /// job-completion log (`sacct --completion`, for clusters without an accounting database; it does not
    /// name array tasks). An id missing from the result is unknown to all three. Nil when the controller
    /// cannot be asked (squeue fails for another reason than an unknown job id): nothing is known then.
    public func states(of ids: [String]) -> [String: SlurmJobState]? {
        guard !ids.isEmpty else { return [:] }
        var states: [String: SlurmJobState] = [:]
        let wanted = Set(ids)
        // `-j` takes array ids; `-r` lists every task of an array on a line of its own.
        let bases = Array(Set(ids.map { String($0.split(separator: "_").first ?? Substring($0)) })).sorted()
        func queue(_ jobs: [String]) -> (known: Bool, answered: Bool) {
            let result = run("squeue", ["-h", "-r", "--states=all", "-j", jobs.joined(separator: ","), "-o", "%i|%T|%r|%N"])
            if result.status == 0 {
                for (id, state) in Self.parse(result.output, fields: 4) where wanted.contains(id) { states[id] = state }
                return (true, true)
            }
            // squeue refuses a job id the controller has forgotten; anything else means it was not answered.
            return (false, result.errors.localizedCaseInsensitiveContains("invalid job id"))
        }
        let all = queue(bases)
        if !all.known {
            guard all.answered else { return nil }
            // One forgotten id fails the whole call: ask one by one.
            for base in bases where bases.count > 1 {
                guard queue([base]).answered else { return nil }
            }
        }
        var missing = ids.filter { states[$0] == nil }
        if !missing.isEmpty {
            let accounted = run("sacct", ["-n", "-P", "-X", "-j", missing.joined(separator: ","), "-o", "JobID,State,Reason,NodeList"])
            if accounted.status == 0 {
                for (id, state) in Self.parse(accounted.output, fields: 4) where wanted.contains(id) && states[id] == nil {
                    states[id] = state
                }
            }
            missing = missing.filter { states[$0] == nil && !$0.contains("_") }
        }
        if !missing.isEmpty {
            let completed = run("sacct", ["--completion", "-n", "-P", "-j", missing.joined(separator: ","), "-o", "JobID,State"])
            if completed.status == 0 {
                for (id, state) in Self.parse(completed.output, fields: 2) where wanted.contains(id) && states[id] == nil {
                    states[id] = state
                }
            }
        }
        return states
    }

    /// `ID|STATE|REASON|NODES` lines; sacct's `CANCELLED by 0` is the state `CANCELLED`.
    static func parse(_ text: String, fields: Int) -> [(String, SlurmJobState)] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let parts = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard parts.count >= min(fields, 2), !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
            let state = String(parts[1].split(separator: " ").first ?? "")
            return (parts[0], SlurmJobState(state: state, reason: parts.count > 2 ? parts[2] : nil,
                                            nodes: parts.count > 3 ? parts[3] : nil))
        }
    }

    /// Jobs whose comment is `comment`, as squeue lists them (one line per array task); nil when squeue fails.
    public func jobs(withComment comment: String) -> [String]? {
        let result = run("squeue", ["-h", "-r", "--states=all", "-o", "%i|%k"])
        guard result.status == 0 else { return nil }
        return result.output.split(whereSeparator: \.isNewline).compactMap { line in
            let parts = line.split(separator: "|", maxSplits: 1).map(String.init)
            return parts.count == 2 && parts[1].trimmingCharacters(in: .whitespaces) == comment ? parts[0] : nil
        }
    }

    /// The cluster's `MaxArraySize` (a job array's indices must stay below it); Slurm's default when the
    /// configuration cannot be read.
    public func maxArraySize() -> Int {
        let result = run("scontrol", ["show", "config"])
        for line in result.output.split(whereSeparator: \.isNewline) where line.hasPrefix("MaxArraySize") {
            if let value = line.split(separator: "=").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                return value
            }
        }
        return 1001
    }
}

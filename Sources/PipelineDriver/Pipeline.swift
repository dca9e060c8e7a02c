import Foundation
import Lineage
import Shards

/// A failure of a pipeline command, as one line for the user.
public struct PipelineError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Options of `pipeline run`.
public struct RunOptions: Sendable {
    public var only: [String] = []
    public var force: [String] = []
    public var dryRun = false
    public var jobs = 1
    /// Build the package's stage products before running them (off when stages are prebuilt or scripts).
    public var build = true
    /// Submit every stale node to Slurm as a job instead of running it here (`--executor slurm`); nil runs
    /// stages as local child processes.
    public var slurm: SlurmOptions? = nil
    public init() {}
}

/// The driver: the plan of pipeline.json over an artifact store and its manifest.
public final class Pipeline {
    /// The environment variable telling a stage how many stages run at once (`Parallelism.availableCores`, which
    /// reads it, lives in Tensor, which the driver does not link).
    public static let concurrentStagesVariable = "PIPELINE_JOBS"

    /// The environment variable naming a stage's resumable scratch directory (kept until it succeeds).
    public static let scratchVariable = "PIPELINE_SCRATCH"

    public let plan: PipelinePlan
    public let store: ArtifactStore
    public let manifest: Manifest
    let contentHasher: ContentHasher
    let executor: StageExecutor
    var fingerprintCache: [String: (fingerprint: String, paths: [String: String])] = [:]
    /// Where the package's stage executables are (the driver's own directory).
    let binDirectory: URL
    let log: (String) -> Void

    /// Without an `executor`, stages run as local child processes through the `stage-launcher` in
    /// `binDirectory` (by default the driver's own directory).
    public init(pipelineFile: URL, artifacts: URL, executor: StageExecutor? = nil,
                binDirectory: URL? = nil, log: @escaping (String) -> Void = { print($0) }) throws {
        plan = try PipelinePlan(spec: PipelineSpec(url: pipelineFile))
        store = ArtifactStore(root: artifacts)
        manifest = try Manifest(url: store.manifestURL)
        contentHasher = try ContentHasher(manifest: manifest)
        let binDirectory = binDirectory ?? Self.ownDirectory()
        self.executor = executor ?? LocalExecutor(launcher: binDirectory.appendingPathComponent(LocalExecutor.launcherProduct))
        self.binDirectory = binDirectory
        self.log = log
    }

    static func ownDirectory() -> URL {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent()
    }

    // MARK: status

    /// Every node with its state, in dependency order.
    public func status() throws -> [NodeEvaluation] {
        var outputs: [String: [String: ArtifactRef]] = [:]
        var result: [NodeEvaluation] = []
        for node in plan.nodes {
            let e = try evaluate(node, upstreamOutputs: outputs)
            if case .fresh = e.state { outputs[node.id] = e.outputs }
            result.append(e)
        }
        try contentHasher.flush()
        return result
    }

    // MARK: run

    /// Runs what is stale, in dependency order, up to `jobs` at once. Returns the nodes that ran.
    @discardableResult
    public func run(_ options: RunOptions) throws -> [String] {
        if let slurm = options.slurm, !options.dryRun {
            return try SlurmRun(pipeline: self, options: options, slurm: slurm).run()
        }
        let lock: PipelineLock? = options.dryRun ? nil : try PipelineLock(root: store.root, onWait: log)
        defer { withExtendedLifetime(lock) {} }
        if !options.dryRun { try? FileManager.default.removeItem(at: store.tmpDir) }
        if !options.dryRun {
            let pending = try manifest.submissions()
            if !pending.isEmpty {
                log("note       \(pending.count) Slurm job(s) of an earlier `run --executor slurm` are not collected "
                    + "(\(pending.map(\.node).sorted().joined(separator: ", "))); `run --executor slurm` waits for them and records them")
            }
        }

        let forced = try Set(options.force.flatMap { try resolve($0) })
        var selected = Set(plan.nodes.map(\.id))
        if !options.only.isEmpty { selected = try Set(options.only.flatMap { try resolve($0) }) }

        var outputs: [String: [String: ArtifactRef]] = [:]
        var done = Set<String>()
        var failed: [String] = []
        var ran: [String] = []
        var running: [String: NodeEvaluation] = [:]
        var builtProducts = Set<String>()
        var executorReady = false
        var abortError: Error?
        let completions = CompletionQueue()

        func skippable(_ node: PlanNode) -> Bool { !selected.contains(node.id) }

        let order = options.jobs > 1 ? plan.criticalPathOrder() : plan.nodes
        while true {
            var launchedOrSettled = false
            for node in order where !done.contains(node.id) && running[node.id] == nil {
                do {
                    if running.count >= max(1, options.jobs) { break }
                    if !failed.isEmpty { break }
                    guard node.upstream.allSatisfy({ done.contains($0) }) else { continue }
                    let e = try evaluate(node, upstreamOutputs: outputs)
                    switch e.state {
                    case .waiting(let up):
                        if options.dryRun || skippable(node) {
                            if !skippable(node) { log("would run  \(node.id)  (after \(up) runs)") }
                            done.insert(node.id)
                            launchedOrSettled = true
                            continue
                        }
                        throw PipelineError("\(node.id): its input from \(up) is not available; run without --only to build it")
                    case .fresh where !forced.contains(node.id):
                        outputs[node.id] = e.outputs
                        if !options.dryRun { linkOutputs(node.id, e.outputs) }
                        if !skippable(node) { log("fresh      \(node.id)") }
                        done.insert(node.id)
                        launchedOrSettled = true
                        continue
                    default:
                        break
                    }
                    let reason: String
                    if case .stale(let r) = e.state { reason = r } else { reason = "forced" }
                    if skippable(node) {
                        if case .fresh = e.state { outputs[node.id] = e.outputs }
                        done.insert(node.id)
                        launchedOrSettled = true
                        continue
                    }
                    if running.values.contains(where: { $0.cacheKey == e.cacheKey }) {
                        // The same computation is running for another node; its result will make this one fresh.
                        continue
                    }
                    if options.dryRun {
                        log("would run  \(node.id)  (\(reason))")
                        done.insert(node.id)
                        launchedOrSettled = true
                        continue
                    }
                    if !executorReady {
                        try executor.checkReady()
                        executorReady = true
                    }
                    let definition = node.stage.definition
                    if options.build && definition.isPackageProduct && !builtProducts.contains(definition.command) {
                        try buildProduct(definition.command)
                        builtProducts.insert(definition.command)
                    }
                    log("run        \(node.id)  (\(reason))")
                    try launch(node, evaluation: e, jobs: max(1, options.jobs), completions: completions)
                    running[node.id] = e
                    launchedOrSettled = true
                } catch {
                    // Stop launching, but let running stages finish and be recorded before reporting.
                    abortError = error
                    failed.append(node.id)
                    break
                }
            }
            if running.isEmpty {
                if launchedOrSettled && failed.isEmpty { continue }
                break
            }
            let completion = completions.next()
            let id = completion.node
            let e = running.removeValue(forKey: id)!
            let node = plan.node(id)!
            do {
                let produced = try finish(node, evaluation: e, completion: completion)
                outputs[id] = produced
                linkOutputs(id, produced)
                done.insert(id)
                ran.append(id)
            } catch {
                log("FAILED     \(id): \(error)")
                failed.append(id)
            }
        }
        try contentHasher.flush()
        if let abortError { throw abortError }
        if !failed.isEmpty {
            throw PipelineError("stage \(failed.joined(separator: ", ")) failed; earlier results are kept (see `pipeline status`)")
        }
        return ran
    }

    func resolve(_ name: String) throws -> [String] {
        let ids = plan.nodes(matching: name).map(\.id)
        guard !ids.isEmpty else {
            throw PipelineError("no stage or node named '\(name)' (stages: \(plan.spec.stages.map(\.name).joined(separator: ", ")))")
        }
        return ids
    }

    /// Starts `node`'s stage. With `jobs` > 1 its output is echoed with the node's name, and the stage learns
    /// through `PIPELINE_JOBS` that it shares the cores with as many others (its `threads: 0` takes its share).
    private func launch(_ node: PlanNode, evaluation e: NodeEvaluation, jobs: Int, completions: CompletionQueue) throws {
        // A directory that survives a killed run of the same cache key, so a long stage (train) can resume;
        // locked for the life of the stage's processes.
        let scratch = try ScratchDirectory.claim(store.scratchDir(cacheKey: e.cacheKey ?? "none")) { busy in
            log("scratch    \(busy.path) is held by a process of an earlier run; \(node.id) uses another one")
        }
        let tmp = store.tmpDir.appendingPathComponent(ArtifactStore.safeName(node.id) + ".\(getpid())")
        try? FileManager.default.removeItem(at: tmp)
        try? FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        var paths: [String] = []
        for input in e.inputs {
            let artifact = try? manifest.artifact(hash: input.hash)
            paths.append(store.url(relative: artifact?.path ?? "").path)
        }
        let (stageExecutable, stageArguments) = stageCommand(node, inputPaths: paths, out: tmp)
        let (executable, commandLine) = try MPILaunch.local(node, executable: stageExecutable, arguments: stageArguments)
        let logURL = store.logURL(node: node.id)
        // The log of an earlier Slurm run of this node is a link to that job's log, which stays as it was.
        unlink(logURL.path)
        let root = plan.spec.projectRoot
        let executor = self.executor
        let started = Date().timeIntervalSince1970
        let prefix: String? = jobs > 1 ? "[\(node.id)] " : nil
        var stageEnvironment = [Pipeline.scratchVariable: scratch.url.path]
        if jobs > 1 { stageEnvironment[Pipeline.concurrentStagesVariable] = String(jobs) }
        let environment = stageEnvironment
        Thread.detachNewThread {
            let exit = executor.run(executable: executable, arguments: commandLine, environment: environment,
                                    scratchLock: scratch.descriptor, workingDirectory: root, log: logURL, echoPrefix: prefix)
            completions.post(Completion(node: node.id, exit: exit, startedAt: started, tmp: tmp, scratch: scratch))
        }
    }

    /// The stage's executable and the command line the driver gives it, wherever it runs: its stage file's
    /// fixed arguments, then `--out DIR --params JSON --in ROLE=PATH ...` with one path per input of the
    /// node, in the node's input order (`inputPaths`; a `file:` input is its path in the project).
    func stageCommand(_ node: PlanNode, inputPaths: [String], out: URL) -> (executable: URL, arguments: [String]) {
        let definition = node.stage.definition
        var arguments = definition.arguments + ["--out", out.path, "--params", node.params.canonical]
        for (i, (role, source)) in node.inputs.enumerated() {
            let path: String
            switch source {
            case .file(let p): path = plan.spec.projectRoot.appendingPathComponent(p).path
            case .output: path = inputPaths[i]
            }
            arguments += ["--in", "\(role)=\(path)"]
        }
        let executable = definition.isPackageProduct
            ? binDirectory.appendingPathComponent(definition.command)
            : plan.spec.projectRoot.appendingPathComponent(definition.command)
        return (executable, arguments)
    }

    /// Checks a finished child's outputs, stores them and records the run with what the child used; a
    /// failure is recorded too.
    private func finish(_ node: PlanNode, evaluation e: NodeEvaluation, completion: Completion) throws -> [String: ArtifactRef] {
        defer { try? FileManager.default.removeItem(at: completion.tmp) }
        let logURL = store.logURL(node: node.id)
        var failure: String?
        let status = completion.exit.status
        if status != 0 {
            let how = status < 0 ? "killed by signal \(-status)" : "exit \(status)"
            let why = (completion.exit.errorLine ?? Self.lastLine(of: logURL.path)).map { ": \($0)" } ?? ""
            failure = "\(how)\(why) (log: \(logURL.path))"
        }
        let refs = try record(node, evaluation: e, failure: failure, resources: completion.exit.resources, outDir: completion.tmp,
                              startedAt: completion.startedAt, log: logURL)
        // Still locked by this driver: nothing else can be using it.
        try? FileManager.default.removeItem(at: completion.scratch.url)
        return refs
    }

    /// Records a finished stage run: with `failure` set, a failed run with that message (thrown too);
    /// otherwise every declared output in `outDir` must be a regular file that verifies, and each is moved
    /// into the store (linked, with `keepOutputs`, when jobs queued downstream read it from `outDir`) before
    /// the run is recorded with its outputs. A missing or bad output makes it a failed run as well.
    /// `submission` is the job submission the run completes (deleted with the recording).
    func record(_ node: PlanNode, evaluation e: NodeEvaluation, failure: String?, resources: RunResources?, outDir: URL,
                startedAt: Double, log: URL, keepOutputs: Bool = false, slurmJobID: String? = nil,
                submission: String? = nil) throws -> [String: ArtifactRef] {
        let logPath = log.path
        let relativeLog = store.relativePath(of: log)
        func fail(_ message: String) throws -> Never {
            let run = RunRecord(stage: node.stage.name, node: node.id, cacheKey: e.cacheKey ?? "", paramsJSON: node.params.canonical,
                                codeFingerprint: e.codeFingerprint, codePathsJSON: Self.codePathsJSON(e), startedAt: startedAt,
                                finishedAt: Date().timeIntervalSince1970, status: RunRecord.failed, error: message, resources: resources,
                                inputs: e.inputs, outputs: [], slurmJobID: slurmJobID, logPath: relativeLog)
            try manifest.record(run, artifacts: [], collecting: submission)
            throw PipelineError(message)
        }
        if let failure { try fail(failure) }
        var refs: [String: ArtifactRef] = [:]
        var artifacts: [ArtifactRecord] = []
        for file in node.stage.definition.outputs {
            let url = outDir.appendingPathComponent(file)
            var st = stat()
            guard lstat(url.path, &st) == 0 else {
                try fail("exited 0 but did not write its output \(file) (log: \(logPath))")
            }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                try fail("output \(file) is not a regular file (a directory or a link cannot be stored)")
            }
            let hash: String
            do { hash = try ContentHasher.computeHash(of: url) } catch { try fail("output \(file) does not verify: \(error)") }
            let rel: String, bytes: Int
            do { (rel, bytes) = try store.adopt(url, hash: hash, keepSource: keepOutputs) } catch {
                try fail("output \(file) cannot be stored: \(error)")
            }
            artifacts.append(ArtifactRecord(hash: hash, kind: (file as NSString).pathExtension, path: rel, bytes: bytes,
                                            createdAt: Date().timeIntervalSince1970))
            refs[file] = ArtifactRef(role: file, hash: hash)
        }
        let run = RunRecord(stage: node.stage.name, node: node.id, cacheKey: e.cacheKey!, paramsJSON: node.params.canonical,
                            codeFingerprint: e.codeFingerprint, codePathsJSON: Self.codePathsJSON(e), startedAt: startedAt,
                            finishedAt: Date().timeIntervalSince1970, status: RunRecord.succeeded, error: nil, resources: resources,
                            inputs: e.inputs, outputs: node.stage.definition.outputs.map { refs[$0]! },
                            slurmJobID: slurmJobID, logPath: relativeLog)
        try manifest.record(run, artifacts: artifacts, collecting: submission)
        return refs
    }

    static func codePathsJSON(_ e: NodeEvaluation) -> String {
        JSONValue.object(e.codePaths.mapValues { .string($0) }).canonical
    }

    func linkOutputs(_ node: String, _ outputs: [String: ArtifactRef]) {
        for (file, ref) in outputs {
            if let a = try? manifest.artifact(hash: ref.hash) { store.link(node: node, file: file, relative: a.path) }
        }
    }

    static func lastLine(of path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(whereSeparator: \.isNewline).last.map { String($0.prefix(300)) }
    }

    /// Builds one executable product of this package, in the configuration the driver itself was built in.
    func buildProduct(_ product: String) throws {
        var arguments = ["build", "--package-path", plan.spec.projectRoot.path, "--product", product]
        let components = binDirectory.pathComponents
        if let i = components.lastIndex(where: { $0.hasPrefix(".build") }), i + 2 < components.count {
            let scratch = NSString.path(withComponents: Array(components[...i]))
            arguments += ["--scratch-path", scratch, "-c", components.last!]
        }
        log("build      \(product)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift"] + arguments
        let logURL = store.logsDir.appendingPathComponent("build-\(product).log")
        try FileManager.default.createDirectory(at: store.logsDir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PipelineError("building \(product) failed: \(Self.lastLine(of: logURL.path) ?? "") (log: \(logURL.path))")
        }
    }
}

/// A finished child: its node, how it ended and what it used, when it started, its output directory and
/// its scratch directory (locked until the completion is dropped).
struct Completion: Sendable {
    let node: String
    let exit: StageExit
    let startedAt: Double
    let tmp: URL
    let scratch: ScratchDirectory
}

/// Finished children, handed from their threads to the driver's loop.
final class CompletionQueue: @unchecked Sendable {
    private var items: [Completion] = []
    private let condition = NSCondition()

    func post(_ item: Completion) {
        condition.lock()
        items.append(item)
        condition.signal()
        condition.unlock()
    }

    func next() -> Completion {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty { condition.wait() }
        return items.removeFirst()
    }
}

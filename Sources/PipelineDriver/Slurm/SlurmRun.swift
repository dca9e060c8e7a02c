import Foundation
import Lineage
import Shards

#if canImport(Glibc)
import Glibc
#endif

/// Options of `pipeline run --executor slurm`.
public struct SlurmOptions: Sendable {
    /// What every job asks for unless its stage's `resources` block says otherwise (`--partition`,
    /// `--time-limit`, `--cpus-per-task`, `--mem`).
    public var resources = StageResources()
    /// Further sbatch options, passed on as they are (`--sbatch-arg`, repeatable); the resources above come
    /// after them, so a stage's `resources` wins.
    public var sbatchArguments: [String] = []
    /// The longest pause between two looks at the queue, in seconds: polling starts at a quarter second and
    /// backs off to this while nothing changes. `PIPELINE_SLURM_POLL` in the environment overrides it.
    public var maxPollInterval: Double = 10
    public init() {}
}

/// Where one input of a submitted node comes from.
enum JobInput: Equatable {
    /// An artifact of the store or a file of the project, known by content hash.
    case artifact(role: String, hash: String, path: String)
    /// An output of an upstream node's job that had not been collected when this one was submitted: the
    /// job reads it from that job's output directory.
    case upstream(role: String, node: String, job: String, file: String, path: String)

    var path: String {
        switch self {
        case .artifact(_, _, let path), .upstream(_, _, _, _, let path): return path
        }
    }

    var json: JSONValue {
        switch self {
        case let .artifact(role, hash, path): return .object(["role": .string(role), "hash": .string(hash), "path": .string(path)])
        case let .upstream(role, node, job, file, path):
            return .object(["role": .string(role), "node": .string(node), "job": .string(job), "file": .string(file), "path": .string(path)])
        }
    }

    init?(_ json: JSONValue) {
        guard let role = json["role"]?.stringValue, let path = json["path"]?.stringValue else { return nil }
        if let hash = json["hash"]?.stringValue {
            self = .artifact(role: role, hash: hash, path: path)
        } else if let node = json["node"]?.stringValue, let job = json["job"]?.stringValue, let file = json["file"]?.stringValue {
            self = .upstream(role: role, node: node, job: job, file: file, path: path)
        } else {
            return nil
        }
    }

    static func list(_ text: String) -> [JobInput]? {
        guard let items = (try? JSONValue.parse(text, source: "manifest"))?.arrayValue else { return nil }
        let inputs = items.compactMap(JobInput.init)
        return inputs.count == items.count ? inputs : nil
    }
}

/// `pipeline run --executor slurm`: every stale node becomes a Slurm job running the stage command line the
/// local executor runs, submitted with `--dependency=afterok:...` on its upstream jobs, so the whole stale
/// graph is queued at once (a sweep's points as one job array where their dependencies allow). The driver
/// stays the only writer of the manifest: it polls the queue, and as each job ends it verifies the outputs
/// and records the run exactly as for a local child, plus the job id and the log. Each submission is
/// written to the manifest before sbatch is called, so a driver restarted while its jobs are queued or
/// running waits for them again instead of submitting them twice.
final class SlurmRun {
    /// A node's job, from submission until it is collected.
    struct Flight {
        var submission: JobSubmission
        var inputs: [JobInput]
        /// The cache key when it was known at submission (all inputs were in the store).
        var cacheKey: String?
        var lastState: SlurmJobState?
        /// Consecutive polls in which Slurm did not know the job.
        var unknownPolls = 0
    }

    /// A node chosen to run, before its job exists.
    struct Planned {
        enum Source {
            case known(role: String, hash: String, path: String)
            case pending(role: String, node: String, file: String)
        }
        let node: PlanNode
        let sources: [Source]
        let cacheKey: String?
        let reason: String
    }

    let pipeline: Pipeline
    let options: RunOptions
    let slurm: SlurmOptions
    let client = SlurmClient()
    let log: (String) -> Void
    var store: ArtifactStore { pipeline.store }
    var manifest: Manifest { pipeline.manifest }

    var outputs: [String: [String: ArtifactRef]] = [:]
    var done = Set<String>()
    /// Nodes that cannot run in this driver: an upstream failed or its job was discarded.
    var blocked = Set<String>()
    var failed: [String] = []
    var ran: [String] = []
    var inFlight: [String: Flight] = [:]
    /// Submissions an earlier driver left in the manifest that no node has claimed yet, by directory.
    var orphans: [String: JobSubmission] = [:]
    /// Jobs the driver cancelled itself because an upstream failed: not runs.
    var cancelledByDriver = Set<String>()
    var builtProducts = Set<String>()
    /// The task ids of each job array this driver submitted, so that a job waiting for all of them waits
    /// for the array.
    var arrayTasks: [String: [String]] = [:]
    var maxArraySize: Int?
    var forced = Set<String>()
    var selected = Set<String>()
    var abortError: Error?
    var pollDelay = SlurmRun.firstPoll
    var controllerSilent = false
    static let firstPoll = 0.25

    init(pipeline: Pipeline, options: RunOptions, slurm: SlurmOptions) {
        self.pipeline = pipeline
        self.options = options
        var slurm = slurm
        if let text = ProcessInfo.processInfo.environment["PIPELINE_SLURM_POLL"], let seconds = Double(text), seconds > 0 {
            slurm.maxPollInterval = seconds
        }
        self.slurm = slurm
        self.log = pipeline.log
    }

    var launcher: URL { pipeline.binDirectory.appendingPathComponent(LocalExecutor.launcherProduct) }

    func run() throws -> [String] {
        try client.checkReady()
        guard FileManager.default.isExecutableFile(atPath: launcher.path) else {
            throw PipelineError("\(launcher.path) is missing; stages run through it (build it with `swift build --product \(LocalExecutor.launcherProduct)`)")
        }
        let lock = try PipelineLock(root: store.root, onWait: log)
        defer { withExtendedLifetime(lock) {} }
        try? FileManager.default.removeItem(at: store.tmpDir)
        let interrupts = InterruptWatch()
        defer { interrupts.stop() }

        forced = try Set(options.force.flatMap { try pipeline.resolve($0) })
        selected = Set(pipeline.plan.nodes.map(\.id))
        if !options.only.isEmpty { selected = try Set(options.only.flatMap { try pipeline.resolve($0) }) }
        try recoverSubmissions()

        var first = true
        while true {
            if let signal = interrupts.signal { try stop(signal) }
            if abortError == nil && failed.isEmpty {
                do { try planPass() } catch { abortError = error }
            }
            if first {
                cancelStaleOrphans()
                first = false
            }
            if inFlight.isEmpty { break }
            try waitAndCollect(interrupts)
        }
        // After a failure the nodes behind it were not planned: their earlier jobs may still be wanted.
        if abortError == nil && failed.isEmpty { cancelUnclaimedOrphans() }
        pipeline.removeUnusedJobDirectories()
        try pipeline.contentHasher.flush()
        if let abortError { throw abortError }
        if !failed.isEmpty {
            throw PipelineError("stage \(failed.joined(separator: ", ")) failed; earlier results are kept (see `pipeline status`)")
        }
        return ran
    }

    // MARK: submissions left by an earlier driver

    /// Loads the submissions an earlier driver recorded and did not collect. A submission written just
    /// before that driver died may have no job id: Slurm is asked for the job by its comment, and a
    /// submission sbatch never received is forgotten.
    func recoverSubmissions() throws {
        var forget: [String] = []
        var found: [(dir: String, jobID: String, logPath: String)] = []
        var byComment: [String: [String]] = [:]
        for var submission in try manifest.submissions() {
            if submission.jobID == nil {
                let token = Self.token(of: submission.dir)
                if byComment[token] == nil {
                    guard let jobs = client.jobs(withComment: Self.comment(token)) else {
                        throw PipelineError("squeue does not answer; it is needed to find the job \(submission.node) was being submitted as "
                                            + "when an earlier driver stopped (run again once the Slurm controller answers)")
                    }
                    byComment[token] = jobs
                }
                let index = (submission.dir as NSString).lastPathComponent
                let jobs = byComment[token]!
                guard let job = jobs.first(where: { $0.hasSuffix("_\(index)") }) ?? (jobs.count == 1 && index == "0" ? jobs.first : nil) else {
                    forget.append(submission.dir)
                    continue
                }
                submission.jobID = job
                submission.logPath = Self.logPath(job: job)
                found.append((submission.dir, job, submission.logPath!))
            }
            orphans[submission.dir] = submission
        }
        try manifest.setJobIDs(found)
        try manifest.removeSubmissions(dirs: forget)
    }

    /// Orphans that cannot be what this pipeline wants (their node is gone, or its params or code changed)
    /// are cancelled once, after the first planning pass.
    func cancelStaleOrphans() {
        var stale: [JobSubmission] = []
        for orphan in orphans.values {
            guard let node = pipeline.plan.node(orphan.node) else { stale.append(orphan); continue }
            let fingerprint = (try? pipeline.codeFingerprint(node.stage.definition))?.fingerprint
            if node.params.canonical != orphan.paramsJSON || fingerprint != orphan.codeFingerprint { stale.append(orphan) }
        }
        drop(stale, why: "submitted by an earlier driver for other params or code")
    }

    /// At the end, the orphans of selected nodes that no node claimed are not needed: cancelled.
    func cancelUnclaimedOrphans() {
        drop(orphans.values.filter { selected.contains($0.node) }, why: "submitted by an earlier driver; not needed now")
    }

    private func drop(_ submissions: [JobSubmission], why: String) {
        guard !submissions.isEmpty else { return }
        let jobs = submissions.compactMap(\.jobID)
        client.cancel(jobs)
        for s in submissions {
            log("cancelled  \(s.node)  (slurm job \(s.jobID ?? "?"): \(why))")
            orphans[s.dir] = nil
        }
        try? manifest.removeSubmissions(dirs: submissions.map(\.dir))
    }

    // MARK: planning

    /// Settles what can be settled (fresh nodes) and submits every node that must run and can be queued:
    /// its upstream nodes are fresh, already ran, or have jobs in flight.
    func planPass() throws {
        var planned: [Planned] = []
        var plannedIDs = Set<String>()
        var plannedKeys = Set<String>()
        let failedSet = Set(failed)
        for node in pipeline.plan.nodes where !done.contains(node.id) && inFlight[node.id] == nil && !blocked.contains(node.id) {
            if node.upstream.contains(where: { blocked.contains($0) || failedSet.contains($0) }) {
                blocked.insert(node.id)
                continue
            }
            let open = node.upstream.filter { !done.contains($0) }
            if open.contains(where: { inFlight[$0] == nil && !plannedIDs.contains($0) }) { continue }
            let isSelected = selected.contains(node.id)
            if open.isEmpty {
                let e = try pipeline.evaluate(node, upstreamOutputs: outputs)
                switch e.state {
                case .waiting(let up):
                    if !isSelected {
                        done.insert(node.id)
                        continue
                    }
                    throw PipelineError("\(node.id): its input from \(up) is not available; run without --only to build it")
                case .fresh where !forced.contains(node.id):
                    outputs[node.id] = e.outputs
                    pipeline.linkOutputs(node.id, e.outputs)
                    if isSelected { log("fresh      \(node.id)") }
                    done.insert(node.id)
                    continue
                default:
                    break
                }
                if !isSelected {
                    if case .fresh = e.state { outputs[node.id] = e.outputs }
                    done.insert(node.id)
                    continue
                }
                let key = e.cacheKey!
                // The same computation is queued for another node; its result will make this one fresh.
                if plannedKeys.contains(key) || inFlight.values.contains(where: { $0.cacheKey == key }) { continue }
                plannedKeys.insert(key)
                var sources: [Planned.Source] = []
                for (i, (role, source)) in node.inputs.enumerated() {
                    let hash = e.inputs[i].hash
                    sources.append(.known(role: role, hash: hash, path: try inputPath(source, hash: hash)))
                }
                let reason: String
                if case .stale(let r) = e.state { reason = r } else { reason = "forced" }
                planned.append(Planned(node: node, sources: sources, cacheKey: key, reason: reason))
            } else {
                guard isSelected else { continue }
                var sources: [Planned.Source] = []
                for (role, source) in node.inputs {
                    switch source {
                    case .file(let path):
                        let url = pipeline.plan.spec.projectRoot.appendingPathComponent(path)
                        guard FileManager.default.fileExists(atPath: url.path) else {
                            throw PipelineSpecError(pipeline.plan.spec.url.lastPathComponent, "stages.\(node.stage.name).inputs.\(role)",
                                                    "input file '\(path)' does not exist")
                        }
                        sources.append(.known(role: role, hash: try pipeline.contentHasher.hash(of: url), path: url.path))
                    case let .output(up, file):
                        if done.contains(up) {
                            guard let ref = outputs[up]?[file] else {
                                throw PipelineError("\(node.id): its input from \(up) is not available; run without --only to build it")
                            }
                            sources.append(.known(role: role, hash: ref.hash, path: try inputPath(source, hash: ref.hash)))
                        } else {
                            sources.append(.pending(role: role, node: up, file: file))
                        }
                    }
                }
                planned.append(Planned(node: node, sources: sources, cacheKey: nil, reason: "after \(open.joined(separator: ", "))"))
            }
            plannedIDs.insert(node.id)
        }
        if !planned.isEmpty { try submit(planned) }
    }

    private func inputPath(_ source: NodeInput, hash: String) throws -> String {
        switch source {
        case .file(let path): return pipeline.plan.spec.projectRoot.appendingPathComponent(path).path
        case .output:
            let artifact = try manifest.artifact(hash: hash)
            return store.url(relative: artifact?.path ?? "").path
        }
    }

    // MARK: submitting

    /// Submits the planned nodes stage by stage (upstream first, so that every dependency has a job id):
    /// a node whose earlier submission is still in the manifest is re-attached to it; a node whose upstream
    /// job has already ended waits for that job to be collected (Slurm cannot depend on a job it forgot).
    func submit(_ planned: [Planned]) throws {
        var newJobs = Set<String>()
        var deferred = Set<String>()
        var known: [String: SlurmJobState] = [:]
        var asked = Set<String>()
        var unanswered = Set<String>()
        func hasEnded(_ job: String) -> Bool {
            if newJobs.contains(job) { return false }
            if !asked.contains(job) {
                let pending = inFlight.values.compactMap(\.submission.jobID).filter { !asked.contains($0) && !newJobs.contains($0) } + [job]
                if let states = client.states(of: pending) {
                    known.merge(states) { _, new in new }
                } else {
                    unanswered.formUnion(pending)
                }
                asked.formUnion(pending)
            }
            // Unknown to Slurm: it ended long ago. Not answered: assume it is still queued.
            if unanswered.contains(job) { return false }
            return known[job]?.hasEnded ?? true
        }

        var start = 0
        while start < planned.count {
            let stage = planned[start].node.stage.name
            var end = start
            while end < planned.count && planned[end].node.stage.name == stage { end += 1 }
            var group: [(planned: Planned, inputs: [JobInput], dependencies: [String])] = []
            for p in planned[start..<end] {
                var inputs: [JobInput] = []
                var dependencies: [String] = []
                var waits = false
                for source in p.sources {
                    switch source {
                    case let .known(role, hash, path):
                        inputs.append(.artifact(role: role, hash: hash, path: path))
                    case let .pending(role, up, file):
                        guard !deferred.contains(up), let flight = inFlight[up], let job = flight.submission.jobID else {
                            waits = true
                            continue
                        }
                        let path = store.url(relative: flight.submission.dir).appendingPathComponent("out").appendingPathComponent(file).path
                        inputs.append(.upstream(role: role, node: up, job: job, file: file, path: path))
                        if !dependencies.contains(job) { dependencies.append(job) }
                    }
                }
                if waits {
                    deferred.insert(p.node.id)
                    continue
                }
                if try reattach(p, inputs: inputs) { continue }
                if dependencies.contains(where: hasEnded) {
                    deferred.insert(p.node.id)
                    continue
                }
                group.append((p, inputs, dependencies))
            }
            if !group.isEmpty {
                for job in try submitStage(group) { newJobs.insert(job) }
            }
            start = end
        }
    }

    /// Claims an earlier driver's submission of this node with the same params, code and inputs.
    func reattach(_ p: Planned, inputs: [JobInput]) throws -> Bool {
        let fingerprint = try pipeline.codeFingerprint(p.node.stage.definition).fingerprint
        for orphan in orphans.values.sorted(by: { $0.submittedAt > $1.submittedAt }) where orphan.node == p.node.id {
            guard let job = orphan.jobID, orphan.paramsJSON == p.node.params.canonical, orphan.codeFingerprint == fingerprint,
                  let recorded = JobInput.list(orphan.inputsJSON), try inputsMatch(recorded, inputs) else { continue }
            orphans[orphan.dir] = nil
            inFlight[p.node.id] = Flight(submission: orphan, inputs: recorded, cacheKey: p.cacheKey)
            log("attached   \(p.node.id)  (slurm job \(job), submitted by an earlier driver)")
            return true
        }
        return false
    }

    /// Whether a recorded submission's inputs are the ones the node would be given now: the same artifacts,
    /// or the same upstream jobs, whether still in flight or already collected into those artifacts.
    func inputsMatch(_ recorded: [JobInput], _ now: [JobInput]) throws -> Bool {
        guard recorded.count == now.count else { return false }
        for (old, new) in zip(recorded, now) {
            switch (old, new) {
            case let (.artifact(r1, h1, _), .artifact(r2, h2, _)):
                guard r1 == r2 && h1 == h2 else { return false }
            case let (.upstream(r1, n1, j1, f1, _), .upstream(r2, n2, j2, f2, _)):
                guard r1 == r2 && n1 == n2 && j1 == j2 && f1 == f2 else { return false }
            case let (.upstream(r1, n1, j1, f1, _), .artifact(r2, h2, _)):
                guard r1 == r2, let run = try manifest.successfulRun(slurmJobID: j1), run.node == n1,
                      run.outputs.first(where: { $0.role == f1 })?.hash == h2 else { return false }
            default:
                return false
            }
        }
        return true
    }

    /// Submits one stage's nodes: one job array per run of sweep points that share their dependencies
    /// (`afterok` on common jobs, `aftercorr` when each point waits for the same task of one upstream
    /// array), otherwise one job per node. Returns the new job ids.
    func submitStage(_ group: [(planned: Planned, inputs: [JobInput], dependencies: [String])]) throws -> [String] {
        let stage = group[0].planned.node.stage
        let positions = Dictionary(uniqueKeysWithValues: pipeline.plan.nodes(matching: stage.name).enumerated().map { ($1.id, $0) })
        if group.count > 1 && maxArraySize == nil { maxArraySize = max(2, client.maxArraySize()) }
        let limit = maxArraySize ?? 1001
        var chunks: [Int: [(planned: Planned, inputs: [JobInput], dependencies: [String], index: Int)]] = [:]
        for item in group {
            let position = positions[item.planned.node.id] ?? 0
            chunks[position / limit, default: []].append((item.planned, item.inputs, item.dependencies, position % limit))
        }
        var jobs: [String] = []
        for chunkKey in chunks.keys.sorted() {
            let chunk = chunks[chunkKey]!
            if chunk.count > 1, let dependency = Self.arrayDependency(chunk.map { ($0.dependencies, $0.index) }, arrays: arrayTasks) {
                jobs += try submitUnit(stage: stage, items: chunk.map { ($0.planned, $0.inputs, $0.index) }, array: true,
                                       dependency: dependency)
            } else {
                for item in chunk {
                    let waits = Self.wholeArrays(item.dependencies, arrays: arrayTasks)
                    let dependency = waits.isEmpty ? "" : "afterok:" + waits.joined(separator: ":")
                    jobs += try submitUnit(stage: stage, items: [(item.planned, item.inputs, 0)], array: false, dependency: dependency)
                }
            }
        }
        return jobs
    }

    /// The dependency of a job array whose task `index` has `dependencies`, or nil when one array cannot
    /// express them: "" (none), `afterok:A:B` (all tasks wait for the same jobs), and `,aftercorr:C` added
    /// when each task also waits for the task of array C with its own index.
    static func arrayDependency(_ tasks: [(dependencies: [String], index: Int)], arrays: [String: [String]] = [:]) -> String? {
        var common = tasks[0].dependencies
        for task in tasks.dropFirst() { common = common.filter(task.dependencies.contains) }
        let residuals = tasks.map { task in task.dependencies.filter { !common.contains($0) } }
        var parts: [String] = []
        if !common.isEmpty { parts.append("afterok:" + wholeArrays(common, arrays: arrays).joined(separator: ":")) }
        if residuals.allSatisfy(\.isEmpty) { return parts.joined(separator: ",") }
        var array: String?
        for (task, residual) in zip(tasks, residuals) {
            guard residual.count == 1 else { return nil }
            let pieces = residual[0].split(separator: "_").map(String.init)
            guard pieces.count == 2, Int(pieces[1]) == task.index, array == nil || array == pieces[0] else { return nil }
            array = pieces[0]
        }
        parts.append("aftercorr:" + array!)
        return parts.joined(separator: ",")
    }

    /// `jobs` with every complete set of an array's tasks replaced by the array's id (`7_0:7_1` -> `7`).
    static func wholeArrays(_ jobs: [String], arrays: [String: [String]]) -> [String] {
        var result: [String] = []
        var replaced = Set<String>()
        for job in jobs {
            let base = String(job.split(separator: "_").first ?? "")
            if job.contains("_"), let tasks = arrays[base], tasks.allSatisfy(jobs.contains) {
                if replaced.insert(base).inserted { result.append(base) }
            } else {
                result.append(job)
            }
        }
        return result
    }

    static func token(of dir: String) -> String { ((dir as NSString).deletingLastPathComponent as NSString).lastPathComponent }
    static func comment(_ token: String) -> String { "pipeline:\(token)" }
    static func logPath(job: String) -> String { "logs/slurm/\(job).log" }

    /// Writes the scripts of one submission (a job, or an array with a task per item at its index), records
    /// it, calls sbatch and records the job ids.
    func submitUnit(stage: StageInstance, items: [(planned: Planned, inputs: [JobInput], index: Int)], array: Bool,
                    dependency: String) throws -> [String] {
        let fm = FileManager.default
        let definition = stage.definition
        if options.build && definition.isPackageProduct && !builtProducts.contains(definition.command) {
            try pipeline.buildProduct(definition.command)
            builtProducts.insert(definition.command)
        }
        let random = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let token = "\(ArtifactStore.safeName(stage.name))-\(random)"
        let unit = store.jobsDir.appendingPathComponent(token)
        let slurmLogs = store.logsDir.appendingPathComponent("slurm")
        try fm.createDirectory(at: slurmLogs, withIntermediateDirectories: true)
        let fingerprint = try pipeline.codeFingerprint(definition).fingerprint
        let resources = slurm.resources.overridden(by: stage.resources)
        // A job array asks for the most tasks any of its nodes runs (a `ranks` sweep's smaller points use fewer).
        let tasks = items.map { MPILaunch.ranks(of: $0.planned.node) }.max() ?? 1
        let root = pipeline.plan.spec.projectRoot
        var rows: [JobSubmission] = []
        let now = Date().timeIntervalSince1970
        for item in items {
            let dir = unit.appendingPathComponent("\(item.index)")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            let (stageExecutable, stageArguments) = pipeline.stageCommand(item.planned.node, inputPaths: item.inputs.map(\.path),
                                                                          out: dir.appendingPathComponent("out"))
            let (executable, arguments) = MPILaunch.slurm(item.planned.node, cpus: resources.cpus, executable: stageExecutable,
                                                          arguments: stageArguments)
            let scratch = item.planned.cacheKey.map { store.scratchDir(cacheKey: $0) }
                ?? store.scratchRoot.appendingPathComponent("job-\(token)-\(item.index)")
            let script = JobScript.node(id: item.planned.node.id, directory: dir, scratchBase: scratch, launcher: launcher,
                                        workingDirectory: root, executable: executable, arguments: arguments)
            try script.write(to: dir.appendingPathComponent("run.sh"), atomically: true, encoding: .utf8)
            rows.append(JobSubmission(dir: store.relativePath(of: dir), jobID: nil, node: item.planned.node.id, stage: stage.name,
                                      paramsJSON: item.planned.node.params.canonical, codeFingerprint: fingerprint,
                                      inputsJSON: JSONValue.array(item.inputs.map(\.json)).canonical,
                                      scratch: store.relativePath(of: scratch), logPath: nil, submittedAt: now))
        }
        let batch = unit.appendingPathComponent("batch.sh")
        try JobScript.batch(stage: stage.name, directory: unit, nodes: items.map(\.planned.node.id))
            .write(to: batch, atomically: true, encoding: .utf8)
        // Written first: a driver killed while sbatch runs finds the job again by its comment.
        try manifest.addSubmissions(rows)

        var arguments = ["--job-name=\(ArtifactStore.safeName(array ? stage.name : items[0].planned.node.id))",
                         "--chdir=\(root.path)", "--kill-on-invalid-dep=yes", "--comment=\(Self.comment(token))",
                         "--output=\(slurmLogs.path)/\(array ? "%A_%a" : "%j").log"]
        if array { arguments.append("--array=\(items.map { String($0.index) }.joined(separator: ","))") }
        if !dependency.isEmpty { arguments.append("--dependency=\(dependency)") }
        arguments += slurm.sbatchArguments
        arguments += resources.sbatchArguments
        if tasks > 1 { arguments.append("--ntasks=\(tasks)") }
        let id: String
        do {
            id = try client.submit(script: batch, arguments: arguments)
        } catch {
            try? manifest.removeSubmissions(dirs: rows.map(\.dir))
            try? fm.removeItem(at: unit)
            throw error
        }
        var ids: [(dir: String, jobID: String, logPath: String)] = []
        if array { arrayTasks[id] = items.map { "\(id)_\($0.index)" } }
        for (item, row) in zip(items, rows) {
            let job = array ? "\(id)_\(item.index)" : id
            var submission = row
            submission.jobID = job
            submission.logPath = Self.logPath(job: job)
            ids.append((row.dir, job, submission.logPath!))
            inFlight[item.planned.node.id] = Flight(submission: submission, inputs: item.inputs, cacheKey: item.planned.cacheKey)
            // `logs/NODE.log` is where people look: it points at the job's log.
            let link = store.logURL(node: item.planned.node.id)
            unlink(link.path)
            symlink("slurm/\(job).log", link.path)
            let waits = dependency.isEmpty ? "" : ", waits for \(dependency)"
            log("submitted  \(item.planned.node.id)  (slurm job \(job)\(waits); \(item.planned.reason))")
        }
        try manifest.setJobIDs(ids)
        return ids.map(\.jobID)
    }

    // MARK: waiting and collecting

    /// Polls the queue, backing off while nothing changes, until at least one job has ended; collects the
    /// ended ones in dependency order.
    func waitAndCollect(_ interrupts: InterruptWatch) throws {
        while true {
            if let signal = interrupts.signal { try stop(signal) }
            let ids = inFlight.values.compactMap(\.submission.jobID)
            guard let states = client.states(of: ids) else {
                // The controller does not answer (restarting, failing over): the jobs are where they were.
                if !controllerSilent { log("waiting    squeue does not answer; polling on") }
                controllerSilent = true
                interrupts.sleep(pollDelay)
                pollDelay = min(slurm.maxPollInterval, pollDelay * 1.5)
                continue
            }
            controllerSilent = false
            var ended: [String] = []
            for (node, var flight) in inFlight {
                let job = flight.submission.jobID!
                if let state = states[job] {
                    flight.unknownPolls = 0
                    if state.state == "RUNNING" && flight.lastState?.state != "RUNNING" {
                        log("running    \(node)  (slurm job \(job)\(state.nodes.map { " on \($0)" } ?? ""))")
                    }
                    flight.lastState = state
                    if state.hasEnded { ended.append(node) }
                } else {
                    // Slurm no longer knows the job (no accounting, or purged): its report says how it ended.
                    flight.unknownPolls += 1
                    if reportExists(flight) || flight.unknownPolls >= 3 { ended.append(node) }
                }
                inFlight[node] = flight
            }
            if !ended.isEmpty {
                let order = Dictionary(uniqueKeysWithValues: pipeline.plan.nodes.enumerated().map { ($1.id, $0) })
                for node in ended.sorted(by: { (order[$0] ?? 0) < (order[$1] ?? 0) }) { collect(node) }
                pollDelay = Self.firstPoll
                return
            }
            interrupts.sleep(pollDelay)
            pollDelay = min(slurm.maxPollInterval, pollDelay * 1.5)
        }
    }

    private func reportExists(_ flight: Flight) -> Bool {
        FileManager.default.fileExists(atPath: store.url(relative: flight.submission.dir).appendingPathComponent("report").path)
    }

    /// A job has ended: verify and record its run as the local executor does (or record why it failed).
    func collect(_ id: String) {
        guard let flight = inFlight.removeValue(forKey: id), let node = pipeline.plan.node(id) else { return }
        let submission = flight.submission
        let job = submission.jobID!
        let dir = store.url(relative: submission.dir)
        let state = flight.lastState
        let exit = (try? String(contentsOf: dir.appendingPathComponent("report"), encoding: .utf8)).flatMap(LocalExecutor.parseReport)
        let logURL = store.url(relative: submission.logPath ?? Self.logPath(job: job))

        func discard(_ why: String) {
            log("dropped    \(id)  (slurm job \(job): \(why))")
            try? manifest.removeSubmissions(dirs: [submission.dir])
            blocked.insert(id)
        }
        if cancelledByDriver.contains(job) {
            return discard("cancelled: an upstream node failed")
        }
        if state?.state == "CANCELLED" && exit == nil && (state?.reason ?? "").contains("Dependency") {
            return discard("never started: an upstream job failed")
        }
        guard node.upstream.allSatisfy({ done.contains($0) }) else {
            let missing = node.upstream.filter { !done.contains($0) }
            return discard("its input from \(missing.joined(separator: ", ")) was not recorded, so its result cannot be")
        }
        let e: NodeEvaluation
        do { e = try pipeline.evaluate(node, upstreamOutputs: outputs) } catch {
            return discard("cannot evaluate the node: \(error)")
        }
        let succeeded = (state == nil || state?.state == "COMPLETED") && exit?.status == 0
        let failure = succeeded ? nil : Self.failureMessage(job: job, state: state, exit: exit, log: logURL)
        do {
            let produced = try pipeline.record(node, evaluation: e, failure: failure, resources: exit?.resources,
                                               outDir: dir.appendingPathComponent("out"), startedAt: submission.submittedAt,
                                               log: logURL, keepOutputs: true, slurmJobID: job, submission: submission.dir)
            outputs[id] = produced
            pipeline.linkOutputs(id, produced)
            done.insert(id)
            ran.append(id)
            log("done       \(id)  (slurm job \(job)\(exit?.resources.map { ", \($0.summary)" } ?? ""))")
            if let scratch = usedScratch(dir) { try? FileManager.default.removeItem(at: scratch) }
        } catch {
            log("FAILED     \(id): \(error)")
            if !(error is PipelineError) {
                // The manifest could not record it; the submission stays, so a later driver collects it.
                abortError = abortError ?? error
            }
            failed.append(id)
            keepScratchForResume(dir, cacheKey: e.cacheKey, base: store.url(relative: submission.scratch))
            cancelDownstream(of: id)
        }
    }

    /// The scratch directory the job took (its `run.sh` wrote it down).
    private func usedScratch(_ dir: URL) -> URL? {
        guard let text = try? String(contentsOf: dir.appendingPathComponent("scratch"), encoding: .utf8) else { return nil }
        let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? nil : URL(fileURLWithPath: path)
    }

    /// A failed job queued before its cache key was known kept its resumable state under a job name: it moves
    /// to the cache key's directory, where the next run of the node looks for it.
    private func keepScratchForResume(_ dir: URL, cacheKey: String?, base: URL) {
        guard let cacheKey, let used = usedScratch(dir) else { return }
        let target = store.scratchDir(cacheKey: cacheKey)
        guard used.standardizedFileURL.path != target.standardizedFileURL.path,
              !FileManager.default.fileExists(atPath: target.path), !ScratchDirectory.isHeld(used) else { return }
        try? FileManager.default.moveItem(at: used, to: target)
    }

    /// The queued jobs downstream of a failed node cannot have valid inputs: cancelled (Slurm cancels those
    /// of a job that exited non-zero by itself; this also covers a job whose outputs did not verify).
    func cancelDownstream(of id: String) {
        let downstream = pipeline.plan.downstream(of: [id]).subtracting([id])
        let jobs = downstream.compactMap { inFlight[$0]?.submission.jobID }
        guard !jobs.isEmpty else { return }
        cancelledByDriver.formUnion(jobs)
        client.cancel(jobs)
    }

    /// Why a job failed, for the manifest and `status`: Slurm's state and reason, the stage's error line, the
    /// log, and the log's last lines.
    static func failureMessage(job: String, state: SlurmJobState?, exit: StageExit?, log: URL) -> String {
        var how: String
        if let state, state.state != "COMPLETED" {
            how = "slurm job \(job) \(state.state)"
            if let reason = state.reason, !reason.isEmpty, reason != "None" { how += " (\(reason))" }
        } else if state == nil && exit == nil {
            how = "slurm job \(job) ended without a report and Slurm has no record of it"
        } else {
            how = "slurm job \(job)"
        }
        if let status = exit?.status, status != 0 {
            how += status < 0 ? ", killed by signal \(-status)" : ", exit \(status)"
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        var errorLine = ErrorLine()
        errorLine.feed(Data(text.utf8))
        errorLine.finish()
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // The last lines, less the error line already quoted.
        let tail = lines.suffix(3).map { String($0.prefix(200)) }.filter { $0 != errorLine.best }
        var message = how + (errorLine.best.map { ": \($0)" } ?? "") + " (log: \(log.path))"
        if !tail.isEmpty { message += "; log tail: " + tail.joined(separator: " | ") }
        return message
    }

    // MARK: stopping

    /// SIGINT or SIGTERM: cancel every job of this driver, forget them, and stop.
    func stop(_ signal: Int32) throws -> Never {
        let jobs = inFlight.values.compactMap(\.submission.jobID)
        client.cancel(jobs)
        try? manifest.removeSubmissions(dirs: inFlight.values.map(\.submission.dir))
        inFlight = [:]
        pipeline.removeUnusedJobDirectories()
        try? pipeline.contentHasher.flush()
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
        throw PipelineError("stopped by \(name): cancelled \(jobs.count) Slurm job(s)\(jobs.isEmpty ? "" : " (\(jobs.sorted().joined(separator: " ")))"); "
                            + "results recorded so far are kept")
    }
}

extension Pipeline {
    /// Removes the job directories no recorded submission needs: neither its own nor one whose outputs a
    /// queued job reads.
    func removeUnusedJobDirectories() {
        let fm = FileManager.default
        let live = (try? manifest.submissions()) ?? []
        var keep = Set(live.map(\.dir))
        for submission in live {
            for case let .upstream(_, _, _, _, path) in JobInput.list(submission.inputsJSON) ?? [] {
                let dir = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent()
                keep.insert(store.relativePath(of: dir))
            }
        }
        for token in (try? fm.contentsOfDirectory(atPath: store.jobsDir.path)) ?? [] {
            let unit = store.jobsDir.appendingPathComponent(token)
            var remaining = 0
            for entry in (try? fm.contentsOfDirectory(atPath: unit.path)) ?? [] where Int(entry) != nil {
                if keep.contains("jobs/\(token)/\(entry)") {
                    remaining += 1
                } else {
                    try? fm.removeItem(at: unit.appendingPathComponent(entry))
                }
            }
            if remaining == 0 { try? fm.removeItem(at: unit) }
        }
    }

    /// The jobs submitted to Slurm and not yet collected, newest per node (for `status`).
    public func submittedJobs() throws -> [String: JobSubmission] {
        var byNode: [String: JobSubmission] = [:]
        for submission in try manifest.submissions() { byNode[submission.node] = submission }
        return byNode
    }
}

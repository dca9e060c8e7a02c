import ArgumentParser
import Foundation
import PipelineDriver

struct Location: ParsableArguments {
    @Option(name: .customLong("pipeline"), help: "The pipeline file.")
    var pipelineFile = "pipeline.json"

    @Option(help: "The artifact root (content-addressed store and manifest).")
    var artifacts = "artifacts"

    func open() throws -> Pipeline {
        try Pipeline(pipelineFile: URL(fileURLWithPath: pipelineFile), artifacts: URL(fileURLWithPath: artifacts))
    }
}

@main
struct PipelineCommand: ParsableCommand {
    static func main() {
        // Line-buffered stdout, so the driver's lines and the stages' (streamed to stderr) interleave in order.
        setvbuf(stdout, nil, _IOLBF, 0)
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Runs the stage pipeline of pipeline.json, rerunning only what changed.",
        subcommands: [Run.self, Status.self, Dag.self, LineageCommand.self, Runs.self, GC.self, Verify.self],
        defaultSubcommand: Run.self)
}

/// Prints a failure as one line and exits non-zero.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run every stale stage in dependency order.")
    @OptionGroup var location: Location
    @Option(help: "Run only this stage or node (repeatable); its inputs must be up to date.")
    var only: [String] = []
    @Option(help: "Rerun this stage or node even if it is fresh (repeatable).")
    var force: [String] = []
    @Flag(help: "Print what would run, and why, without running it.")
    var dryRun = false
    @Option(help: "How many independent stages may run at once.")
    var jobs = 1
    @Flag(help: "Do not build the package's stage executables before running them.")
    var noBuild = false
    @Option(help: "Where stages run: 'local' (child processes) or 'slurm' (one Slurm job per stale node, queued with their dependencies).")
    var executor = "local"
    @Option(help: "Slurm: the partition of every job (a stage's resources.partition overrides it).")
    var partition: String?
    @Option(help: "Slurm: the time limit of every job, e.g. 01:00:00 (a stage's resources.time overrides it).")
    var timeLimit: String?
    @Option(help: "Slurm: CPUs per job (a stage's resources.cpus overrides it).")
    var cpusPerTask: Int?
    @Option(help: "Slurm: memory per job, e.g. 4G (a stage's resources.mem overrides it).")
    var mem: String?
    @Option(help: ArgumentHelp("Slurm: one more sbatch option, passed on as it is (repeatable), e.g. --sbatch-arg=--account=lab.",
                               valueName: "option"))
    var sbatchArg: [String] = []

    func validate() throws {
        guard executor == "local" || executor == "slurm" else {
            throw ValidationError("--executor must be 'local' or 'slurm', not '\(executor)'")
        }
        if executor == "local" {
            let given = [("--partition", partition != nil), ("--time-limit", timeLimit != nil), ("--cpus-per-task", cpusPerTask != nil),
                         ("--mem", mem != nil), ("--sbatch-arg", !sbatchArg.isEmpty)]
            if let (name, _) = given.first(where: { $0.1 }) { throw ValidationError("\(name) needs --executor slurm") }
        }
        if let partition, let problem = StageResources.partitionProblem(partition) { throw ValidationError("--partition: \(problem)") }
        if let timeLimit, let problem = StageResources.timeProblem(timeLimit) { throw ValidationError("--time-limit: \(problem)") }
        if let mem, let problem = StageResources.memoryProblem(mem) { throw ValidationError("--mem: \(problem)") }
        if let cpusPerTask, cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            var options = RunOptions()
            if executor == "slurm" {
                var slurm = SlurmOptions()
                slurm.resources = StageResources(cpus: cpusPerTask, mem: mem, time: timeLimit, partition: partition)
                slurm.sbatchArguments = sbatchArg
                options.slurm = slurm
                // Before anything else, so that a machine without Slurm says so in one line.
                if !dryRun { try SlurmClient().checkReady() }
            }
            let pipeline = try location.open()
            options.only = only
            options.force = force
            options.dryRun = dryRun
            options.jobs = jobs
            options.build = !noBuild
            let ran = try pipeline.run(options)
            if !dryRun { print(ran.isEmpty ? "nothing to do: every stage is fresh" : "ran \(ran.count) stage(s)") }
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each stage as fresh or stale, and why; for a fresh one, what the run that made its outputs used; "
            + "for one whose Slurm job is queued or running, the job.")
    @OptionGroup var location: Location

    func run() throws {
        try reportingErrors {
            let pipeline = try location.open()
            let rows = try pipeline.status()
            let jobs = try pipeline.submittedJobs()
            let ids = jobs.values.compactMap(\.jobID)
            // Without squeue (not on a cluster node) the manifest still says which jobs were submitted.
            let states = ids.isEmpty || SlurmClient.which("squeue") == nil ? [:] : SlurmClient().states(of: ids) ?? [:]
            let width = rows.map(\.node.count).max() ?? 0
            for e in rows {
                let name = e.node.padding(toLength: width, withPad: " ", startingAt: 0)
                if let job = jobs[e.node] {
                    let id = job.jobID ?? "(id not yet known)"
                    if let state = job.jobID.flatMap({ states[$0] }) {
                        let word = state.isPending ? "queued " : state.hasEnded ? "ended  " : "running"
                        print("\(name)  \(word)  slurm job \(id): \(state.summary)\(state.hasEnded ? " (not yet collected: run again)" : "")")
                    } else {
                        print("\(name)  submitted  slurm job \(id)")
                    }
                    continue
                }
                switch e.state {
                case .fresh(let id): print("\(name)  fresh  (run \(id)\(e.resources.map { ", \($0.summary)" } ?? ""))")
                case .stale(let reason): print("\(name)  stale  \(reason)")
                case .waiting(let up): print("\(name)  stale  upstream \(up) must run first")
                }
            }
        }
    }
}

struct Dag: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the stage graph.")
    @OptionGroup var location: Location
    @Flag(help: "Graphviz dot output.")
    var dot = false

    func run() throws {
        try reportingErrors { print(try location.open().dag(dot: dot)) }
    }
}

struct LineageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "Show which runs, params, code and inputs produced an artifact or a stage's output.")
    @OptionGroup var location: Location
    @Argument(help: "A stage or node name, an artifact hash (prefix), or a file in the store.")
    var target: String

    func run() throws {
        try reportingErrors { print(try location.open().lineage(of: target)) }
    }
}

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recent runs, newest first, with their wall time, CPU time and peak RSS.")
    @OptionGroup var location: Location
    @Option(help: "How many runs to show.")
    var limit = 20
    @Option(help: "Only runs of this stage or node, or of nodes matching this glob (e.g. 'train@*seed=2*').")
    var node: String?

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            for line in try location.open().runsTable(limit: limit, node: node) { print(line) }
        }
    }
}

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Delete failed runs, scratch files and artifacts no run references.")
    @OptionGroup var location: Location
    @Flag(help: "Also forget cached runs that are no stage's current result, and their artifacts.")
    var workspace = false
    @Flag(help: "Only count what would be removed.")
    var dryRun = false

    func run() throws {
        try reportingErrors {
            for line in try location.open().gc(workspace: workspace, dryRun: dryRun) { print(line) }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-read every object in the store, ignoring the cached file states; list the damaged ones.",
        discussion: "Exits non-zero when an object is damaged and was not removed.")
    @OptionGroup var location: Location
    @Flag(help: "Remove damaged objects, so that the next run rebuilds them.")
    var repair = false

    func run() throws {
        try reportingErrors {
            let result = try location.open().verify(repair: repair)
            for line in result.lines { print(line) }
            if result.damaged > 0 && !result.repaired {
                throw PipelineError("\(result.damaged) damaged object(s) in the store; `pipeline verify --repair` removes them "
                                    + "and the next `pipeline run` rebuilds them")
            }
        }
    }
}

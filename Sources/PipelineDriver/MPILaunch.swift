import Foundation

/// How the driver starts a node that asks for several MPI processes: a node whose params hold `ranks` N > 1
/// (the train stage's data-parallel setting). Locally its command runs under `mpirun -np N`; in a Slurm job
/// under `srun --ntasks=N`, in an allocation of N tasks. The stage's own command line is unchanged, so a
/// rank sees exactly the arguments a single process would.
enum MPILaunch {
    /// The node's `ranks` param; 1 when the stage has none.
    static func ranks(of node: PlanNode) -> Int {
        node.params.objectValue?["ranks"]?.intValue ?? 1
    }

    /// `executable arguments` under a local `mpirun -np ranks`. Ranks may outnumber the cores (each then gets
    /// less of the machine, but the run is the same), and are not pinned to cores, so that each one's kernel
    /// threads (the stage's `threads`) can spread; as root, mpirun must be told that is intended.
    static func local(_ node: PlanNode, executable: URL, arguments: [String]) throws -> (executable: URL, arguments: [String]) {
        let ranks = ranks(of: node)
        guard ranks > 1 else { return (executable, arguments) }
        guard let mpirun = SlurmClient.which("mpirun") else {
            throw PipelineError("\(node.id): ranks \(ranks) needs mpirun on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev)")
        }
        let root = geteuid() == 0 ? ["--allow-run-as-root"] : []
        return (mpirun, ["-np", "\(ranks)", "--oversubscribe", "--bind-to", "none"] + root + [executable.path] + arguments)
    }

    /// `executable arguments` as an `srun` step of `ranks` tasks inside the node's Slurm job (which asked for
    /// them with `--ntasks`), each task with `cpus` CPUs when set. srun wires the tasks up through the
    /// cluster's MPI plugin (its `MpiDefault`, or `SLURM_MPI_TYPE` in the driver's environment, which jobs
    /// inherit); srun is looked up on the compute node's PATH.
    static func slurm(_ node: PlanNode, cpus: Int?, executable: URL, arguments: [String]) -> (executable: URL, arguments: [String]) {
        let ranks = ranks(of: node)
        guard ranks > 1 else { return (executable, arguments) }
        let perTask = cpus.map { ["--cpus-per-task=\($0)"] } ?? []
        return (URL(fileURLWithPath: "/usr/bin/env"),
                ["srun", "--ntasks=\(ranks)", "--kill-on-bad-exit=1"] + perTask + [executable.path] + arguments)
    }
}

import Foundation

/// The shell scripts of a Slurm submission. A submission (one job, or one job array for the points of a
/// sweep) has a directory `jobs/TOKEN/` with `batch.sh`, the script sbatch runs, and one directory per
/// node, `jobs/TOKEN/INDEX/` (INDEX is the array task id, 0 for a single job), with `run.sh`: the node's
/// stage command line, exactly as the local executor runs it (through `stage-launcher`, in the project
/// root, `--out jobs/TOKEN/INDEX/out`), which writes the launcher's report (exit status, wall time, CPU
/// time, peak RSS) to `report` and the scratch directory it took to `scratch`.
enum JobScript {
    /// Quotes a word for bash.
    static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `run.sh` of one node. The scratch directory is claimed the way the local driver claims it (an
    /// exclusive flock on its `.lock`, held by descriptor 4 for as long as the stage's processes live;
    /// `BASE`, else `BASE.1`, ...), but on the node that runs the job.
    static func node(id: String, directory: URL, scratchBase: URL, launcher: URL, workingDirectory: URL,
                     executable: URL, arguments: [String]) -> String {
        let candidates = (0..<ScratchDirectory.attempts).map { i in
            quote(i == 0 ? scratchBase.path : scratchBase.path + ".\(i)")
        }
        let command = ([launcher.path, workingDirectory.path, executable.path] + arguments).map(quote).joined(separator: " ")
        return """
            #!/usr/bin/env bash
            # Node \(id.replacingOccurrences(of: "\n", with: " ")), as `pipeline run --executor slurm` submitted it.
            set -u
            job=\(quote(directory.path))
            scratch=""
            for candidate in \(candidates.joined(separator: " ")); do
              mkdir -p "$candidate" 2>/dev/null || continue
              exec 4>>"$candidate/.lock" || continue
              if flock -n 4; then scratch="$candidate"; break; fi
              exec 4>&-
            done
            if [ -z "$scratch" ]; then
              echo "error: the scratch directories of this stage are held by live processes of earlier runs; stop them, then run again" >&2
              exit 75
            fi
            printf '%s\\n' "$scratch" > "$job/scratch"
            export \(Pipeline.scratchVariable)="$scratch"
            rm -rf "$job/out" "$job/report" "$job/report.partial"
            mkdir -p "$job/out"
            \(command) 3>"$job/report.partial" </dev/null
            status=$?
            mv -f "$job/report.partial" "$job/report"
            exit "$status"

            """
    }

    /// `batch.sh` of a submission: runs the `run.sh` of the array task (or of index 0 for a single job).
    static func batch(stage: String, directory: URL, nodes: [String]) -> String {
        """
        #!/usr/bin/env bash
        # Stage \(stage): \(nodes.count == 1 ? "node \(nodes[0])" : "\(nodes.count) nodes, one per array task").
        exec bash \(quote(directory.path))/"${SLURM_ARRAY_TASK_ID:-0}"/run.sh

        """
    }
}

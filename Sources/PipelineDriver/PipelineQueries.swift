import Foundation
import Lineage
import Shards

extension Pipeline {
    // MARK: dag

    /// The graph as text lines (`a -> b  [file as role]`), or as Graphviz dot.
    public func dag(dot: Bool) -> String {
        var lines: [String] = []
        if dot { lines.append("digraph pipeline {") }
        for node in plan.nodes {
            if dot { lines.append("  \"\(node.id)\";") }
            for (role, source) in node.inputs {
                switch source {
                case let .output(up, file):
                    lines.append(dot ? "  \"\(up)\" -> \"\(node.id)\" [label=\"\(file)\"];" : "\(up) -> \(node.id)  [\(file) as \(role)]")
                case let .file(path):
                    lines.append(dot ? "  \"file:\(path)\" -> \"\(node.id)\";" : "file:\(path) -> \(node.id)  [as \(role)]")
                }
            }
            if node.inputs.isEmpty && !dot { lines.append("\(node.id)  (no inputs)") }
        }
        if dot { lines.append("}") }
        return lines.joined(separator: "\n")
    }

    // MARK: lineage

    /// The upstream graph of an artifact (hash, hash prefix or path in the store) or of a stage's current
    /// run: for each run its stage, params, code and inputs, recursively down to the first stage.
    public func lineage(of target: String) throws -> String {
        let run: RunRecord
        var header = ""
        if let nodes = Optional(plan.nodes(matching: target)), !nodes.isEmpty {
            var found: [RunRecord] = []
            for n in nodes {
                if let r = try manifest.latestRun(node: n.id, succeededOnly: true) { found.append(r) }
            }
            guard !found.isEmpty else { throw PipelineError("\(target) has no successful run yet") }
            if found.count > 1 {
                return try found.map { try lineage(of: String($0.outputs.first!.hash)) }.joined(separator: "\n\n")
            }
            run = found[0]
        } else {
            let hash = try resolveArtifact(target)
            guard let producer = try manifest.producer(of: hash) else {
                throw PipelineError("artifact \(hash.prefix(12)) has no recorded producer")
            }
            let role = producer.outputs.first { $0.hash == hash }?.role ?? "?"
            header = "\(role) \(hash.prefix(12))\n"
            run = producer
        }
        var lines: [String] = []
        var seen = Set<Int64>()
        try describe(run, depth: 0, lines: &lines, seen: &seen)
        return header + lines.joined(separator: "\n")
    }

    private func describe(_ run: RunRecord, depth: Int, lines: inout [String], seen: inout Set<Int64>) throws {
        let pad = String(repeating: "  ", count: depth)
        let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: run.finishedAt ?? run.startedAt))
        if seen.contains(run.id!) {
            lines.append("\(pad)<- \(run.node) (run \(run.id!), shown above)")
            return
        }
        seen.insert(run.id!)
        let used = run.resources.map { ", \($0.summary)" } ?? ""
        let job = run.slurmJobID.map { ", slurm job \($0)" } ?? ""
        lines.append("\(pad)<- \(run.node) (run \(run.id!), \(when), code \(run.codeFingerprint.prefix(12))\(used)\(job))")
        lines.append("\(pad)   params \(run.paramsJSON)")
        for input in run.inputs {
            if let producer = try manifest.producer(of: input.hash) {
                let file = producer.outputs.first { $0.hash == input.hash }?.role ?? "?"
                lines.append("\(pad)   \(input.role): \(file) \(input.hash.prefix(12))")
                try describe(producer, depth: depth + 2, lines: &lines, seen: &seen)
            } else {
                lines.append("\(pad)   \(input.role): external file \(input.hash.prefix(12))")
            }
        }
    }

    func resolveArtifact(_ target: String) throws -> String {
        let url = URL(fileURLWithPath: target)
        if FileManager.default.fileExists(atPath: url.path) {
            let resolved = url.resolvingSymlinksInPath().lastPathComponent
            let stem = resolved.split(separator: ".").first.map(String.init) ?? resolved
            if try manifest.artifact(hash: stem) != nil { return stem }
            return try ContentHasher.computeHash(of: url)
        }
        let matches = try manifest.artifacts(hashPrefix: target.lowercased())
        guard !matches.isEmpty else { throw PipelineError("no stage, node, artifact or file named '\(target)'") }
        guard matches.count == 1 else { throw PipelineError("'\(target)' matches \(matches.count) artifacts; give more of the hash") }
        return matches[0].hash
    }

    // MARK: runs

    /// The most recently started runs, newest first, as a table for people: a header, then one line per run
    /// with its id, node, status, wall time, CPU time, peak RSS and start time (`-` where a run has no
    /// record of what it used), and the Slurm job when any of them ran as one. `node` keeps a stage's runs, a
    /// node's, or those whose node matches a glob.
    public func runsTable(limit: Int, node: String? = nil) throws -> [String] {
        let runs = try manifest.recentRuns(limit: limit, node: node)
        guard !runs.isEmpty else { return [node.map { "no recorded runs match '\($0)'" } ?? "no recorded runs"] }
        let formatter = ISO8601DateFormatter()
        let jobs = runs.contains { $0.slurmJobID != nil }
        let rows: [[String]] = [["RUN", "NODE", "STATUS", "WALL", "CPU", "PEAK RSS", "STARTED"] + (jobs ? ["SLURM JOB"] : [])] + runs.map { run in
            let used = run.resources
            return [String(run.id!), run.node, run.status,
                    used.map { RunResources.duration($0.wallSeconds) } ?? "-",
                    used.map { RunResources.duration($0.cpuSeconds) } ?? "-",
                    used.map { RunResources.size($0.peakRSSBytes) } ?? "-",
                    formatter.string(from: Date(timeIntervalSince1970: run.startedAt))]
                + (jobs ? [run.slurmJobID ?? "-"] : [])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max()! }
        // Numbers align on the right, names on the left.
        let rightAligned: Set<Int> = [0, 3, 4, 5]
        let last = rows[0].count - 1
        return rows.map { row in
            row.enumerated().map { column, cell in
                let fill = String(repeating: " ", count: widths[column] - cell.count)
                if rightAligned.contains(column) { return fill + cell }
                return column == last ? cell : cell + fill
            }.joined(separator: "  ")
        }
    }

    // MARK: gc

    /// Removes scratch files, failed runs, and files in the store that no run references, and anything in
    /// the store that is not a regular file (no store write makes one, so it is damage: removing it makes
    /// its producer run again). With `workspace`, also forgets successful runs that are not the current
    /// result of any node (the run cache of earlier parameter values) and deletes their artifacts and the
    /// resumable state of unfinished runs, except a scratch directory a live process still holds.
    /// Returns what was removed, for people.
    public func gc(workspace: Bool, dryRun: Bool) throws -> [String] {
        let lock = dryRun ? nil : try PipelineLock(root: store.root, onWait: log)
        defer { withExtendedLifetime(lock) {} }
        var report: [String] = []
        let runs = try manifest.allRuns()
        var drop = runs.filter { $0.status != RunRecord.succeeded }.compactMap(\.id)
        if workspace {
            var keep = Set<Int64>()
            for e in try status() { if case .fresh(let id) = e.state { keep.insert(id) } }
            for node in plan.nodes {
                if let r = try manifest.latestRun(node: node.id, succeededOnly: true) { keep.insert(r.id!) }
            }
            drop += runs.filter { $0.status == RunRecord.succeeded && !keep.contains($0.id!) }.compactMap(\.id)
        }
        report.append("runs to forget: \(drop.count)")
        if dryRun { return report }
        let orphans = try manifest.deleteRuns(ids: drop)
        let referenced = Set(try manifest.allArtifacts().map(\.path))
        var removedFiles = 0
        var freed = 0
        let fm = FileManager.default
        for entry in store.objectEntries() {
            if entry.kind != S_IFREG {
                do {
                    try ArtifactStore.remove(entry.url, what: "a store object that is not a regular file")
                    report.append("removed \(entry.url.path): not a regular file")
                } catch {
                    report.append("\(error)")
                }
                continue
            }
            guard !referenced.contains(entry.relative) else { continue }
            freed += (try? fm.attributesOfItem(atPath: entry.url.path)[.size] as? NSNumber)?.intValue ?? 0
            try? fm.removeItem(at: entry.url)
            removedFiles += 1
        }
        try? fm.removeItem(at: store.tmpDir)
        // Job directories of Slurm jobs that were collected or cancelled; those of jobs still recorded stay.
        removeUnusedJobDirectories()
        if workspace {
            // The scratch directories of Slurm jobs not yet collected may be in use on another machine.
            let submitted = try manifest.submissions().map { ($0.scratch as NSString).lastPathComponent }
            // Resumable state of runs that never finished; the next run of such a node starts over.
            for name in (try? fm.contentsOfDirectory(atPath: store.scratchRoot.path)) ?? [] {
                let scratch = store.scratchRoot.appendingPathComponent(name)
                if submitted.contains(where: { name == $0 || name.hasPrefix($0 + ".") }) {
                    report.append("kept \(scratch.path): a Slurm job not yet collected may use it")
                } else if ScratchDirectory.isHeld(scratch) {
                    report.append("kept \(scratch.path): a process of an earlier run still uses it")
                } else {
                    try? fm.removeItem(at: scratch)
                }
            }
        }
        report.append("artifacts forgotten: \(orphans.count); files removed: \(removedFiles) (\(freed) bytes)")
        return report
    }
}

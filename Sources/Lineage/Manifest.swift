import Foundation
import GRDB

/// One artifact reference of a run: its content hash and the role it played (input name or output file).
public struct ArtifactRef: Equatable, Hashable, Sendable {
    public let role: String
    public let hash: String
    public init(role: String, hash: String) {
        self.role = role
        self.hash = hash
    }
}

/// A row of `artifacts`: a content-addressed file under the artifact root.
public struct ArtifactRecord: Equatable, Sendable {
    public let hash: String
    public let kind: String
    /// Relative to the artifact root, so the root can move (ARCHITECTURE.md section 12).
    public let path: String
    public let bytes: Int
    public let createdAt: Double
    public init(hash: String, kind: String, path: String, bytes: Int, createdAt: Double) {
        self.hash = hash
        self.kind = kind
        self.path = path
        self.bytes = bytes
        self.createdAt = createdAt
    }
}

/// A stage run as the manifest records it.
public struct RunRecord: Equatable, Sendable {
    public var id: Int64?
    /// The stage's name in pipeline.json.
    public var stage: String
    /// The stage and its sweep point, e.g. `train@model=td-detr`; equal to `stage` without a matrix.
    public var node: String
    public var cacheKey: String
    public var paramsJSON: String
    public var codeFingerprint: String
    /// Canonical JSON of {code path: content hash} behind the fingerprint.
    public var codePathsJSON: String
    public var startedAt: Double
    public var finishedAt: Double?
    public var status: String
    public var error: String?
    /// What the stage's child process used; nil when it never started or the run predates schema version 4.
    public var resources: RunResources?
    public var inputs: [ArtifactRef]
    public var outputs: [ArtifactRef]
    /// The Slurm job that ran the stage (`123`, or `123_4` for a task of a job array); nil for a local run.
    public var slurmJobID: String?
    /// The stage's log, relative to the artifact root; nil for runs recorded before schema version 5.
    public var logPath: String?

    public static let succeeded = "ok"
    public static let failed = "failed"

    public init(id: Int64? = nil, stage: String, node: String, cacheKey: String, paramsJSON: String,
                codeFingerprint: String, codePathsJSON: String = "{}", startedAt: Double, finishedAt: Double?, status: String,
                error: String?, resources: RunResources? = nil, inputs: [ArtifactRef], outputs: [ArtifactRef],
                slurmJobID: String? = nil, logPath: String? = nil) {
        self.id = id
        self.stage = stage
        self.node = node
        self.cacheKey = cacheKey
        self.paramsJSON = paramsJSON
        self.codeFingerprint = codeFingerprint
        self.codePathsJSON = codePathsJSON
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
        self.error = error
        self.resources = resources
        self.inputs = inputs
        self.outputs = outputs
        self.slurmJobID = slurmJobID
        self.logPath = logPath
    }
}

/// A stage run handed to a cluster scheduler (Slurm) and not yet collected: the driver writes one before it
/// submits the job and deletes it in the transaction that records the run, so a driver restarted while the
/// job is queued or running finds it here and waits for it instead of submitting it again.
public struct JobSubmission: Equatable, Sendable {
    /// The node's job directory, relative to the artifact root (`jobs/TOKEN/INDEX`): its command line,
    /// its output directory and the launcher's report. Unique per submitted node.
    public var dir: String
    /// Slurm's id (`123`, or `123_4` for a task of a job array); nil from writing the row until sbatch answers.
    public var jobID: String?
    public var node: String
    public var stage: String
    public var paramsJSON: String
    public var codeFingerprint: String
    /// Canonical JSON list of the inputs the job reads: `{"role", "hash"}` for an artifact of the store, or
    /// `{"role", "node", "job", "file", "path"}` for an output of an upstream job that had not finished.
    public var inputsJSON: String
    /// The scratch directory the job is to use, relative to the artifact root.
    public var scratch: String
    /// The job's log (Slurm's output file), relative to the artifact root; nil until the job id is known.
    public var logPath: String?
    public var submittedAt: Double

    public init(dir: String, jobID: String?, node: String, stage: String, paramsJSON: String, codeFingerprint: String,
                inputsJSON: String, scratch: String, logPath: String?, submittedAt: Double) {
        self.dir = dir
        self.jobID = jobID
        self.node = node
        self.stage = stage
        self.paramsJSON = paramsJSON
        self.codeFingerprint = codeFingerprint
        self.inputsJSON = inputsJSON
        self.scratch = scratch
        self.logPath = logPath
        self.submittedAt = submittedAt
    }
}

/// The SQLite lineage manifest (ARCHITECTURE.md section 5), in WAL mode so readers never block the driver.
public final class Manifest: @unchecked Sendable {
    public let url: URL
    let pool: DatabasePool

    public init(url: URL) throws {
        self.url = url
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(30)
        config.foreignKeysEnabled = true
        do {
            pool = try Self.openPool(path: url.path, configuration: config)
            // IMMEDIATE: two drivers opening a new manifest at once must not both read version 0 and migrate.
            try pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    try Schema.migrate(db)
                    return .commit
                }
            }
        } catch let error as ManifestError {
            throw ManifestError("\(url.path): \(error.description)")
        } catch {
            throw ManifestError("\(url.path): cannot open the manifest (\(error))")
        }
    }

    /// Opens the pool, retrying while another process holds the lock: switching a new database to WAL
    /// fails at once with SQLITE_BUSY (the busy timeout does not cover it) when a second driver starts
    /// at the same moment.
    static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        var delay = 0.01
        let deadline = Date().addingTimeInterval(30)
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && Date() < deadline {
                Thread.sleep(forTimeInterval: delay)
                delay = min(0.2, delay * 2)
            }
        }
    }

    public var schemaVersion: Int {
        get throws { try pool.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 } }
    }

    // MARK: recording

    /// Records a finished run with its artifacts in one transaction; returns the run id. `collecting` names
    /// the job submission (its `dir`) the run comes from, deleted in the same transaction, so that a run is
    /// recorded once whatever happens to the driver.
    @discardableResult
    public func record(_ run: RunRecord, artifacts: [ArtifactRecord], collecting submission: String? = nil) throws -> Int64 {
        try pool.write { db in
            if let submission { try db.execute(sql: "DELETE FROM submitted_jobs WHERE dir = ?", arguments: [submission]) }
            for a in artifacts {
                try db.execute(sql: """
                    INSERT INTO artifacts(hash, kind, path, bytes, created_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(hash) DO UPDATE SET path = excluded.path, bytes = excluded.bytes
                    """, arguments: [a.hash, a.kind, a.path, a.bytes, a.createdAt])
            }
            try db.execute(sql: """
                INSERT INTO runs(stage, node, cache_key, params_json, code_fingerprint, code_paths_json, started_at, finished_at,
                                 status, error, wall_seconds, cpu_seconds, peak_rss_bytes, slurm_job_id, log_path)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run.stage, run.node, run.cacheKey, run.paramsJSON, run.codeFingerprint, run.codePathsJSON,
                                 run.startedAt, run.finishedAt, run.status, run.error, run.resources?.wallSeconds,
                                 run.resources?.cpuSeconds, run.resources?.peakRSSBytes, run.slurmJobID, run.logPath])
            let id = db.lastInsertedRowID
            for input in run.inputs {
                try db.execute(sql: "INSERT INTO run_inputs(run_id, artifact_hash, role) VALUES (?, ?, ?)",
                               arguments: [id, input.hash, input.role])
            }
            for output in run.outputs {
                try db.execute(sql: "INSERT INTO run_outputs(run_id, artifact_hash, role) VALUES (?, ?, ?)",
                               arguments: [id, output.hash, output.role])
            }
            return id
        }
    }

    // MARK: job submissions

    /// Writes submissions before their jobs are submitted (one transaction).
    public func addSubmissions(_ submissions: [JobSubmission]) throws {
        try pool.write { db in
            for j in submissions {
                try db.execute(sql: """
                    INSERT OR REPLACE INTO submitted_jobs(dir, job_id, node, stage, params_json, code_fingerprint, inputs_json,
                                                          scratch, log_path, submitted_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [j.dir, j.jobID, j.node, j.stage, j.paramsJSON, j.codeFingerprint, j.inputsJSON, j.scratch,
                                     j.logPath, j.submittedAt])
            }
        }
    }

    /// Sets the job id and log of submissions once the scheduler has answered (one transaction).
    public func setJobIDs(_ ids: [(dir: String, jobID: String, logPath: String)]) throws {
        try pool.write { db in
            for i in ids {
                try db.execute(sql: "UPDATE submitted_jobs SET job_id = ?, log_path = ? WHERE dir = ?",
                               arguments: [i.jobID, i.logPath, i.dir])
            }
        }
    }

    /// Every submission not yet collected, oldest first.
    public func submissions() throws -> [JobSubmission] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM submitted_jobs ORDER BY submitted_at, dir").map { row in
                JobSubmission(dir: row["dir"], jobID: row["job_id"], node: row["node"], stage: row["stage"],
                              paramsJSON: row["params_json"], codeFingerprint: row["code_fingerprint"],
                              inputsJSON: row["inputs_json"], scratch: row["scratch"], logPath: row["log_path"],
                              submittedAt: row["submitted_at"])
            }
        }
    }

    /// Forgets submissions whose jobs were cancelled, never submitted, or ended without a run to record.
    public func removeSubmissions(dirs: [String]) throws {
        guard !dirs.isEmpty else { return }
        try pool.write { db in
            for dir in dirs { try db.execute(sql: "DELETE FROM submitted_jobs WHERE dir = ?", arguments: [dir]) }
        }
    }

    // MARK: queries

    /// The successful run a Slurm job recorded, if any.
    public func successfulRun(slurmJobID: String) throws -> RunRecord? {
        try pool.read { db in
            try Self.fetchRuns(db, where: "slurm_job_id = ? AND status = 'ok'", arguments: [slurmJobID], limit: 1).first
        }
    }

    /// The newest successful run with this cache key.
    public func successfulRun(cacheKey: String) throws -> RunRecord? {
        try pool.read { db in
            try Self.fetchRuns(db, where: "cache_key = ? AND status = 'ok'", arguments: [cacheKey], limit: 1).first
        }
    }

    /// The newest run of a node, optionally only successful ones.
    public func latestRun(node: String, succeededOnly: Bool) throws -> RunRecord? {
        try pool.read { db in
            try Self.fetchRuns(db, where: succeededOnly ? "node = ? AND status = 'ok'" : "node = ?",
                               arguments: [node], limit: 1).first
        }
    }

    public func run(id: Int64) throws -> RunRecord? {
        try pool.read { db in try Self.fetchRuns(db, where: "id = ?", arguments: [id], limit: 1).first }
    }

    public func allRuns() throws -> [RunRecord] {
        try pool.read { db in try Self.fetchRuns(db, where: "1", arguments: [], limit: nil) }
    }

    /// The most recently started runs, newest first. `node` keeps the runs whose node or stage is that name,
    /// or whose node matches it as a glob (`train@*seed=2*`).
    public func recentRuns(limit: Int, node: String? = nil) throws -> [RunRecord] {
        try pool.read { db in
            if let node {
                return try Self.fetchRuns(db, where: "node = ? OR stage = ? OR node GLOB ?", arguments: [node, node, node],
                                          order: "started_at DESC, id DESC", limit: limit)
            }
            return try Self.fetchRuns(db, where: "1", arguments: [], order: "started_at DESC, id DESC", limit: limit)
        }
    }

    /// The successful run that produced an artifact (the newest, if several produced the same bytes).
    public func producer(of hash: String) throws -> RunRecord? {
        try pool.read { db in
            try Self.fetchRuns(db, where: "status = 'ok' AND id IN (SELECT run_id FROM run_outputs WHERE artifact_hash = ?)",
                               arguments: [hash], limit: 1).first
        }
    }

    public func artifact(hash: String) throws -> ArtifactRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM artifacts WHERE hash = ?", arguments: [hash]).map(Self.artifact)
        }
    }

    /// Artifacts whose hash starts with `prefix` (for abbreviated hashes on the command line).
    public func artifacts(hashPrefix prefix: String) throws -> [ArtifactRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM artifacts WHERE hash LIKE ? ORDER BY hash LIMIT 10",
                             arguments: [prefix + "%"]).map(Self.artifact)
        }
    }

    public func allArtifacts() throws -> [ArtifactRecord] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM artifacts ORDER BY hash").map(Self.artifact) }
    }

    // MARK: garbage collection

    /// Deletes the given runs (and their input/output rows), then every artifact row no run outputs any more;
    /// returns the removed artifacts so their files can be deleted.
    public func deleteRuns(ids: [Int64]) throws -> [ArtifactRecord] {
        try pool.write { db in
            for id in ids { try db.execute(sql: "DELETE FROM runs WHERE id = ?", arguments: [id]) }
            let orphans = try Row.fetchAll(db, sql: """
                SELECT * FROM artifacts WHERE hash NOT IN (SELECT artifact_hash FROM run_outputs)
                """).map(Self.artifact)
            try db.execute(sql: "DELETE FROM artifacts WHERE hash NOT IN (SELECT artifact_hash FROM run_outputs)")
            return orphans
        }
    }

    // MARK: file-state cache

    public func cachedHash(path: String, inode: UInt64, mtimeNs: Int64, size: Int64) throws -> String? {
        try pool.read { db in
            try String.fetchOne(db, sql: """
                SELECT hash FROM file_state WHERE path = ? AND inode = ? AND mtime_ns = ? AND size = ?
                """, arguments: [path, Int64(bitPattern: inode), mtimeNs, size])
        }
    }

    public func storeHash(path: String, inode: UInt64, mtimeNs: Int64, size: Int64, hash: String) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO file_state(path, inode, mtime_ns, size, hash) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(path) DO UPDATE SET inode = excluded.inode, mtime_ns = excluded.mtime_ns,
                    size = excluded.size, hash = excluded.hash
                """, arguments: [path, Int64(bitPattern: inode), mtimeNs, size, hash])
        }
    }

    /// Loads the whole file-state table (one query instead of one per file on a no-op run).
    public func allFileStates() throws -> [String: (inode: UInt64, mtimeNs: Int64, size: Int64, hash: String)] {
        try pool.read { db in
            var out: [String: (inode: UInt64, mtimeNs: Int64, size: Int64, hash: String)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM file_state") {
                let inode: Int64 = row["inode"]
                out[row["path"]] = (UInt64(bitPattern: inode), row["mtime_ns"], row["size"], row["hash"])
            }
            return out
        }
    }

    public func storeHashes(_ entries: [(path: String, inode: UInt64, mtimeNs: Int64, size: Int64, hash: String)]) throws {
        guard !entries.isEmpty else { return }
        try pool.write { db in
            for e in entries {
                try db.execute(sql: """
                    INSERT INTO file_state(path, inode, mtime_ns, size, hash) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(path) DO UPDATE SET inode = excluded.inode, mtime_ns = excluded.mtime_ns,
                        size = excluded.size, hash = excluded.hash
                    """, arguments: [e.path, Int64(bitPattern: e.inode), e.mtimeNs, e.size, e.hash])
            }
        }
    }

    /// Drops the remembered hashes of these paths (files removed from the store), so that nothing at the
    /// same path later is taken for them.
    public func forgetFileStates(paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try pool.write { db in
            for path in paths { try db.execute(sql: "DELETE FROM file_state WHERE path = ?", arguments: [path]) }
        }
    }

    // MARK: rows

    private static func resources(_ row: Row) -> RunResources? {
        let wall: Double? = row["wall_seconds"]
        let cpu: Double? = row["cpu_seconds"]
        let rss: Int64? = row["peak_rss_bytes"]
        guard let wall, let cpu, let rss else { return nil }
        return RunResources(wallSeconds: wall, cpuSeconds: cpu, peakRSSBytes: rss)
    }

    private static func artifact(_ row: Row) -> ArtifactRecord {
        ArtifactRecord(hash: row["hash"], kind: row["kind"], path: row["path"], bytes: row["bytes"], createdAt: row["created_at"])
    }

    private static func fetchRuns(_ db: Database, where condition: String, arguments: StatementArguments,
                                  order: String = "id DESC", limit: Int?) throws -> [RunRecord] {
        let suffix = limit.map { " LIMIT \($0)" } ?? ""
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM runs WHERE \(condition) ORDER BY \(order)\(suffix)",
                                    arguments: arguments)
        return try rows.map { row in
            let id: Int64 = row["id"]
            let inputs = try Row.fetchAll(db, sql: "SELECT role, artifact_hash FROM run_inputs WHERE run_id = ? ORDER BY rowid",
                                          arguments: [id]).map { ArtifactRef(role: $0["role"], hash: $0["artifact_hash"]) }
            let outputs = try Row.fetchAll(db, sql: "SELECT role, artifact_hash FROM run_outputs WHERE run_id = ? ORDER BY rowid",
                                           arguments: [id]).map { ArtifactRef(role: $0["role"], hash: $0["artifact_hash"]) }
            return RunRecord(id: id, stage: row["stage"], node: row["node"], cacheKey: row["cache_key"],
                             paramsJSON: row["params_json"], codeFingerprint: row["code_fingerprint"],
                             codePathsJSON: row["code_paths_json"], startedAt: row["started_at"], finishedAt: row["finished_at"], status: row["status"],
                             error: row["error"], resources: resources(row), inputs: inputs, outputs: outputs,
                             slurmJobID: row["slurm_job_id"], logPath: row["log_path"])
        }
    }
}

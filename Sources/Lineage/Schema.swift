import GRDB

/// The manifest's schema, as forward migrations. `PRAGMA user_version` holds the number of migrations
/// applied; opening a manifest applies the missing ones in one transaction each.
enum Schema {
    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE artifacts (
                hash TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                path TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                created_at REAL NOT NULL)
            """,
            """
            CREATE TABLE runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                stage TEXT NOT NULL,
                cache_key TEXT NOT NULL,
                params_json TEXT NOT NULL,
                code_fingerprint TEXT NOT NULL,
                started_at REAL NOT NULL,
                finished_at REAL,
                status TEXT NOT NULL,
                error TEXT)
            """,
            "CREATE INDEX runs_cache_key ON runs(cache_key)",
            """
            CREATE TABLE run_inputs (
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                artifact_hash TEXT NOT NULL,
                role TEXT NOT NULL)
            """,
            """
            CREATE TABLE run_outputs (
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                artifact_hash TEXT NOT NULL REFERENCES artifacts(hash),
                role TEXT NOT NULL)
            """,
            "CREATE INDEX run_outputs_hash ON run_outputs(artifact_hash)",
        ]),
        // Version 2: sweep points (one stage, many nodes) and the file-state cache that spares re-hashing.
        (2, [
            "ALTER TABLE runs ADD COLUMN node TEXT NOT NULL DEFAULT ''",
            "UPDATE runs SET node = stage WHERE node = ''",
            "CREATE INDEX runs_node ON runs(node, status, finished_at)",
            "CREATE INDEX run_inputs_run ON run_inputs(run_id)",
            "CREATE INDEX run_outputs_run ON run_outputs(run_id)",
            """
            CREATE TABLE file_state (
                path TEXT PRIMARY KEY,
                inode INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                size INTEGER NOT NULL,
                hash TEXT NOT NULL)
            """,
        ]),
        // Version 3: the content hash of each code path, so `status` can name the path that changed.
        (3, [
            "ALTER TABLE runs ADD COLUMN code_paths_json TEXT NOT NULL DEFAULT '{}'",
        ]),
        // Version 4: what the stage's child process used; NULL for runs recorded before, or whose child never started.
        (4, [
            "ALTER TABLE runs ADD COLUMN wall_seconds REAL",
            "ALTER TABLE runs ADD COLUMN cpu_seconds REAL",
            "ALTER TABLE runs ADD COLUMN peak_rss_bytes INTEGER",
            "CREATE INDEX runs_started ON runs(started_at)",
        ]),
        // Version 5: runs executed as cluster jobs (their Slurm job id) and every run's log (relative to the
        // artifact root); jobs submitted and not yet collected, so a restarted driver re-attaches to them.
        (5, [
            "ALTER TABLE runs ADD COLUMN slurm_job_id TEXT",
            "ALTER TABLE runs ADD COLUMN log_path TEXT",
            "CREATE INDEX runs_slurm_job ON runs(slurm_job_id)",
            """
            CREATE TABLE submitted_jobs (
                dir TEXT PRIMARY KEY,
                job_id TEXT,
                node TEXT NOT NULL,
                stage TEXT NOT NULL,
                params_json TEXT NOT NULL,
                code_fingerprint TEXT NOT NULL,
                inputs_json TEXT NOT NULL,
                scratch TEXT NOT NULL,
                log_path TEXT,
                submitted_at REAL NOT NULL)
            """,
            "CREATE INDEX submitted_jobs_node ON submitted_jobs(node)",
        ]),
    ]

    static var latestVersion: Int { migrations.last!.version }

    /// Applies every migration newer than the database's `user_version`.
    static func migrate(_ db: Database) throws {
        let current = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        guard current <= latestVersion else {
            throw ManifestError("manifest schema version \(current) is newer than this build understands (\(latestVersion)); update the tool")
        }
        for migration in migrations where migration.version > current {
            for statement in migration.statements { try db.execute(sql: statement) }
            try db.execute(sql: "PRAGMA user_version = \(migration.version)")
        }
    }
}

/// A manifest problem a user can act on.
public struct ManifestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

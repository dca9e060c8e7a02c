import Foundation
import GRDB
import XCTest
@testable import Lineage
@testable import Shards

final class ManifestTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testManifestFromSchemaVersion1IsMigratedKeepingItsRuns() throws {
        let url = dir.appendingPathComponent("manifest.sqlite")
        // A manifest as the first schema left it, with one recorded run.
        let old = try DatabaseQueue(path: url.path)
        try old.write { db in
            for statement in Schema.migrations[0].statements { try db.execute(sql: statement) }
            try db.execute(sql: "PRAGMA user_version = 1")
            try db.execute(sql: "INSERT INTO artifacts VALUES ('h1', 'tshard', 'objects/h1/h1.tshard', 10, 0)")
            try db.execute(sql: """
                INSERT INTO runs(stage, cache_key, params_json, code_fingerprint, started_at, finished_at, status)
                VALUES ('ingest', 'k1', '{}', 'c1', 0, 1, 'ok')
                """)
            try db.execute(sql: "INSERT INTO run_outputs VALUES (1, 'h1', 'train.tshard')")
        }
        try old.close()

        let manifest = try Manifest(url: url)
        XCTAssertEqual(try manifest.schemaVersion, Schema.latestVersion)
        let run = try XCTUnwrap(try manifest.successfulRun(cacheKey: "k1"))
        XCTAssertEqual(run.node, "ingest", "version 2 names each run's node; old runs get their stage's name")
        XCTAssertEqual(run.outputs, [ArtifactRef(role: "train.tshard", hash: "h1")])
        XCTAssertEqual(try manifest.producer(of: "h1")?.id, run.id)
        // The file-state table of version 2 exists and works.
        try manifest.storeHash(path: "/x", inode: 1, mtimeNs: 2, size: 3, hash: "abc")
        XCTAssertEqual(try manifest.cachedHash(path: "/x", inode: 1, mtimeNs: 2, size: 3), "abc")
        XCTAssertNil(try manifest.cachedHash(path: "/x", inode: 1, mtimeNs: 5, size: 3))
    }

    func testManifestFromSchemaVersion3GainsResourceColumnsAndKeepsItsRuns() throws {
        let url = dir.appendingPathComponent("manifest.sqlite")
        // A manifest as schema version 3 left it, with one recorded run.
        let old = try DatabaseQueue(path: url.path)
        try old.write { db in
            for migration in Schema.migrations where migration.version <= 3 {
                for statement in migration.statements { try db.execute(sql: statement) }
            }
            try db.execute(sql: "PRAGMA user_version = 3")
            try db.execute(sql: "INSERT INTO artifacts VALUES ('h1', 'json', 'objects/h1/h1.json', 10, 0)")
            try db.execute(sql: """
                INSERT INTO runs(stage, node, cache_key, params_json, code_fingerprint, started_at, finished_at, status)
                VALUES ('train', 'train@seed=1', 'k1', '{}', 'c1', 5, 9, 'ok')
                """)
            try db.execute(sql: "INSERT INTO run_outputs VALUES (1, 'h1', 'metrics.json')")
        }
        try old.close()

        let manifest = try Manifest(url: url)
        XCTAssertEqual(try manifest.schemaVersion, Schema.latestVersion)
        let migrated = try XCTUnwrap(try manifest.successfulRun(cacheKey: "k1"))
        XCTAssertEqual(migrated.node, "train@seed=1")
        XCTAssertEqual(migrated.outputs, [ArtifactRef(role: "metrics.json", hash: "h1")])
        XCTAssertNil(migrated.resources, "a run recorded before version 4 has no record of what it used")

        let used = RunResources(wallSeconds: 12.5, cpuSeconds: 20.25, peakRSSBytes: 812_345_678_901)
        let newer = RunRecord(stage: "train", node: "train@seed=2", cacheKey: "k2", paramsJSON: "{}", codeFingerprint: "c1",
                              startedAt: 10, finishedAt: 23, status: RunRecord.failed, error: "exit 1", resources: used,
                              inputs: [], outputs: [])
        let id = try manifest.record(newer, artifacts: [])
        XCTAssertEqual(try manifest.run(id: id)?.resources, used, "a failed run keeps what its child used, to the byte")
        XCTAssertEqual(try manifest.recentRuns(limit: 10).map(\.node), ["train@seed=2", "train@seed=1"])
        XCTAssertEqual(try manifest.recentRuns(limit: 1).map(\.node), ["train@seed=2"])
        XCTAssertEqual(try manifest.recentRuns(limit: 10, node: "train@*=1").map(\.node), ["train@seed=1"])
        XCTAssertEqual(try manifest.recentRuns(limit: 10, node: "train").count, 2)
    }

    func testManifestFromSchemaVersion4GainsSlurmColumnsAndTheSubmissionTable() throws {
        let url = dir.appendingPathComponent("manifest.sqlite")
        let old = try DatabaseQueue(path: url.path)
        try old.write { db in
            for migration in Schema.migrations where migration.version <= 4 {
                for statement in migration.statements { try db.execute(sql: statement) }
            }
            try db.execute(sql: "PRAGMA user_version = 4")
            try db.execute(sql: """
                INSERT INTO runs(stage, node, cache_key, params_json, code_fingerprint, started_at, finished_at, status, wall_seconds,
                                 cpu_seconds, peak_rss_bytes)
                VALUES ('train', 'train', 'k1', '{}', 'c1', 5, 9, 'ok', 4, 3, 1000)
                """)
        }
        try old.close()

        let manifest = try Manifest(url: url)
        XCTAssertEqual(try manifest.schemaVersion, 5)
        let migrated = try XCTUnwrap(try manifest.successfulRun(cacheKey: "k1"))
        XCTAssertEqual(migrated.resources, RunResources(wallSeconds: 4, cpuSeconds: 3, peakRSSBytes: 1000))
        XCTAssertNil(migrated.slurmJobID)
        XCTAssertNil(migrated.logPath, "a run recorded before version 5 has no log path")

        // A submission is written before sbatch, gets its job id after, and goes in the transaction that records its run.
        let submission = JobSubmission(dir: "jobs/train-1/0", jobID: nil, node: "train@seed=1", stage: "train", paramsJSON: "{}",
                                       codeFingerprint: "c1", inputsJSON: "[]", scratch: "scratch/k2", logPath: nil, submittedAt: 20)
        try manifest.addSubmissions([submission])
        try manifest.setJobIDs([("jobs/train-1/0", "77_0", "logs/slurm/77_0.log")])
        var expected = submission
        expected.jobID = "77_0"
        expected.logPath = "logs/slurm/77_0.log"
        XCTAssertEqual(try manifest.submissions(), [expected])
        let run = RunRecord(stage: "train", node: "train@seed=1", cacheKey: "k2", paramsJSON: "{}", codeFingerprint: "c1",
                            startedAt: 20, finishedAt: 30, status: RunRecord.succeeded, error: nil, inputs: [], outputs: [],
                            slurmJobID: "77_0", logPath: "logs/slurm/77_0.log")
        let id = try manifest.record(run, artifacts: [], collecting: "jobs/train-1/0")
        XCTAssertEqual(try manifest.submissions(), [], "recording the run collects its submission")
        XCTAssertEqual(try manifest.successfulRun(slurmJobID: "77_0")?.id, id)
        XCTAssertEqual(try manifest.run(id: id)?.logPath, "logs/slurm/77_0.log")
        XCTAssertNil(try manifest.successfulRun(slurmJobID: "77_1"))
    }

    func testNewerSchemaIsRefusedWithAMessage() throws {
        let url = dir.appendingPathComponent("manifest.sqlite")
        let db = try DatabaseQueue(path: url.path)
        try db.write { try $0.execute(sql: "PRAGMA user_version = 99") }
        try db.close()
        XCTAssertThrowsError(try Manifest(url: url)) { e in
            XCTAssertTrue("\(e)".contains("schema version 99 is newer"), "\(e)")
        }
    }

    func testRecordedRunsAnswerLineageQueries() throws {
        let manifest = try Manifest(url: dir.appendingPathComponent("m.sqlite"))
        let a = ArtifactRecord(hash: "aa", kind: "tshard", path: "objects/aa/aa.tshard", bytes: 5, createdAt: 1)
        let b = ArtifactRecord(hash: "bb", kind: "json", path: "objects/bb/bb.json", bytes: 6, createdAt: 2)
        let first = RunRecord(stage: "ingest", node: "ingest", cacheKey: "k1", paramsJSON: #"{"seed":1}"#, codeFingerprint: "c",
                              startedAt: 0, finishedAt: 1, status: RunRecord.succeeded, error: nil,
                              inputs: [], outputs: [ArtifactRef(role: "train.tshard", hash: "aa")])
        let firstID = try manifest.record(first, artifacts: [a])
        let second = RunRecord(stage: "pairs", node: "pairs", cacheKey: "k2", paramsJSON: "{}", codeFingerprint: "c",
                               startedAt: 1, finishedAt: 2, status: RunRecord.succeeded, error: nil,
                               inputs: [ArtifactRef(role: "videos", hash: "aa")], outputs: [ArtifactRef(role: "pairs.json", hash: "bb")])
        try manifest.record(second, artifacts: [b])
        XCTAssertEqual(try manifest.producer(of: "bb")?.inputs.first?.hash, "aa")
        XCTAssertEqual(try manifest.producer(of: "aa")?.id, firstID)
        XCTAssertEqual(try manifest.latestRun(node: "pairs", succeededOnly: true)?.cacheKey, "k2")
        // Forgetting the second run orphans only its output.
        let orphans = try manifest.deleteRuns(ids: [try manifest.latestRun(node: "pairs", succeededOnly: true)!.id!])
        XCTAssertEqual(orphans.map(\.hash), ["bb"])
        XCTAssertNotNil(try manifest.artifact(hash: "aa"))
    }
}

final class CacheKeyAndHashingTests: XCTestCase {
    func testCacheKeyIgnoresRoleOrderAndKeyOrderButNotValuesOrTheOrderWithinARole() {
        let inputs = [ArtifactRef(role: "b", hash: "2"), ArtifactRef(role: "a", hash: "1")]
        let k1 = CacheKey.make(stage: "s", codeFingerprint: "c", params: ["x": 1, "y": "z"], inputs: inputs)
        let k2 = CacheKey.make(stage: "s", codeFingerprint: "c", params: ["y": "z", "x": 1.0], inputs: inputs.reversed())
        XCTAssertEqual(k1, k2)
        // Within a role the order is the pipeline file's: mask-eval pairs its i-th videos with its i-th queries,
        // so swapping two sources of one role is another computation.
        let pairs = [ArtifactRef(role: "videos", hash: "v1"), ArtifactRef(role: "queries", hash: "q1"),
                     ArtifactRef(role: "videos", hash: "v2"), ArtifactRef(role: "queries", hash: "q2")]
        let swapped = [pairs[2], pairs[1], pairs[0], pairs[3]]
        let interleaved = [pairs[1], pairs[3], pairs[0], pairs[2]]
        let key = { (inputs: [ArtifactRef]) in CacheKey.make(stage: "s", codeFingerprint: "c", params: [:], inputs: inputs) }
        XCTAssertEqual(key(pairs), key(interleaved), "roles are sorted; the order within each role is kept")
        XCTAssertNotEqual(key(pairs), key(swapped))
        XCTAssertNotEqual(key(pairs), key([ArtifactRef(role: "videos", hash: "v1"), ArtifactRef(role: "queries", hash: "q1"),
                                           ArtifactRef(role: "queries", hash: "v2"), ArtifactRef(role: "queries", hash: "q2")]),
                          "the role is part of the key")
        XCTAssertNotEqual(k1, CacheKey.make(stage: "s", codeFingerprint: "c", params: ["x": 2, "y": "z"], inputs: inputs))
        XCTAssertNotEqual(k1, CacheKey.make(stage: "s", codeFingerprint: "d", params: ["x": 1, "y": "z"], inputs: inputs))
        XCTAssertNotEqual(k1, CacheKey.make(stage: "t", codeFingerprint: "c", params: ["x": 1, "y": "z"], inputs: inputs))
    }

    /// Sets a file's access and modification times to the whole second `seconds` (since 1970).
    static func setModificationTime(_ url: URL, seconds: Int) {
        var times = [timeval(tv_sec: seconds, tv_usec: 0), timeval(tv_sec: seconds, tv_usec: 0)]
        XCTAssertEqual(utimes(url.path, &times), 0)
    }

    /// Replaces a file's bytes in place (same inode), leaving its times to the caller.
    static func overwriteInPlace(_ url: URL, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    func testContentHasherReusesStoredStateWithoutReadingTheFileAndNoticesEdits() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = try Manifest(url: dir.appendingPathComponent("m.sqlite"))
        let file = dir.appendingPathComponent("sub/a.txt")
        try Data("one".utf8).write(to: file)
        // Older than ContentHasher's 2-second racy-clean window, so its state may be stored.
        let past = Int(Date().timeIntervalSince1970) - 60
        Self.setModificationTime(file, seconds: past)
        let hasher = try ContentHasher(manifest: manifest)
        let h1 = try hasher.hash(of: file)
        try hasher.flush()
        XCTAssertEqual(try manifest.allFileStates()[file.standardizedFileURL.path]?.hash, h1, "the state is stored")

        // New bytes of the same size, same inode, the old modification time: a new hasher that answers from the
        // stored state, and so never reads the file, still gives the old hash.
        try Self.overwriteInPlace(file, "two")
        Self.setModificationTime(file, seconds: past)
        XCTAssertEqual(try ContentHasher(manifest: manifest).hash(of: file), h1, "the stored state was used, the file not read")
        // Any change of (inode, mtime, size) makes it read the file again.
        Self.setModificationTime(file, seconds: past + 1)
        XCTAssertEqual(try ContentHasher(manifest: manifest).hash(of: file), try ContentHasher.computeHash(of: file))
        XCTAssertNotEqual(try ContentHasher.computeHash(of: file), h1)

        let tree1 = try hasher.hash(of: dir.appendingPathComponent("sub"))
        try Data("x".utf8).write(to: dir.appendingPathComponent("sub/b.txt"))
        XCTAssertNotEqual(try hasher.hash(of: dir.appendingPathComponent("sub")), tree1)
    }

    func testAFileModifiedWithinTwoSecondsIsHashedButItsStateNotStored() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = try Manifest(url: dir.appendingPathComponent("m.sqlite"))
        let file = dir.appendingPathComponent("fresh.txt")
        try Data("one".utf8).write(to: file)
        let hasher = try ContentHasher(manifest: manifest)
        let h1 = try hasher.hash(of: file)
        XCTAssertEqual(h1, try ContentHasher.computeHash(of: file))
        try hasher.flush()
        XCTAssertNil(try manifest.allFileStates()[file.standardizedFileURL.path],
                     "a file that could still change within its timestamp's granularity is not trusted")
        // So its next edit, of the same size and possibly within the same timestamp, is seen.
        try Self.overwriteInPlace(file, "two")
        let h2 = try ContentHasher(manifest: manifest).hash(of: file)
        XCTAssertNotEqual(h2, h1)
        XCTAssertEqual(h2, try ContentHasher.computeHash(of: file))
    }

    func testShardHashIsItsLogicalHash() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = ShardWriter(meta: ["a": 1], level: 1)
        try w.add("x", [Float](repeating: 1, count: 100), shape: [100])
        let s1 = try w.write(to: dir.appendingPathComponent("a.tshard"))
        w.level = 15
        try w.write(to: dir.appendingPathComponent("b.tshard"))
        XCTAssertEqual(try ContentHasher.computeHash(of: dir.appendingPathComponent("a.tshard")), s1.logicalHash)
        XCTAssertEqual(try ContentHasher.computeHash(of: dir.appendingPathComponent("b.tshard")), s1.logicalHash)
    }
}

final class PipelineLockTests: XCTestCase {
    func testSecondHolderWaitsUntilTheFirstReleases() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lock-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var first: PipelineLock? = try PipelineLock(root: dir, onWait: { _ in XCTFail("nobody holds it yet") })
        let waited = expectation(description: "second driver is told to wait")
        let acquired = expectation(description: "second driver gets the lock")
        let released = NSLock()
        released.lock()
        var releasedFirst = false
        Thread.detachNewThread {
            let second = try? PipelineLock(root: dir, onWait: { message in
                XCTAssertTrue(message.contains("waiting"), message)
                waited.fulfill()
            })
            released.lock()
            XCTAssertTrue(releasedFirst, "the lock was taken while the first holder still had it")
            released.unlock()
            XCTAssertNotNil(second)
            acquired.fulfill()
        }
        wait(for: [waited], timeout: 10)
        releasedFirst = true
        first = nil
        released.unlock()
        wait(for: [acquired], timeout: 10)
        XCTAssertNil(first)
    }
}

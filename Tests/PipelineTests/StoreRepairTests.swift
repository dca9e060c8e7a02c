import Foundation
import Lineage
import PipelineDriver
import Shards
import XCTest

/// A damaged store repairs itself: objects that fail to verify (however they fail), that are not regular
/// files, or whose bytes changed behind an unchanged stat are found, and their producers run again.
final class StoreRepairTests: XCTestCase {
    /// The store file behind a node's output link.
    func object(_ p: TestProject, _ node: String, _ file: String = "out.txt") -> URL {
        p.artifacts.appendingPathComponent("stages/\(node)/\(file)").resolvingSymlinksInPath()
    }

    /// One stage `s` whose output is a copy of `good.tshard`, a small valid shard.
    func shardProject() throws -> TestProject {
        let p = try TestProject()
        var writer = ShardWriter()
        try writer.add("x", [Float](repeating: 1.5, count: 8), shape: [8])
        _ = try writer.write(to: p.root.appendingPathComponent("good.tshard"))
        try p.write("stages/s.json", #"{"version": 1, "command": "./s.sh", "outputs": ["out.tshard"]}"#)
        try p.write("s.sh", """
            #!/usr/bin/env bash
            set -euo pipefail
            while [ $# -gt 0 ]; do case "$1" in --out) out="$2"; shift 2;; *) shift;; esac; done
            echo s >> "$(dirname "$0")/runs.log"
            cp "$(dirname "$0")/good.tshard" "$out/out.tshard"
            """)
        chmod(p.root.appendingPathComponent("s.sh").path, 0o755)
        try p.write("pipeline.json", #"{"version": 1, "stages": {"s": {"uses": "stages/s.json"}}}"#)
        return p
    }

    /// A format-v2 shard whose one tensor declares shape [2^40] of f32 (4 TiB) with sizes that agree with
    /// each other: one chunk of 2^27 bytes (a hole on disk), the largest raw length a frame that long could
    /// expand to, a zstd frame header that does not declare its content size, and the frame's true digest in
    /// the index. Only a bound on what a reader allocates refuses it.
    static func writeHugeTensorShard(to url: URL, scratch: URL) throws {
        let rows: UInt64 = 1 << 40, rawLength = rows * 4, frameLength: UInt64 = 1 << 27
        // The zstd magic, a frame header without content size or checksum, a 1 KiB window.
        let frameHead: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00]
        let frame = scratch.appendingPathComponent("frame.bin")
        try Data(frameHead).write(to: frame)
        XCTAssertEqual(truncate(frame.path, off_t(frameLength)), 0)
        let digest = try ContentHasher.computeHash(of: frame)
        try FileManager.default.removeItem(at: frame)

        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        var digestBytes: [UInt8] = []
        var hex = Substring(digest)
        while !hex.isEmpty {
            digestBytes.append(UInt8(hex.prefix(2), radix: 16)!)
            hex = hex.dropFirst(2)
        }
        let start = UInt64(ShardFormat.magic.count)
        let index = u64(start) + u64(frameLength) + u64(rawLength) + u64(rows) + digestBytes
        let header = Array(#"{"meta":{},"tensors":{"x":{"chunks":1,"dtype":"f32","shape":[\#(rows)],"sha256":"\#(String(repeating: "0", count: 64))"}}}"#.utf8)
        let trailer = u64(start + frameLength) + u64(UInt64(header.count)) + ShardFormat.endMagic

        try Data(ShardFormat.magic + frameHead).write(to: url)
        XCTAssertEqual(truncate(url.path, off_t(start + frameLength)), 0)
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(index + header + trailer))
        try handle.close()
    }

    func testADamagedShardInTheStoreMakesItsProducerRerunWithoutCrashingTheDriver() throws {
        let p = try shardProject()
        try p.run()
        let stored = object(p, "s", "out.tshard")
        let good = try Data(contentsOf: stored)
        let damages: [(String, (URL) throws -> Void)] = [
            ("a header declaring a 4 TiB tensor", { try Self.writeHugeTensorShard(to: $0, scratch: p.root) }),
            ("a cut file", { try good.prefix(good.count / 2).write(to: $0) }),
            ("a flipped byte in a chunk", { url in
                var bytes = good
                bytes[ShardFormat.magic.count + 2] ^= 0x01
                try bytes.write(to: url)
            }),
            ("not a shard", { try Data("plain text\n".utf8).write(to: $0) }),
        ]
        for (damage, write) in damages {
            try FileManager.default.removeItem(at: stored)
            try write(stored)
            let status = try p.command(["status"])
            XCTAssertEqual(status.status, 0, "\(damage): `pipeline status` must not crash")
            XCTAssertTrue(status.output.contains("s  stale  output out.tshard is corrupt ("), "\(damage): \(status.output)")
            try? FileManager.default.removeItem(at: p.runLog)
            let run = try p.command(["run", "--no-build"])
            XCTAssertEqual(run.status, 0, "\(damage): `pipeline run` must not crash")
            XCTAssertEqual(p.executed(), ["s"], "\(damage): the producer runs again")
            XCTAssertEqual(try Data(contentsOf: stored), good, "\(damage): the store holds the good bytes again")
            XCTAssertTrue(try p.command(["status"]).output.contains("s  fresh"), damage)
        }
    }

    func testAStoreObjectReplacedByADirectoryIsRebuiltByRun() throws {
        let p = try TestProject()
        try p.run()
        let stored = object(p, "a")
        let good = try Data(contentsOf: stored)
        try FileManager.default.removeItem(at: stored)
        try FileManager.default.createDirectory(at: stored, withIntermediateDirectories: false)
        try "inside\n".write(to: stored.appendingPathComponent("file.txt"), atomically: false, encoding: .utf8)
        let a = try p.pipeline().status().first { $0.node == "a" }!
        XCTAssertEqual(a.state, .stale(reason: "output out.txt is damaged in the store (not a regular file)"))
        XCTAssertEqual(try p.run(), ["a"], "a reruns; its bytes are the same, so nothing downstream does")
        XCTAssertEqual(try Data(contentsOf: stored), good)
        XCTAssertEqual(try p.run(), [])
    }

    func testGCRemovesAStoreObjectReplacedByADirectory() throws {
        let p = try TestProject()
        try p.run()
        let stored = object(p, "a")
        try FileManager.default.removeItem(at: stored)
        try FileManager.default.createDirectory(at: stored.appendingPathComponent("nested"), withIntermediateDirectories: true)
        let report = try p.pipeline().gc(workspace: true, dryRun: false)
        XCTAssertTrue(report.contains("removed \(stored.path): not a regular file"), "\(report)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stored.path))
        let a = try p.pipeline().status().first { $0.node == "a" }!
        XCTAssertEqual(a.state, .stale(reason: "output out.txt is missing from the store"))
        XCTAssertEqual(try p.run(), ["a"])
        XCTAssertTrue(try p.output("a").hasPrefix("params"))
    }

    func testAnOutputThatCannotBeMovedIntoTheStoreIsAFailedRun() throws {
        let p = try TestProject()
        try p.run()
        // a's store folder becomes a link to a directory on another file system, so the move fails (EXDEV).
        let folder = object(p, "a").deletingLastPathComponent()
        try FileManager.default.removeItem(at: folder)
        try FileManager.default.createSymbolicLink(atPath: folder.path, withDestinationPath: "/proc")
        XCTAssertThrowsError(try p.run()) { e in XCTAssertTrue("\(e)".contains("stage a failed"), "\(e)") }
        let run = try XCTUnwrap(try p.manifest().latestRun(node: "a", succeededOnly: false))
        XCTAssertEqual(run.status, RunRecord.failed)
        XCTAssertTrue(run.error?.hasPrefix("output out.txt cannot be stored: ") ?? false, run.error ?? "no error")
        XCTAssertTrue(run.error?.contains("cannot move into the store") ?? false, run.error ?? "no error")
        try FileManager.default.removeItem(at: folder)
        XCTAssertEqual(try p.run(), ["a"])
        XCTAssertEqual(try p.run(), [])
    }

    func testVerifyFindsAByteFlippedBehindAnUnchangedStatAndRepairMakesItsProducerRerun() throws {
        let p = try TestProject()
        try p.run()
        let stored = object(p, "a")
        // An hour-old mtime, so that the hash cache records the file's state (it skips files changed in the last 2 s).
        var times = [timespec(tv_sec: time(nil) - 3600, tv_nsec: 123_456_789), timespec(tv_sec: time(nil) - 3600, tv_nsec: 123_456_789)]
        XCTAssertEqual(utimensat(AT_FDCWD, stored.path, &times, 0), 0)
        XCTAssertEqual(try p.run(), [])

        chmod(stored.path, 0o644)
        let fd = open(stored.path, O_RDWR)
        var byte: UInt8 = 0
        XCTAssertEqual(pread(fd, &byte, 1, 0), 1)
        byte ^= 0x20
        XCTAssertEqual(pwrite(fd, &byte, 1, 0), 1)
        close(fd)
        XCTAssertEqual(utimensat(AT_FDCWD, stored.path, &times, 0), 0)
        chmod(stored.path, 0o444)
        XCTAssertEqual(try p.run(), [], "the cache trusts the unchanged (inode, mtime, size): run does not see it")

        let found = try p.command(["verify"])
        XCTAssertNotEqual(found.status, 0)
        XCTAssertTrue(found.output.contains("damaged  \(stored.path): its content hashes to "), found.output)
        XCTAssertTrue(found.output.contains("(output out.txt of a)"), found.output)
        XCTAssertTrue(found.output.contains("verified 5 objects in \(p.artifacts.path)/objects: 1 damaged"), found.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: stored.path), "verify without --repair changes nothing")

        let repaired = try p.command(["verify", "--repair"])
        XCTAssertEqual(repaired.status, 0, repaired.output)
        XCTAssertTrue(repaired.output.contains("removed  \(stored.path): "), repaired.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stored.path))
        let a = try p.pipeline().status().first { $0.node == "a" }!
        XCTAssertEqual(a.state, .stale(reason: "output out.txt is missing from the store"))
        XCTAssertEqual(try p.run(), ["a"])
        XCTAssertTrue(try p.output("a").hasPrefix("params"), "the good bytes are back")
        let clean = try p.command(["verify"])
        XCTAssertEqual(clean.status, 0)
        XCTAssertTrue(clean.output.contains("verified 5 objects in \(p.artifacts.path)/objects: none damaged"), clean.output)
    }

    func testVerifyNamesAStoreEntryThatIsNotARegularFile() throws {
        let p = try TestProject()
        try p.run()
        let stored = object(p, "c")
        try FileManager.default.removeItem(at: stored)
        try FileManager.default.createDirectory(at: stored, withIntermediateDirectories: false)
        let result = try p.pipeline().verify(repair: false)
        XCTAssertEqual(result.damaged, 1)
        XCTAssertEqual(result.lines.first, "damaged  \(stored.path): not a regular file (output out.txt of c)")
    }
}

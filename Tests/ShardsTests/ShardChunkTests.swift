import Foundation
import XCTest
@testable import Shards

#if canImport(Glibc)
import Glibc
#endif

/// Format version 2: records written one by one, read one by one, and every chunk-level corruption caught.
final class ShardChunkTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("chunks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Rows of record `r`: `r % 5 + 1` rows of width 8, values that name their record and position.
    func record(_ r: Int) -> [Float] { (0..<((r % 5 + 1) * 8)).map { Float(r * 1000 + $0) } }

    @discardableResult
    func writeRecords(_ n: Int, to url: URL) throws -> ShardSummary {
        let w = try ShardStreamWriter(url: url, meta: ["kind": "test"])
        try w.declare("rows", dtype: .f32, rowShape: [8])
        var offsets: [Int64] = [0]
        for r in 0..<n {
            try w.append("rows", record(r), rowShape: [8])
            try w.append("ids", [Int32(r)], rowShape: [])
            offsets.append(offsets.last! + Int64(r % 5 + 1))
        }
        try w.append("rows.offsets", offsets, rowShape: [])
        w.meta = ["kind": "test", "records": .number(Double(n))]
        return try w.finish()
    }

    func testEachRecordIsReadFromItsOwnChunk() throws {
        let url = dir.appendingPathComponent("r.tshard")
        try writeRecords(50, to: url)
        let r = try ShardReader(url: url)
        XCTAssertEqual(r.version, 2)
        XCTAssertEqual(r.meta["records"], 50)
        XCTAssertEqual(try r.chunkCount("rows"), 50)
        for i in [0, 17, 49] {
            XCTAssertEqual(try r.readChunk("rows", i, as: Float.self), record(i))
        }
        let offsets = try r.readOffsets("rows")
        XCTAssertEqual(try r.readRows("rows", Int(offsets[23])..<Int(offsets[24]), as: Float.self), record(23))
        // A range across chunk boundaries, starting and ending inside chunks.
        let all = (0..<50).flatMap(record)
        XCTAssertEqual(try r.readRows("rows", 3..<40, as: Float.self), Array(all[(3 * 8)..<(40 * 8)]))
        XCTAssertEqual(try r.read("rows", as: Float.self).values, all)
        XCTAssertEqual(try r.read("ids", as: Int32.self).values, (0..<50).map(Int32.init))
        XCTAssertThrowsError(try r.readChunk("rows", 50, as: Float.self))
    }

    func testStreamedAndInMemoryWritesHaveOneLogicalHash() throws {
        let streamed = try writeRecords(20, to: dir.appendingPathComponent("a.tshard"))
        var w = ShardWriter(meta: ["kind": "test", "records": 20])
        var offsets: [Int64] = [0]
        for r in 0..<20 { offsets.append(offsets.last! + Int64(r % 5 + 1)) }
        try w.addRagged("rows", values: (0..<20).flatMap(record), offsets: offsets, dim: 8)
        try w.add("ids", (0..<20).map(Int32.init), shape: [20])
        let batch = try w.write(to: dir.appendingPathComponent("b.tshard"))
        XCTAssertEqual(streamed.logicalHash, batch.logicalHash)
        XCTAssertEqual(try ShardReader(url: dir.appendingPathComponent("a.tshard")).verify(), streamed.logicalHash)
    }

    func testAnUnfinishedWriterLeavesNoFile() throws {
        let url = dir.appendingPathComponent("x.tshard")
        do {
            let w = try ShardStreamWriter(url: url)
            try w.append("rows", record(1), rowShape: [8])
            XCTAssertThrowsError(try w.append("rows", [Float](repeating: 0, count: 5), rowShape: [8]))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testWritingAGigabyteKeepsMemoryFlat() throws {
        let url = dir.appendingPathComponent("big.tshard")
        let w = try ShardStreamWriter(url: url, level: 1)
        var rows = [Float](repeating: 0, count: 75 * 2818)
        let before = Self.residentBytes()
        var peakGrowth = 0
        // 1 GB of video-sized records (75 x 2818 float32 = 845 KB each).
        for r in 0..<1270 {
            for i in stride(from: 0, to: rows.count, by: 7) { rows[i] = Float(r &* 31 &+ i) }
            try w.append("features", rows, rowShape: [2818])
            if r % 100 == 0 { peakGrowth = max(peakGrowth, Self.residentBytes() - before) }
        }
        try w.finish()
        peakGrowth = max(peakGrowth, Self.residentBytes() - before)
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int, 10_000_000)
        XCTAssertEqual(try ShardReader(url: url).info("features").shape, [1270 * 75, 2818])
        XCTAssertLessThan(peakGrowth, 50 << 20, "resident memory grew by \(peakGrowth >> 20) MB while writing 1 GB")
    }

    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    // MARK: Corruption

    /// A two-tensor file: "a" has three chunks, "b" one.
    func goodFile() throws -> (data: Data, url: URL) {
        let url = dir.appendingPathComponent("good.tshard")
        let w = try ShardStreamWriter(url: url, meta: ["k": 1])
        for c in 0..<3 { try w.append("a", (0..<512).map { Float(c * 512 + $0).squareRoot() }, rowShape: [64]) }
        try w.append("b", [Int32](0..<10), rowShape: [])
        try w.finish()
        return (try Data(contentsOf: url), url)
    }

    func trailer(_ d: Data) -> (indexOffset: Int, hlen: Int) {
        d.withUnsafeBytes {
            (Int($0.loadUnaligned(fromByteOffset: d.count - 24, as: UInt64.self)), Int($0.loadUnaligned(fromByteOffset: d.count - 16, as: UInt64.self)))
        }
    }

    /// Index entry `e`, field `f` (0 offset, 1 clen, 2 rlen, 3 rows) set to `value`.
    func settingIndex(_ d: Data, entry e: Int, field f: Int, to value: UInt64) -> Data {
        var d = d
        let at = trailer(d).indexOffset + e * 64 + f * 8
        withUnsafeBytes(of: value.littleEndian) { d.replaceSubrange(at..<(at + 8), with: $0) }
        return d
    }

    func indexField(_ d: Data, entry e: Int, field f: Int) -> UInt64 {
        d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: trailer(d).indexOffset + e * 64 + f * 8, as: UInt64.self) }
    }

    func assertRefused(_ data: Data, containing text: String, verify: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = dir.appendingPathComponent("bad.tshard")
        try data.write(to: url)
        XCTAssertThrowsError(try { let r = try ShardReader(url: url); if verify { _ = try r.verify() } }(), file: file, line: line) { e in
            let message = "\(e)"
            XCTAssertTrue(message.hasPrefix(url.path + ": "), "message does not name the file: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(text), "expected '\(text)' in: \(message)", file: file, line: line)
        }
    }

    func testAFlippedByteInOneChunkFailsThatChunkOnly() throws {
        let (good, _) = try goodFile()
        let chunk1 = Int(indexField(good, entry: 1, field: 0)), clen = Int(indexField(good, entry: 1, field: 1))
        var d = good
        d[chunk1 + clen / 2] ^= 0x5A
        try assertRefused(d, containing: "tensor 'a' chunk 1 failed its checksum", verify: true)
        let url = dir.appendingPathComponent("bad.tshard")
        let r = try ShardReader(url: url)
        XCTAssertEqual(try r.readChunk("a", 0, as: Float.self)[3], Float(3).squareRoot(), "an intact chunk stays readable")
        XCTAssertEqual(try r.readChunk("a", 2, as: Float.self)[0], Float(1024).squareRoot())
        XCTAssertThrowsError(try r.readChunk("a", 1, as: Float.self)) { e in XCTAssertTrue("\(e)".contains("tensor 'a'"), "\(e)") }
    }

    func testAWrongIndexEntryIsRefused() throws {
        let (good, _) = try goodFile()
        // rlen no longer rows x row bytes.
        try assertRefused(settingIndex(good, entry: 0, field: 2, to: indexField(good, entry: 0, field: 2) + 4),
                          containing: "tensor 'a' has inconsistent sizes (chunk 0")
        // Rows that no longer add up to the shape.
        let moved = settingIndex(settingIndex(good, entry: 0, field: 3, to: 7), entry: 0, field: 2, to: 7 * 256)
        try assertRefused(moved, containing: "has 24 rows, its chunks hold 23")
        // An entry pointing at the wrong (but in-file, non-overlapping) frame: its digest no longer matches.
        let swapped = settingIndex(settingIndex(good, entry: 0, field: 0, to: indexField(good, entry: 2, field: 0)),
                                   entry: 2, field: 0, to: indexField(good, entry: 0, field: 0))
        let a0 = indexField(good, entry: 0, field: 1), a2 = indexField(good, entry: 2, field: 1)
        let swappedBoth = settingIndex(settingIndex(swapped, entry: 0, field: 1, to: a2), entry: 2, field: 1, to: a0)
        try assertRefused(swappedBoth, containing: "chunk 0 failed its checksum", verify: true)
        // A frame whose own header declares another size than the index: refused before allocation.
        XCTAssertNotEqual(a0, 0)
    }

    func testOverlappingChunksAreRefused() throws {
        let (good, _) = try goodFile()
        let d = settingIndex(good, entry: 1, field: 0, to: indexField(good, entry: 0, field: 0) + 4)
        try assertRefused(d, containing: "overlap")
    }

    func testAnIndexPointingPastTheEndIsRefused() throws {
        let (good, _) = try goodFile()
        try assertRefused(settingIndex(good, entry: 3, field: 0, to: UInt64(good.count)), containing: "tensor 'b' lies outside the file")
        try assertRefused(settingIndex(good, entry: 3, field: 1, to: UInt64.max - 3), containing: "lies outside the file")
        // The trailer's index offset past the header.
        var d = good
        withUnsafeBytes(of: UInt64(good.count).littleEndian) { d.replaceSubrange((d.count - 24)..<(d.count - 16), with: $0) }
        try assertRefused(d, containing: "index offset")
    }

    func testImplausibleRawSizesAreRefusedBeforeAllocation() throws {
        let (good, _) = try goodFile()
        // 2^40 rows of "b" declared in the index (and in the header, consistently): no 4 TiB allocation, a refusal.
        var text = String(decoding: good[(good.count - 24 - trailer(good).hlen)..<(good.count - 24)], as: UTF8.self)
        text = text.replacingOccurrences(of: #""shape":[10]"#, with: #""shape":[1099511627776]"#)
        var d = good.prefix(good.count - 24 - trailer(good).hlen) + Data(text.utf8)
        withUnsafeBytes(of: UInt64(trailer(good).indexOffset).littleEndian) { d.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: ShardFormat.endMagic)
        let huge = settingIndex(settingIndex(d, entry: 3, field: 3, to: 1 << 40), entry: 3, field: 2, to: 1 << 42)
        try assertRefused(huge, containing: "cannot come from a")
    }

    func testTruncationAndBadTrailersAreRefused() throws {
        let (good, _) = try goodFile()
        try assertRefused(good.prefix(good.count - 1), containing: "truncated (the end marker is missing")
        try assertRefused(good.prefix(20), containing: "truncated")
        var d = good
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { d.replaceSubrange((d.count - 16)..<(d.count - 8), with: $0) }
        try assertRefused(d, containing: "more than the 16777216-byte limit")
        d = good
        withUnsafeBytes(of: UInt64(good.count).littleEndian) { d.replaceSubrange((d.count - 16)..<(d.count - 8), with: $0) }
        try assertRefused(d, containing: "runs past the start")
    }

    func testAChangedTensorDigestIsCaughtByVerify() throws {
        let (good, _) = try goodFile()
        let start = good.count - 24 - trailer(good).hlen
        var text = String(decoding: good[start..<(good.count - 24)], as: UTF8.self)
        let range = text.range(of: #""sha256":""#)!
        let digit = range.upperBound
        text.replaceSubrange(digit...digit, with: text[digit] == "0" ? "1" : "0")
        var d = good.prefix(start) + Data(text.utf8)
        d.append(good.suffix(24))
        try assertRefused(d, containing: "tensor 'a' failed its checksum", verify: true)
    }

    func testHeaderDisagreeingWithTheIndexIsRefused() throws {
        let (good, _) = try goodFile()
        let start = good.count - 24 - trailer(good).hlen
        let text = String(decoding: good[start..<(good.count - 24)], as: UTF8.self).replacingOccurrences(of: #""chunks":3"#, with: #""chunks":2"#)
        var d = good.prefix(start) + Data(text.utf8)
        d.append(good.suffix(24))
        try assertRefused(d, containing: "declares 3 chunks, the index holds 4")
    }
}

/// Sizes a file declares never size an allocation beyond the format's limits.
final class ShardAllocationLimitTests: XCTestCase {
    func testAChunkOverTheLimitIsRefusedAtOpenAndAFrameWithoutADeclaredSizeOnRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("limits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // One chunk of 2^27 bytes (a hole on disk): a zstd magic and a frame header that declares no content
        // size, indexed as 2^32 raw bytes (within what 2^27 bytes of frame could expand to).
        let frameLength = 1 << 27
        func shard(rawLength: Int, rows: Int) throws -> URL {
            let url = dir.appendingPathComponent("s-\(rawLength).tshard")
            try Data(ShardFormat.magic + [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00]).write(to: url)
            XCTAssertEqual(truncate(url.path, off_t(8 + frameLength)), 0)
            func u64(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(v).littleEndian) { Array($0) } }
            let header = Array(#"{"meta":{},"tensors":{"x":{"chunks":1,"dtype":"u8","shape":[\#(rows)],"sha256":"\#(String(repeating: "0", count: 64))"}}}"#.utf8)
            let tail = u64(8) + u64(frameLength) + u64(rawLength) + u64(rows) + [UInt8](repeating: 0, count: 32)
                + header + u64(8 + frameLength) + u64(header.count) + ShardFormat.endMagic
            let handle = try FileHandle(forWritingTo: url)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(tail))
            try handle.close()
            return url
        }
        let huge = try shard(rawLength: 1 << 32, rows: 1 << 32)
        XCTAssertThrowsError(try ShardReader(url: huge)) { e in
            XCTAssertTrue("\(e)".contains("exceed the 1073741824-byte chunk limit"), "\(e)")
        }
        let small = try shard(rawLength: 1 << 20, rows: 1 << 20)
        let reader = try ShardReader(url: small)
        XCTAssertThrowsError(try reader.read("x", as: UInt8.self)) { e in
            XCTAssertTrue("\(e)".contains("does not declare its size"), "\(e)")
        }
    }
}

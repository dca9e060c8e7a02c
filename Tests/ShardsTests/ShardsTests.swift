import Foundation
import XCTest
@testable import Shards

final class ShardRoundTripTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func sampleWriter(level: Int32 = 3) throws -> ShardWriter {
        var w = ShardWriter(meta: ["split": "train", "ids": ["a", "b"], "alpha": 0.5], level: level)
        try w.add("f", (0..<1000).map { Float($0) * 0.25 - 3 }, shape: [10, 100])
        try w.add("i", (0..<7).map { Int32($0) - 3 }, shape: [7])
        try w.add("l", [Int64.max, Int64.min, 0], shape: [3, 1])
        try w.add("b", [UInt8]([0, 255, 7]), shape: [3])
        try w.add("empty", [Float](), shape: [0, 4])
        try w.addRagged("clips", values: (0..<30).map(Float.init), offsets: [0, 2, 2, 5], dim: 6)
        return w
    }

    func testEveryDTypeAndRaggedDataRoundTrip() throws {
        let url = dir.appendingPathComponent("a.tshard")
        let summary = try sampleWriter().write(to: url)
        let r = try ShardReader(url: url)
        XCTAssertEqual(r.meta["split"], "train")
        XCTAssertEqual(r.meta["alpha"], 0.5)
        let f = try r.read("f", as: Float.self)
        XCTAssertEqual(f.shape, [10, 100])
        XCTAssertEqual(f.values[999], 999 * 0.25 - 3)
        XCTAssertEqual(try r.read("i", as: Int32.self).values, [-3, -2, -1, 0, 1, 2, 3])
        XCTAssertEqual(try r.read("l", as: Int64.self).values, [Int64.max, Int64.min, 0])
        XCTAssertEqual(try r.read("b", as: UInt8.self).values, [0, 255, 7])
        XCTAssertEqual(try r.read("empty", as: Float.self).shape, [0, 4])
        let ragged = try r.readRagged("clips")
        XCTAssertEqual(ragged.dim, 6)
        XCTAssertEqual(ragged.offsets, [0, 2, 2, 5])
        XCTAssertEqual(ragged.values, (0..<30).map(Float.init))
        XCTAssertEqual(try r.verify(), summary.logicalHash)
        XCTAssertEqual(summary.bytes, r.fileSize)
    }

    func testLogicalHashIgnoresCompressionLevelButNotContent() throws {
        let a = try sampleWriter(level: 1).write(to: dir.appendingPathComponent("a.tshard"))
        let b = try sampleWriter(level: 19).write(to: dir.appendingPathComponent("b.tshard"))
        XCTAssertEqual(a.logicalHash, b.logicalHash)
        var w = try sampleWriter()
        w.meta = ["split": "val"]
        let c = try w.write(to: dir.appendingPathComponent("c.tshard"))
        XCTAssertNotEqual(a.logicalHash, c.logicalHash)
    }

    func testWrongDTypeAndMissingTensorAreNamed() throws {
        let url = dir.appendingPathComponent("a.tshard")
        try sampleWriter().write(to: url)
        let r = try ShardReader(url: url)
        XCTAssertThrowsError(try r.read("f", as: Int32.self)) { e in
            XCTAssertEqual("\(e)", "\(url.path): tensor 'f' is f32, expected i32")
        }
        XCTAssertThrowsError(try r.read("nope", as: Float.self)) { e in
            XCTAssertEqual(e as? ShardError, .missingTensor(file: url.path, tensor: "nope"))
        }
    }

    func testInvalidTensorsAreRefusedAndNothingIsWritten() throws {
        var w = ShardWriter()
        XCTAssertThrowsError(try w.add("x", [Float](repeating: 0, count: 5), shape: [2, 3]))
        XCTAssertThrowsError(try w.addRagged("r", values: [1, 2, 3, 4], offsets: [0, 1, 3], dim: 2))
        XCTAssertThrowsError(try w.addRagged("r", values: [1, 2, 3, 4], offsets: [0, 2, 1, 2], dim: 2))
        XCTAssertEqual(w.tensorNames, [])
        let url = dir.appendingPathComponent("none.tshard")
        XCTAssertThrowsError(try AtomicFile.write(to: url) { _ in throw ShardError.writeFailed(file: "x", reason: "boom") })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}

/// Each way a version-1 shard can be damaged is caught by the reader, with the file named in the message.
final class ShardCorruptionTests: XCTestCase {
    var dir: URL!
    var good: Data!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        good = try Version1Shard.bytes(meta: ["k": 1], tensors: [
            ("x", .f32, [64, 64], (0..<4096).map { Float($0).squareRoot() }.withUnsafeBytes { Data($0) }),
            ("y", .i32, [10], [Int32](repeating: 7, count: 10).withUnsafeBytes { Data($0) }),
        ])
    }

    func testVersion1IsReadWithTheSameLogicalHashAsVersion2() throws {
        let url = try write(good)
        let r = try ShardReader(url: url)
        XCTAssertEqual(r.version, 1)
        XCTAssertEqual(try r.read("x", as: Float.self).values[4095], Float(4095).squareRoot())
        XCTAssertEqual(try r.readRows("x", 10..<12, as: Float.self), (640..<768).map { Float($0).squareRoot() })
        var w = ShardWriter(meta: ["k": 1])
        try w.add("x", (0..<4096).map { Float($0).squareRoot() }, shape: [64, 64])
        try w.add("y", [Int32](repeating: 7, count: 10), shape: [10])
        let v2 = try w.write(to: dir.appendingPathComponent("v2.tshard"))
        XCTAssertEqual(try ShardReader(url: dir.appendingPathComponent("v2.tshard")).version, 2)
        XCTAssertEqual(try r.verify(), v2.logicalHash)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ data: Data) throws -> URL {
        let url = dir.appendingPathComponent("bad.tshard")
        try data.write(to: url)
        return url
    }

    /// A file with the given header and payload behind a valid preamble.
    func shard(header: String, payload: Data = Data(), version: UInt8 = 1, hlen: UInt64? = nil) -> Data {
        var d = Data(ShardFormat.magicPrefix + [version])
        let h = Data(header.utf8)
        withUnsafeBytes(of: (hlen ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
        return d + h + payload
    }

    func headerLength(_ data: Data) -> Int {
        data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))) }
    }

    func assertRefused(_ data: Data, containing text: String, verify: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try write(data)
        XCTAssertThrowsError(try { let r = try ShardReader(url: url); if verify { _ = try r.verify() } }(), file: file, line: line) { e in
            let message = "\(e)"
            XCTAssertTrue(message.hasPrefix(url.path + ": "), "message does not name the file: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(text), "expected '\(text)' in: \(message)", file: file, line: line)
        }
    }

    func testWrongMagicIsRefused() throws {
        var d = good!
        d[0] = UInt8(ascii: "X")
        try assertRefused(d, containing: "not a tensor shard")
        try assertRefused(Data("hello".utf8), containing: "truncated")
    }

    func testUnknownVersionIsRefused() throws {
        var d = good!
        d[7] = 3
        try assertRefused(d, containing: "version 3 is not supported (this build reads versions 1 and 2)")
    }

    func testOverlongHeaderIsRefusedBeforeReading() throws {
        try assertRefused(shard(header: "{}", hlen: 1 << 40), containing: "more than the 16777216-byte limit")
        try assertRefused(shard(header: "{}", hlen: 4096), containing: "runs past the end")
    }

    func testHeaderThatIsNotJSONIsRefused() throws {
        try assertRefused(shard(header: "{\"tensors\": [oops"), containing: "header is invalid (not JSON)")
        try assertRefused(shard(header: "{\"meta\": {}}"), containing: "no \"tensors\" object")
    }

    func testSizeMismatchIsRefused() throws {
        let h = #"{"tensors":{"x":{"dtype":"f32","shape":[3],"offset":0,"clen":0,"rlen":8,"sha256":"\#(String(repeating: "0", count: 64))"}}}"#
        try assertRefused(shard(header: h), containing: "tensor 'x' has inconsistent sizes")
    }

    func testOffsetsPastTheEndAreRefused() throws {
        let h = #"{"tensors":{"x":{"dtype":"u8","shape":[4],"offset":100,"clen":10,"rlen":4,"sha256":"\#(String(repeating: "0", count: 64))"}}}"#
        try assertRefused(shard(header: h, payload: Data(count: 20)), containing: "tensor 'x' lies outside the file")
    }

    func testTruncatedFileIsRefused() throws {
        try assertRefused(good.prefix(good.count - 10), containing: "truncated")
        try assertRefused(good.prefix(12), containing: "truncated")
    }

    func testFlippedPayloadByteFailsTheChecksum() throws {
        // Flip a byte deep inside the payload: either zstd's frame checksum or the block decoder catches it.
        var d = good!
        let payloadStart = 16 + headerLength(d)
        d[payloadStart + 40] ^= 0x5A
        let url = try write(d)
        let r = try ShardReader(url: url)
        XCTAssertThrowsError(try r.verify()) { e in
            let message = "\(e)"
            XCTAssertTrue(message.contains("tensor 'x'") && (message.contains("checksum") || message.contains("cannot be decompressed")), message)
        }
        XCTAssertNoThrow(try r.read("y", as: Int32.self), "an intact tensor stays readable on its own")
    }

    func testChangedRawDigestIsCaughtByVerify() throws {
        // A header whose SHA-256 does not match the (intact) frame: zstd passes, verification must not.
        var text = String(decoding: good[16..<(16 + headerLength(good))], as: UTF8.self)
        let range = text.range(of: #""sha256":""#)!
        let digitIndex = text.index(range.upperBound, offsetBy: 0)
        text.replaceSubrange(digitIndex...digitIndex, with: text[digitIndex] == "0" ? "1" : "0")
        let d = shard(header: text, payload: good[(16 + headerLength(good))...])
        try assertRefused(d, containing: "failed its checksum", verify: true)
    }
}

/// Builds version-1 files byte by byte (the format this project wrote before version 2), so that the reader's
/// support for them stays tested without a version-1 writer in the library.
enum Version1Shard {
    static func bytes(meta: JSONValue, tensors: [(name: String, dtype: DType, shape: [Int], raw: Data)]) throws -> Data {
        var entries: [String: JSONValue] = [:]
        var payload = Data()
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            let frame = try Zstd.compress(t.raw, level: 3)
            entries[t.name] = .object([
                "dtype": .string(t.dtype.rawValue), "shape": .array(t.shape.map { .number(Double($0)) }),
                "offset": .number(Double(payload.count)), "clen": .number(Double(frame.count)),
                "rlen": .number(Double(t.raw.count)), "sha256": .string(Hex.encode(SHA256.hash(data: t.raw))),
            ])
            payload += frame
        }
        let header = Data(JSONValue.object(["tensors": .object(entries), "meta": meta]).canonical.utf8)
        var d = Data(ShardFormat.magicPrefix + [1])
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { d.append(contentsOf: $0) }
        return d + header + payload
    }
}

import Foundation
import XCTest
@testable import Shards

/// The fixtures are written by scripts/make_npz_fixtures.py with numpy.
final class NumpyReaderTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    let expected: [Float] = (0..<12).map { Float($0) / 8 - 0.5 }

    func testStoredFloat32ArchiveIsRead() throws {
        let npz = try NpzArchive(url: fixtures.appendingPathComponent("stored_f4.npz"))
        XCTAssertEqual(try npz.keys, ["extra", "features"])
        let features = try npz.array("features")
        XCTAssertEqual(features.shape, [3, 4])
        XCTAssertEqual(features.floats(), expected)
        XCTAssertEqual(try npz.array("extra").int64s(), [1, 2, 3])
    }

    func testDeflatedHalfAndDoubleArchivesAreRead() throws {
        let half = try NpzArchive(url: fixtures.appendingPathComponent("deflated_f2.npz")).array("features")
        XCTAssertEqual(half.elementType, .f2)
        XCTAssertEqual(half.floats(), expected, "these values are exact in float16")
        let npz = try NpzArchive(url: fixtures.appendingPathComponent("deflated_f8_i4.npz"))
        XCTAssertEqual(try npz.array("last_hidden_state").floats(), expected)
        let ids = try npz.array("ids")
        XCTAssertEqual(ids.shape, [1, 2])
        XCTAssertEqual(try ids.int64s(), [5, -6])
    }

    func testScalarNpyHasEmptyShape() throws {
        let a = try NumpyArray(contentsOf: fixtures.appendingPathComponent("scalar_i8.npy"))
        XCTAssertEqual(a.shape, [])
        XCTAssertEqual(try a.int64s(), [42])
    }

    func testObjectFortranAndBigEndianArraysAreRefusedClearly() throws {
        let cases = [("object.npy", "object arrays"), ("fortran.npy", "fortran-order arrays are not supported"),
                     ("bigendian.npy", "big-endian dtype >f4 is not supported")]
        for (name, text) in cases {
            let url = fixtures.appendingPathComponent(name)
            XCTAssertThrowsError(try NumpyArray(contentsOf: url)) { e in
                XCTAssertTrue("\(e)".hasPrefix(url.path + ": "), "\(e)")
                XCTAssertTrue("\(e)".contains(text), "\(e)")
            }
        }
    }

    func testMissingKeyAndMissingFileAreNamed() throws {
        let url = fixtures.appendingPathComponent("stored_f4.npz")
        XCTAssertThrowsError(try NpzArchive(url: url).array("clip")) { e in
            XCTAssertEqual("\(e)", "\(url.path): no array 'clip' (has: extra, features)")
        }
        XCTAssertThrowsError(try NpzArchive(url: fixtures.appendingPathComponent("absent.npz"))) { e in
            XCTAssertTrue("\(e)".hasSuffix("absent.npz: file not found"), "\(e)")
        }
    }

    func testTruncatedNpyIsRefused() throws {
        var data = try Data(contentsOf: fixtures.appendingPathComponent("scalar_i8.npy"))
        data.removeLast(3)
        XCTAssertThrowsError(try NumpyArray(npy: data, source: "cut.npy")) { e in
            XCTAssertTrue("\(e)".contains("array data is 5 bytes"), "\(e)")
        }
    }
}

/// The `.npz` writer, and sizes a hostile archive declares, checked before anything is inflated.
final class NpzLimitTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("npz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testWrittenArchivesReadBack() throws {
        let url = dir.appendingPathComponent("v.npz")
        let values = (0..<(75 * 6)).map { Float($0) * 0.5 - 7 }
        try NpzWriter.write([("features", values, [75, 6]), ("extra", [1, 2, 3], [3])], to: url)
        let npz = try NpzArchive(url: url)
        XCTAssertEqual(try npz.keys, ["extra", "features"])
        let a = try npz.array("features")
        XCTAssertEqual(a.shape, [75, 6])
        XCTAssertEqual(a.floats(), values)
        XCTAssertEqual(try npz.array("extra").floats(), [1, 2, 3])
        XCTAssertThrowsError(try NpzWriter.write([("x", [1, 2], [3])], to: dir.appendingPathComponent("bad.npz")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad.npz").path))
    }

    /// Found by the numpy fuzz target: a float array holding a NaN trapped converting to Int64.
    func testNonIntegralFloatsAreAnErrorWhenReadAsIntegers() throws {
        let url = dir.appendingPathComponent("f.npz")
        try NpzWriter.write([("ids", [1, .nan, 3], [3])], to: url)
        XCTAssertThrowsError(try NpzArchive(url: url).array("ids").int64s(source: "f.npz:ids")) { e in
            XCTAssertEqual("\(e)", "f.npz:ids: element 1 (nan) is not an integer in Int64's range")
        }
        try NpzWriter.write([("ids", [1, 2.5, -3e9], [3])], to: url)
        XCTAssertEqual(try NpzArchive(url: url).array("ids").int64s(), [1, 2, -3_000_000_000])
    }

    func testAShapeTooLargeToAddressIsRefused() throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        XCTAssertThrowsError(try NumpyArray(npy: data, source: "big.npy")) { e in
            XCTAssertEqual("\(e)", "big.npy: shape (4294967296, 4294967296) is too large to address")
        }
    }

    /// A stored archive whose one member's uncompressed size (local header and central directory) is `size`.
    func archive(declaring size: UInt32, shape: [Int] = [4]) throws -> URL {
        let url = dir.appendingPathComponent("a.npz")
        try NpzWriter.write([("features", [Float](repeating: 1, count: shape.reduce(1, *)), shape)], to: url)
        var d = try Data(contentsOf: url)
        func patch(signature: UInt32, offset: Int) {
            var i = 0
            while i + 4 <= d.count {
                let s = d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) }
                if s == signature {
                    withUnsafeBytes(of: size.littleEndian) { d.replaceSubrange((i + offset)..<(i + offset + 4), with: $0) }
                }
                i += 1
            }
        }
        patch(signature: 0x0403_4B50, offset: 22)
        patch(signature: 0x0201_4B50, offset: 24)
        try d.write(to: url)
        return url
    }

    /// Found by the numpy fuzz target: a member marked as a symlink is read in one piece at the size its local
    /// header gives (here 4 GiB), which no other check sees.
    func testASymlinkMemberIsRefusedBeforeItIsRead() throws {
        let url = try archive(declaring: 144)
        var d = try Data(contentsOf: url)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { d.replaceSubrange(offset..<(offset + MemoryLayout<T>.size), with: $0) }
        }
        var i = 0
        while i + 4 <= d.count {
            switch d.withUnsafeBytes({ $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) }) {
            case 0x0403_4B50: put(UInt32.max, at: i + 18)  // local header: compressed size
            case 0x0201_4B50:
                put(UInt16(3 << 8 | 45), at: i + 4)  // central directory: made on Unix
                put(UInt32(0o120777) << 16, at: i + 38)  // external attributes: a symbolic link
            default: break
            }
            i += 1
        }
        try d.write(to: url)
        XCTAssertThrowsError(try NpzArchive(url: url).array("features")) { e in
            XCTAssertTrue("\(e)".contains("member 'features.npy' is a symlink entry, not an array file"), "\(e)")
        }
    }

    func testADeclaredSizeOverTheLimitIsRefused() throws {
        let url = try archive(declaring: 0xF000_0000)
        XCTAssertThrowsError(try NpzArchive(url: url).array("features")) { e in
            XCTAssertTrue("\(e)".contains("declares 4026531840 bytes, more than the 1073741824-byte limit"), "\(e)")
        }
    }

    /// Found by the numpy fuzz target: a member claiming half a megabyte of compressed data in a tiny archive
    /// made the reader reserve 514 MB before reading anything.
    func testACompressedSizeLargerThanTheArchiveIsRefused() throws {
        let url = try archive(declaring: 144)
        var d = try Data(contentsOf: url)
        var i = 0
        while i + 4 <= d.count {
            let signature = d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) }
            if signature == 0x0201_4B50 {
                withUnsafeBytes(of: UInt32(500_000).littleEndian) { d.replaceSubrange((i + 20)..<(i + 24), with: $0) }
            }
            i += 1
        }
        try d.write(to: url)
        XCTAssertThrowsError(try NpzArchive(url: url).array("features")) { e in
            XCTAssertTrue("\(e)".contains("declares 500000 compressed bytes, the archive has \(d.count)"), "\(e)")
        }
    }

    func testADeclaredSizeNoDeflateCanReachIsRefused() throws {
        let url = try archive(declaring: 200_000_000)
        XCTAssertThrowsError(try NpzArchive(url: url).array("features")) { e in
            XCTAssertTrue("\(e)".contains("more than deflate can expand to"), "\(e)")
        }
    }

    func testAnArrayHeaderDisagreeingWithTheDeclaredSizeIsRefusedEarly() throws {
        // The .npy header says 4 floats (144 bytes in all); the zip declares 100 more bytes than that.
        let url = try archive(declaring: 244)
        XCTAssertThrowsError(try NpzArchive(url: url).array("features")) { e in
            XCTAssertTrue("\(e)".contains("holds an array of 144 bytes by its .npy header, the zip declares 244"), "\(e)")
        }
    }
}

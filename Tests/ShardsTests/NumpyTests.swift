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
        XCTAssertEqual(ids.int64s(), [5, -6])
    }

    func testScalarNpyHasEmptyShape() throws {
        let a = try NumpyArray(contentsOf: fixtures.appendingPathComponent("scalar_i8.npy"))
        XCTAssertEqual(a.shape, [])
        XCTAssertEqual(a.int64s(), [42])
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

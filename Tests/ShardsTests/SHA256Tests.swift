import CSHA256
import Foundation
import XCTest
@testable import Shards

/// The SHA-256 every shard digest, cache key and content hash is made of: FIPS 180-2 example digests, and the
/// two block functions (portable and SHA extensions) against each other.
final class SHA256Tests: XCTestCase {
    private func hex(_ s: String) -> String { Hex.encode(SHA256.hash(data: Data(s.utf8))) }

    func testFIPSExampleDigests() {
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // 896 bits: the padding needs a second block.
        XCTAssertEqual(hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(Hex.encode(SHA256.hash(data: Data(repeating: UInt8(ascii: "a"), count: 1_000_000))),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Pieces of any size, including ones that straddle block boundaries, hash as the whole does.
    func testIncrementalUpdatesMatchOneShot() {
        var rng = SystemRandomNumberGenerator()
        let bytes = Data((0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let whole = SHA256.hash(data: bytes)
        for pieceSize in [1, 3, 63, 64, 65, 127, 1000] {
            var hasher = SHA256()
            var start = 0
            while start < bytes.count {
                let end = min(start + pieceSize, bytes.count)
                hasher.update(data: bytes.subdata(in: start..<end))
                start = end
            }
            XCTAssertEqual(hasher.finalize(), whole, "pieces of \(pieceSize) bytes")
        }
        // finalize() leaves the hasher as it was: more input after it continues the same stream.
        var hasher = SHA256()
        hasher.update(data: bytes.prefix(100))
        _ = hasher.finalize()
        hasher.update(data: bytes.dropFirst(100))
        XCTAssertEqual(hasher.finalize(), whole)
    }

    /// The two block functions agree on random blocks (skipped, with the reason, on a CPU without the extensions).
    func testAcceleratedBlocksMatchPortable() throws {
        try XCTSkipUnless(sha256_accelerated_available() == 1, "this CPU has no SHA extensions")
        var rng = SystemRandomNumberGenerator()
        for blocks in [1, 2, 7, 64] {
            let data = (0..<(64 * blocks)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var start = (0..<8).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }
            var portable = start
            sha256_blocks_portable(&portable, data, blocks)
            sha256_blocks_accelerated(&start, data, blocks)
            XCTAssertEqual(start, portable, "\(blocks) blocks")
        }
    }
}

import FuzzSupport
import Foundation
import Shards

/// Any bytes as a shard file: opening, reading every tensor, chunk and row range, and verifying must end in a
/// value or a `ShardError`, never a trap, an unbounded allocation or a sanitizer report.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzShardReader(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let url = ScratchFile.write(FuzzDriver.bytes(start, count), as: "input.tshard")
    guard let reader = try? ShardReader(url: url) else { return 0 }
    for name in reader.tensorNames {
        guard let info = try? reader.info(name) else { continue }
        switch info.dtype {
        case .f32: _ = try? reader.read(name, as: Float.self)
        case .i32: _ = try? reader.read(name, as: Int32.self)
        case .i64: _ = try? reader.read(name, as: Int64.self)
        case .u8: _ = try? reader.read(name, as: UInt8.self)
        }
        _ = try? reader.raw(name, checkDigest: true)
        if info.dtype == .f32 {
            for i in 0..<min(info.chunks.count, 4) { _ = try? reader.readChunk(name, i, as: Float.self) }
            let rows = info.chunkRowStarts.last ?? 0
            _ = try? reader.readRows(name, (rows / 3)..<rows, as: Float.self)
            _ = try? reader.readOffsets(name)
        }
    }
    _ = try? reader.verify()
    return 0
}

/// The executable's entry point (SwiftPM's name for it): libFuzzer's loop over `fuzzShardReader`.
@_cdecl("fuzz_shard_reader_main")
public func fuzzEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzShardReader)
}

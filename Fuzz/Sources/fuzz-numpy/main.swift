import FuzzSupport
import Foundation
import Shards

/// Any bytes as a `.npy` array and as a `.npz` archive: a value or a `NumpyError`, never a trap or a bomb.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumpy(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = FuzzDriver.bytes(start, count)
    if let array = try? NumpyArray(npy: Data(bytes), source: "input.npy") {
        _ = array.floats()
        _ = try? array.int64s()
    }
    let url = ScratchFile.write(bytes, as: "input.npz")
    if let archive = try? NpzArchive(url: url), let keys = try? archive.keys {
        for key in keys.prefix(4) { _ = try? archive.array(key).floats() }
    }
    return 0
}

/// The executable's entry point (SwiftPM's name for it): libFuzzer's loop over `fuzzNumpy`.
@_cdecl("fuzz_numpy_main")
public func fuzzEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzNumpy)
}

import CFuzzer

/// Runs libFuzzer from an executable's own entry point. SwiftPM links every executable product with an entry
/// point of its own (`<module>_main`, aliased to `main`), so each harness defines that entry point and hands
/// libFuzzer its harness here; it also exports the harness as `LLVMFuzzerTestOneInput`, which libFuzzer's
/// runtime references.
public enum FuzzDriver {
    public typealias Harness = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    public static func run(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ harness: Harness) -> CInt {
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, harness)
    }

    /// The fuzzer's input as raw bytes (libFuzzer passes a null pointer for the empty input).
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> UnsafeRawBufferPointer {
        guard let data, count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: data, count: count)
    }
}

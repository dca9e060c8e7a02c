import FuzzSupport
import Foundation
import PipelineDriver

/// Any bytes as a pipeline.json (first byte even) or as a stage file (odd), in a scratch project holding a
/// copy of the real stage files (`FUZZ_PROJECT` names the project root): a spec or a `PipelineSpecError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPipelineSpec(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = FuzzDriver.bytes(start, count)
    let project = ScratchProject.root
    if count > 0 && bytes[0] % 2 == 1 {
        let url = project.appendingPathComponent("stages/fuzz.json")
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes.dropFirst()))
        _ = try? StageDefinition(url: url, displayName: "stages/fuzz.json")
    } else {
        let url = project.appendingPathComponent("pipeline.json")
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes.dropFirst(count > 0 ? 1 : 0)))
        _ = try? PipelineSpec(url: url)
    }
    return 0
}

/// A scratch copy of the project's `stages/` folder, made once per process.
enum ScratchProject {
    static let root: URL = {
        let dir = ScratchFile.root.appendingPathComponent("project")
        let stages = dir.appendingPathComponent("stages")
        try? FileManager.default.createDirectory(at: stages, withIntermediateDirectories: true)
        let source = URL(fileURLWithPath: ProcessInfo.processInfo.environment["FUZZ_PROJECT"] ?? ".").appendingPathComponent("stages")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: source.path)) ?? [] where name.hasSuffix(".json") {
            try? FileManager.default.copyItem(at: source.appendingPathComponent(name), to: stages.appendingPathComponent(name))
        }
        return dir
    }()
}

/// The executable's entry point (SwiftPM's name for it): libFuzzer's loop over `fuzzPipelineSpec`.
@_cdecl("fuzz_pipeline_spec_main")
public func fuzzEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzPipelineSpec)
}

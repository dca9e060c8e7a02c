import Foundation
import Shards
import XCTest

/// `stages/*.json` repeat each stage's parameters for the driver; the executables are the source of truth.
final class StageFilesTests: XCTestCase {
    func testEveryStageFileDeclaresTheParamsItsExecutablePrints() throws {
        let dir = StageProcess.repositoryRoot.appendingPathComponent("stages")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
        var checked: [String] = []
        for file in files {
            let stage = try JSONValue.parse(Data(contentsOf: dir.appendingPathComponent(file)), source: file)
            let command = try XCTUnwrap(stage["command"]?.stringValue, file)
            // Every stage command is an executable this test target depends on, so it is built: a stage file
            // naming anything else fails here rather than being skipped.
            XCTAssertTrue(FileManager.default.isExecutableFile(atPath: StageProcess.productsDirectory.appendingPathComponent(command).path),
                          "\(file): command '\(command)' is not a built executable of this package")
            let args = (stage["args"]?.arrayValue ?? []).compactMap(\.stringValue)
            let result = try StageProcess.run(command, args + ["--describe"])
            XCTAssertEqual(result.status, 0, "\(file): \(result.stderr)")
            let printed = try JSONValue.parse(result.stdout, source: "\(command) --describe").objectValue ?? [:]
            let declared = stage["params"]?.objectValue ?? [:]
            // Name the params that differ rather than printing both objects.
            let differing = Set(declared.keys).union(printed.keys).filter { declared[$0] != printed[$0] }.sorted().map { name in
                "\(name): file \(declared[name]?.canonical ?? "(absent)"), executable \(printed[name]?.canonical ?? "(absent)")"
            }
            XCTAssertEqual(differing, [], "\(file) disagrees with `\(([command] + args).joined(separator: " ")) --describe`")
            checked.append(file)
        }
        XCTAssertEqual(checked, files, "every stage file is checked")
        XCTAssertEqual(files, ["ingest-qvhighlights.json", "mask-eval.json", "pair-mining.json", "report.json",
                               "synthetic-benchmark.json", "train.json", "video-synthesis.json", "ingest-three-splits.json"].sorted())
    }

    func testARunWithoutOutIsRefusedWithOneLine() throws {
        let result = try StageProcess.run("pair-mining", ["--params", "{}"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.errorLines, ["error: pair-mining: needs --out DIR"], result.stderr)
    }
}

import Foundation
import Shards
import XCTest

/// The train stage, killed with SIGKILL after an epoch and started again, ends with exactly the
/// weights and log of an uninterrupted run.
final class TrainResumeTests: XCTestCase {
    let params = #"{"model": "td-detr", "hidden": 16, "heads": 2, "ffn": 32, "t2v_layers": 1, "enc_layers": 1, "dec_layers": 1, "queries": 4, "epochs": 6, "eval_every": 4, "batch_size": 8, "lr": 0.001, "threads": 1}"#

    func makeData(_ root: URL) throws -> [String] {
        try StageProcess.trainingData(root, params: params)
    }

    /// The log without wall-clock times and the process's own resource figures, which no two runs share.
    func epochs(_ url: URL) throws -> [JSONValue] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
            guard case .object(var o) = try JSONValue.parse(String(line), source: url.path) else { return .null }
            // Measured, not computed: wall time and the process's resources differ between runs.
            o["seconds"] = nil
            o["train_seconds"] = nil
            o["resources"] = nil
            return .object(o)
        }
    }

    func testKilledRunResumesToTheSameResultAsAnUninterruptedOne() throws {
        let root = try StageProcess.temporaryDirectory("train-resume", for: self)
        try assertKilledRunResumesToTheSameResult(root: root, inputs: try makeData(root))
    }

    /// The authors' code's recipe draws its pairs and samples from the seed, the epoch and the step: a resumed
    /// run is the same bits too.
    func testKilledRunOfTheAuthorsCodeRecipeResumesToTheSameResult() throws {
        let root = try StageProcess.temporaryDirectory("train-resume-recipe", for: self)
        var inputs = try makeData(root)
        inputs[inputs.count - 1] = params.replacingOccurrences(of: #""model": "td-detr""#, with: #""model": "td-detr", "recipe": "authors-code""#)
        try assertKilledRunResumesToTheSameResult(root: root, inputs: inputs)
        // The recipe's model and in-batch synthesis were used.
        let last = try ShardReader(url: root.appendingPathComponent("straight/last.tshard"))
        let config = try XCTUnwrap(last.meta["extra"]?["model_config"])
        XCTAssertEqual(config["encoderLayers"]?.intValue, 4)
        XCTAssertEqual(config["tdemVariant"]?.stringValue, "authorsCode")
        XCTAssertEqual(last.meta["extra"]?["synthesis"]?["source"]?.stringValue, "authors-code")
    }

    func testTheAuthorsCodeRecipeIsRefusedForAnotherModel() throws {
        let root = try StageProcess.temporaryDirectory("train-recipe-model", for: self)
        let result = try StageProcess.run("train", ["--out", root.appendingPathComponent("out").path, "--params",
                                                    #"{"model": "qd-detr", "recipe": "authors-code"}"#])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(result.errorLines, ["error: train: recipe authors-code is TD-DETR's; it cannot apply to model qd-detr"], result.stderr)
    }

    /// Trains once straight through, once killed after a saved epoch and resumed; both end with the same bits.
    func assertKilledRunResumesToTheSameResult(root: URL, inputs: [String]) throws {
        let straight = root.appendingPathComponent("straight")
        let uninterrupted = try StageProcess.run("train", ["--out", straight.path, "--resume-dir", root.appendingPathComponent("s1").path] + inputs)
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.stderr)

        // Start again in another resume directory, and SIGKILL the run once its first epoch is saved.
        let resumeDir = root.appendingPathComponent("s2")
        let killed = root.appendingPathComponent("killed")
        let process = Process()
        process.executableURL = StageProcess.productsDirectory.appendingPathComponent("train")
        process.arguments = ["--out", killed.path, "--resume-dir", resumeDir.path] + inputs
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let state = resumeDir.appendingPathComponent("state.tshard")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: state.path) && process.isRunning && Date() < deadline { usleep(2000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, "the run was killed before it finished")
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed.appendingPathComponent("checkpoint.tshard").path),
                       "a killed run leaves no final output")
        let savedEpoch = try ShardReader(url: state).meta["extra"]?["epoch"]?.intValue ?? 0
        XCTAssertGreaterThanOrEqual(savedEpoch, 1)
        XCTAssertLessThan(savedEpoch, 6)

        let resumed = try StageProcess.run("train", ["--out", killed.path, "--resume-dir", resumeDir.path] + inputs)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resuming after epoch \(savedEpoch) of 6"), resumed.stdout)

        for file in ["last.tshard", "checkpoint.tshard"] {
            XCTAssertEqual(try ShardReader(url: killed.appendingPathComponent(file)).verify(),
                           try ShardReader(url: straight.appendingPathComponent(file)).verify(), "\(file) differs after resuming")
        }
        XCTAssertEqual(try epochs(killed.appendingPathComponent("log.jsonl")), try epochs(straight.appendingPathComponent("log.jsonl")))
        // eval_every 4 of 6 epochs: val after epochs 4 and 6 only.
        let scored = try epochs(straight.appendingPathComponent("log.jsonl")).compactMap { $0["val"] == nil ? nil : $0["epoch"]?.intValue }
        XCTAssertEqual(scored, [4, 6])
    }

    func testResumeStateOfOtherParamsIsRefused() throws {
        let root = try StageProcess.temporaryDirectory("train-resume", for: self)
        let inputs = try makeData(root)
        let resumeDir = root.appendingPathComponent("s")
        XCTAssertEqual(try StageProcess.run("train", ["--out", root.appendingPathComponent("a").path, "--resume-dir", resumeDir.path] + inputs).status, 0)
        // A finished run keeps its state; the same directory with other params must not be resumed from.
        var other = inputs
        other[other.count - 1] = params.replacingOccurrences(of: #""lr": 0.001"#, with: #""lr": 0.002"#)
        let result = try StageProcess.run("train", ["--out", root.appendingPathComponent("b").path, "--resume-dir", resumeDir.path] + other)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errorLines.first?.contains("resumable state belongs to other params") ?? false, result.stderr)
    }

    func testADamagedResumeStateIsSetAsideAndTrainingRestartsClean() throws {
        let root = try StageProcess.temporaryDirectory("train-resume", for: self)
        var inputs = try makeData(root)
        inputs[inputs.count - 1] = params.replacingOccurrences(of: #""epochs": 6"#, with: #""epochs": 2"#)
        let resumeDir = root.appendingPathComponent("s")
        func train(_ out: String) throws -> StageProcess.Result {
            try StageProcess.run("train", ["--out", root.appendingPathComponent(out).path, "--resume-dir", resumeDir.path] + inputs)
        }
        func flipByte(in file: URL) throws {
            var bytes = try Data(contentsOf: file)
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: file)
        }
        let clean = try train("clean")
        XCTAssertEqual(clean.status, 0, clean.stderr)
        let cleanResult = try ShardReader(url: root.appendingPathComponent("clean/last.tshard")).verify()

        let state = resumeDir.appendingPathComponent("state.tshard")
        try flipByte(in: state)
        let afterState = try train("after-state")
        XCTAssertEqual(afterState.status, 0, afterState.stderr)
        XCTAssertTrue(afterState.stderr.contains("warning: \(state.path) set aside as state.tshard.corrupt: "), afterState.stderr)
        XCTAssertFalse(afterState.stdout.contains("resuming"), afterState.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: state.path + ".corrupt"))
        XCTAssertEqual(try ShardReader(url: root.appendingPathComponent("after-state/last.tshard")).verify(), cleanResult,
                       "a clean restart trains the same model")

        // The state is good again; now its best checkpoint is damaged, which would be adopted as the output.
        let best = resumeDir.appendingPathComponent("best.tshard")
        try flipByte(in: best)
        let afterBest = try train("after-best")
        XCTAssertEqual(afterBest.status, 0, afterBest.stderr)
        XCTAssertTrue(afterBest.stderr.contains("warning: \(best.path) set aside as best.tshard.corrupt: "), afterBest.stderr)
        XCTAssertEqual(try ShardReader(url: root.appendingPathComponent("after-best/checkpoint.tshard")).verify(),
                       try ShardReader(url: root.appendingPathComponent("clean/checkpoint.tshard")).verify())
    }
}

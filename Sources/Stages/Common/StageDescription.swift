import ArgumentParser
import Foundation
import Shards

/// What a stage command declares about itself; `--describe` prints it in the `stages/*.json` shape so the
/// files the driver reads can be checked against the code.
public protocol DescribedStage {
    static var params: [ParamDecl] { get }
    static var inputRoles: [String] { get }
}

extension DescribedStage {
    public static func describeParams() -> String {
        var o: [String: JSONValue] = [:]
        for p in params { o[p.name] = p.json }
        return JSONValue.object(o).pretty
    }

    public static func resolve(_ io: StageIO, stage: String) throws -> StageParams {
        guard !io.out.isEmpty else { throw StageError("\(stage): needs --out DIR") }
        try io.checkRoles(inputRoles, stage: stage)
        return try StageParams(json: io.params, declared: params, stage: stage)
    }
}

/// A stage executable: declares its params and inputs, and computes its outputs from resolved params.
/// `run()` (shared) handles `--describe`, parameter checking, and removing what a failed run wrote.
public protocol StageCommand: ParsableCommand, DescribedStage {
    /// The name errors begin with, e.g. "video-synthesis".
    static var stageName: String { get }
    var io: StageIO { get }
    func execute(_ params: StageParams, outputs: StageOutputs) throws
}

extension StageCommand {
    public func run() throws {
        if io.describe {
            print(Self.describeParams())
            return
        }
        ProcessResources.markStart()
        try runReportingFailure {
            let params = try Self.resolve(io, stage: Self.stageName)
            let outputs = try StageOutputs(directory: io.outDirectory)
            do {
                try execute(params, outputs: outputs)
            } catch {
                outputs.discard()
                throw error
            }
        }
    }
}

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

import Foundation
import Shards

/// The identity of a stage run (ARCHITECTURE.md section 5): stage name, code fingerprint, canonical params
/// and the (role, input hash) pairs, sorted by role but in their given order within a role (a stage may
/// treat its first source of a role differently). Equal keys mean the run's outputs can be reused.
public enum CacheKey {
    public static func make(stage: String, codeFingerprint: String, params: JSONValue, inputs: [ArtifactRef]) -> String {
        let sortedInputs = inputs.enumerated().sorted { ($0.element.role, $0.offset) < ($1.element.role, $1.offset) }.map(\.element)
        let document = JSONValue.object([
            "version": 1,
            "stage": .string(stage),
            "code": .string(codeFingerprint),
            "params": params,
            "inputs": .array(sortedInputs.map { .array([.string($0.role), .string($0.hash)]) }),
        ])
        return Hex.encode(SHA256.hash(data: Data(document.canonical.utf8)))
    }
}

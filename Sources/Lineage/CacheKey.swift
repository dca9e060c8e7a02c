import Crypto
import Foundation
import Shards

/// The identity of a stage run (ARCHITECTURE.md section 5): stage name, code fingerprint, canonical params
/// and the sorted (role, input hash) pairs. Equal keys mean the run's outputs can be reused.
public enum CacheKey {
    public static func make(stage: String, codeFingerprint: String, params: JSONValue, inputs: [ArtifactRef]) -> String {
        let sortedInputs = inputs.sorted { ($0.role, $0.hash) < ($1.role, $1.hash) }
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

import Foundation
import Lineage
import Shards

/// What the driver knows about a node before deciding to run it.
public struct NodeEvaluation: Sendable {
    public enum State: Sendable, Equatable {
        /// A successful run with this cache key exists and its outputs verify.
        case fresh(runID: Int64)
        /// Must run; the reason is for people.
        case stale(reason: String)
        /// An upstream node must run first, so this node's inputs are not known yet.
        case waiting(upstream: String)
    }

    public let node: String
    public let state: State
    public let cacheKey: String?
    public let inputs: [ArtifactRef]
    public let codeFingerprint: String
    /// {code path: content hash} behind the fingerprint.
    public var codePaths: [String: String] = [:]
    public let outputs: [String: ArtifactRef]
    /// For a fresh node, what the run that produced its outputs used (nil if that run predates the record).
    public var resources: RunResources? = nil
}

extension Pipeline {
    /// The code fingerprint: the command and the content of every code path the stage file lists
    /// (a script command is part of its own code), with each path's hash. Rebuilding unchanged sources
    /// leaves it unchanged.
    func codeFingerprint(_ definition: StageDefinition) throws -> (fingerprint: String, paths: [String: String]) {
        if let cached = fingerprintCache[definition.file] { return cached }
        var paths = definition.code
        if !definition.isPackageProduct { paths.append(definition.command) }
        var hasher = SHA256()
        hasher.update(data: Data("command \(([definition.command] + definition.arguments).joined(separator: " "))\n".utf8))
        var hashes: [String: String] = [:]
        for path in Set(paths).sorted() {
            let url = plan.spec.projectRoot.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw PipelineSpecError(definition.file, "code", "'\(path)' does not exist")
            }
            let hash = try contentHasher.hash(of: url)
            hashes[path] = hash
            hasher.update(data: Data("\(path)\0\(hash)\n".utf8))
        }
        let result = (Hex.encode(hasher.finalize()), hashes)
        fingerprintCache[definition.file] = result
        return result
    }

    /// Resolves a node's inputs to hashes (given the current outputs of its upstream nodes), its cache key,
    /// and whether a reusable run exists.
    func evaluate(_ node: PlanNode, upstreamOutputs: [String: [String: ArtifactRef]]) throws -> NodeEvaluation {
        let (fp, codePaths) = try codeFingerprint(node.stage.definition)
        var inputs: [ArtifactRef] = []
        for (role, source) in node.inputs {
            switch source {
            case let .output(up, file):
                guard let outputs = upstreamOutputs[up], let ref = outputs[file] else {
                    return NodeEvaluation(node: node.id, state: .waiting(upstream: up), cacheKey: nil, inputs: [],
                                          codeFingerprint: fp, outputs: [:])
                }
                inputs.append(ArtifactRef(role: role, hash: ref.hash))
            case let .file(path):
                let url = plan.spec.projectRoot.appendingPathComponent(path)
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw PipelineSpecError(plan.spec.url.lastPathComponent, "stages.\(node.stage.name).inputs.\(role)",
                                            "input file '\(path)' does not exist")
                }
                inputs.append(ArtifactRef(role: role, hash: try contentHasher.hash(of: url)))
            }
        }
        let key = CacheKey.make(stage: node.stage.name, codeFingerprint: fp, params: node.params, inputs: inputs)
        var evaluation = try decide(node, key: key, inputs: inputs, fingerprint: fp, codePaths: codePaths)
        evaluation.codePaths = codePaths
        return evaluation
    }

    private func decide(_ node: PlanNode, key: String, inputs: [ArtifactRef], fingerprint fp: String,
                        codePaths: [String: String]) throws -> NodeEvaluation {
        if let run = try manifest.successfulRun(cacheKey: key) {
            let recorded = Set(run.outputs.map(\.role))
            if let missing = node.stage.definition.outputs.first(where: { !recorded.contains($0) }) {
                return NodeEvaluation(node: node.id, state: .stale(reason: "the cached run has no output \(missing) (the stage's outputs changed)"),
                                      cacheKey: key, inputs: inputs, codeFingerprint: fp, outputs: [:])
            }
            if let problem = try outputsProblem(run) {
                return NodeEvaluation(node: node.id, state: .stale(reason: problem), cacheKey: key, inputs: inputs,
                                      codeFingerprint: fp, outputs: [:])
            }
            var outputs: [String: ArtifactRef] = [:]
            for o in run.outputs { outputs[o.role] = o }
            return NodeEvaluation(node: node.id, state: .fresh(runID: run.id!), cacheKey: key, inputs: inputs,
                                  codeFingerprint: fp, outputs: outputs, resources: run.resources)
        }
        let reason = try staleReason(node, key: key, params: node.params, inputs: inputs, fingerprint: fp, codePaths: codePaths)
        return NodeEvaluation(node: node.id, state: .stale(reason: reason), cacheKey: key, inputs: inputs,
                              codeFingerprint: fp, outputs: [:])
    }

    /// Nil when every output of the run is in the store with its recorded content. A damaged object (one
    /// that fails to verify, whatever the error, or is not a regular file) makes the node stale, so that
    /// its producer runs again and the store repairs itself.
    func outputsProblem(_ run: RunRecord) throws -> String? {
        for o in run.outputs {
            guard let artifact = try manifest.artifact(hash: o.hash) else { return "output \(o.role) is not in the manifest" }
            let url = store.url(relative: artifact.path)
            switch ArtifactStore.kind(of: url) {
            case nil: return "output \(o.role) is missing from the store"
            case .some(S_IFREG): break
            default: return "output \(o.role) is damaged in the store (not a regular file)"
            }
            let actual: String
            do { actual = try contentHasher.hash(of: url) } catch { return "output \(o.role) is corrupt (\(error))" }
            if actual != o.hash { return "output \(o.role) was modified in the store" }
        }
        return nil
    }

    /// Why a node must run, compared with its last successful run.
    func staleReason(_ node: PlanNode, key: String, params: JSONValue, inputs: [ArtifactRef], fingerprint: String,
                     codePaths: [String: String]) throws -> String {
        if let latest = try manifest.latestRun(node: node.id, succeededOnly: false), latest.status == RunRecord.failed,
           latest.cacheKey == key {
            return "last run failed: \(latest.error ?? "unknown error")"
        }
        guard let last = try manifest.latestRun(node: node.id, succeededOnly: true) else { return "never run" }
        var reasons: [String] = []
        if let old = try? JSONValue.parse(last.paramsJSON, source: "manifest"), case .object(let o) = old,
           case .object(let n) = params {
            for key in Set(o.keys).union(n.keys).sorted() where o[key] != n[key] {
                reasons.append("params.\(key) changed \(o[key]?.canonical ?? "(unset)") -> \(n[key]?.canonical ?? "(unset)")")
            }
        }
        if last.codeFingerprint != fingerprint {
            let old = (try? JSONValue.parse(last.codePathsJSON, source: "manifest"))?.objectValue ?? [:]
            let changed = codePaths.keys.sorted().filter { old[$0]?.stringValue != codePaths[$0] }
            let removed = old.keys.sorted().filter { codePaths[$0] == nil }
            let named = changed + removed
            reasons.append(named.isEmpty ? "code changed (command)" : "code changed (\(named.joined(separator: ", ")))")
        }
        let oldInputs = Dictionary(grouping: last.inputs, by: \.role).mapValues { $0.map(\.hash).sorted() }
        let newInputs = Dictionary(grouping: inputs, by: \.role).mapValues { $0.map(\.hash).sorted() }
        for role in Set(oldInputs.keys).union(newInputs.keys).sorted() where oldInputs[role] != newInputs[role] {
            let from = oldInputs[role].map { $0.map { String($0.prefix(8)) }.joined(separator: ",") } ?? "(none)"
            let to = newInputs[role].map { $0.map { String($0.prefix(8)) }.joined(separator: ",") } ?? "(none)"
            reasons.append("input \(role) changed \(from) -> \(to)")
        }
        if reasons.isEmpty { reasons.append("stage name or cache format changed") }
        return reasons.joined(separator: "; ")
    }
}

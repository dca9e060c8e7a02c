import Foundation
import Shards

/// Where a stage input comes from: another stage's output file, or a file or folder of the project.
public enum InputSource: Equatable, Sendable {
    case output(stage: String, file: String)
    case file(path: String)

    var text: String {
        switch self {
        case let .output(stage, file): return "\(stage)/\(file)"
        case let .file(path): return "file:\(path)"
        }
    }
}

/// One entry of pipeline.json's `stages`.
public struct StageInstance: Sendable {
    public let name: String
    public let definition: StageDefinition
    public let params: [String: JSONValue]
    public let inputs: [String: [InputSource]]
    /// A parameter sweep: every combination is its own node (and cached run).
    public let matrix: [(key: String, values: [JSONValue])]
    /// Run once per node of this upstream stage, taking that node's outputs.
    public let foreach: String?
    /// What each of its jobs asks a cluster scheduler for (pipeline.json's `resources`); nil when not set.
    public var resources: StageResources? = nil
}

/// pipeline.json: the stages, their parameters and how their inputs connect, validated on load.
public struct PipelineSpec: Sendable {
    public let url: URL
    public let projectRoot: URL
    /// In a topological order (upstream first), ties broken by name.
    public let stages: [StageInstance]

    static let stageKeys: Set<String> = ["uses", "params", "inputs", "matrix", "foreach", "resources"]

    public init(url: URL) throws {
        self.url = url
        projectRoot = url.deletingLastPathComponent()
        let file = url.lastPathComponent
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PipelineSpecError(url.path, "", "cannot read (no such file?)")
        }
        let root: JSONValue
        do { root = try JSONValue.parse(data, source: file) } catch {
            throw PipelineSpecError(file, "", "not valid JSON: \(error)")
        }
        guard case .object(let top) = root else { throw PipelineSpecError(file, "", "must be a JSON object") }
        if let unknown = top.keys.sorted().first(where: { $0 != "version" && $0 != "stages" && $0 != "description" }) {
            throw PipelineSpecError(file, unknown, "unknown key (expected version, description, stages)")
        }
        guard top["version"]?.intValue == 1 else { throw PipelineSpecError(file, "version", "must be 1") }
        guard case .object(let stageEntries)? = top["stages"], !stageEntries.isEmpty else {
            throw PipelineSpecError(file, "stages", "must be a non-empty object")
        }

        var instances: [String: StageInstance] = [:]
        var definitions: [String: StageDefinition] = [:]
        for name in stageEntries.keys.sorted() {
            let place = "stages.\(name)"
            guard !name.isEmpty, !name.contains("/"), !name.contains("@"), !name.contains(" ") else {
                throw PipelineSpecError(file, place, "a stage name may not be empty or contain '/', '@' or spaces")
            }
            guard case .object(let entry) = stageEntries[name]! else { throw PipelineSpecError(file, place, "must be an object") }
            if let unknown = entry.keys.sorted().first(where: { !Self.stageKeys.contains($0) }) {
                throw PipelineSpecError(file, "\(place).\(unknown)", "unknown key (expected \(Self.stageKeys.sorted().joined(separator: ", ")))")
            }
            guard let uses = entry["uses"]?.stringValue else {
                throw PipelineSpecError(file, "\(place).uses", "missing: name the stage file, e.g. \"stages/train.json\"")
            }
            let defURL = projectRoot.appendingPathComponent(uses)
            let definition: StageDefinition
            if let cached = definitions[uses] {
                definition = cached
            } else {
                guard FileManager.default.fileExists(atPath: defURL.path) else {
                    throw PipelineSpecError(file, "\(place).uses", "stage file '\(uses)' does not exist")
                }
                definition = try StageDefinition(url: defURL, displayName: uses)
                definitions[uses] = definition
            }

            var params: [String: JSONValue] = [:]
            for (key, value) in entry["params"]?.objectValue ?? [:] {
                guard let spec = definition.params[key] else {
                    throw PipelineSpecError(file, "\(place).params.\(key)", "unknown param (\(uses) declares: \(definition.params.keys.sorted().joined(separator: ", ")))")
                }
                if let problem = spec.problem(with: value) { throw PipelineSpecError(file, "\(place).params.\(key)", problem) }
                params[key] = value
            }
            if entry["params"] != nil && entry["params"]?.objectValue == nil {
                throw PipelineSpecError(file, "\(place).params", "must be an object")
            }

            var matrix: [(key: String, values: [JSONValue])] = []
            if let m = entry["matrix"] {
                guard case .object(let axes) = m else { throw PipelineSpecError(file, "\(place).matrix", "must be an object of lists") }
                for key in axes.keys.sorted() {
                    guard let spec = definition.params[key] else {
                        throw PipelineSpecError(file, "\(place).matrix.\(key)", "unknown param")
                    }
                    guard case .array(let values)? = axes[key], !values.isEmpty else {
                        throw PipelineSpecError(file, "\(place).matrix.\(key)", "must be a non-empty list")
                    }
                    for (i, v) in values.enumerated() {
                        if let problem = spec.problem(with: v) { throw PipelineSpecError(file, "\(place).matrix.\(key)[\(i)]", problem) }
                    }
                    if params[key] != nil {
                        throw PipelineSpecError(file, "\(place).matrix.\(key)", "is also set in params; set it in one place")
                    }
                    matrix.append((key, values))
                }
            }

            var inputs: [String: [InputSource]] = [:]
            for (role, value) in entry["inputs"]?.objectValue ?? [:] {
                let rplace = "\(place).inputs.\(role)"
                guard let roleSpec = definition.inputs[role] else {
                    throw PipelineSpecError(file, rplace, "unknown input (\(uses) declares: \(definition.inputs.keys.sorted().joined(separator: ", ")))")
                }
                let texts: [JSONValue]
                if case .array(let list) = value { texts = list } else { texts = [value] }
                if texts.count != 1 && !roleSpec.many {
                    throw PipelineSpecError(file, rplace, "takes one source, got \(texts.count)")
                }
                inputs[role] = try texts.enumerated().map { i, t in
                    guard let s = t.stringValue else { throw PipelineSpecError(file, rplace, "must be \"stage/file\" or \"file:path\"") }
                    return try Self.parseSource(s, file: file, place: texts.count > 1 ? "\(rplace)[\(i)]" : rplace)
                }
            }
            for role in definition.inputs.keys.sorted() where inputs[role] == nil && !definition.inputs[role]!.optional {
                throw PipelineSpecError(file, "\(place).inputs", "missing input '\(role)' (\(definition.inputs[role]!.doc))")
            }
            let foreach = entry["foreach"]?.stringValue
            if entry["foreach"] != nil && foreach == nil {
                throw PipelineSpecError(file, "\(place).foreach", "must be a stage name")
            }
            let resources = try entry["resources"].map { try StageResources.parse($0, file: file, place: "\(place).resources") }
            instances[name] = StageInstance(name: name, definition: definition, params: params, inputs: inputs,
                                            matrix: matrix, foreach: foreach, resources: resources)
        }

        // Every referenced stage and output must exist, and the graph must be acyclic.
        for name in instances.keys.sorted() {
            let inst = instances[name]!
            for role in inst.inputs.keys.sorted() {
                for source in inst.inputs[role]! {
                    guard case let .output(stage, out) = source else { continue }
                    guard let upstream = instances[stage] else {
                        throw PipelineSpecError(file, "stages.\(name).inputs.\(role)", "'\(source.text)': no stage named '\(stage)'")
                    }
                    guard upstream.definition.outputs.contains(out) else {
                        throw PipelineSpecError(file, "stages.\(name).inputs.\(role)",
                                                "'\(source.text)' is not an output of stage '\(stage)' (it writes: \(upstream.definition.outputs.joined(separator: ", ")))")
                    }
                }
            }
            if let f = inst.foreach {
                guard instances[f] != nil else { throw PipelineSpecError(file, "stages.\(name).foreach", "no stage named '\(f)'") }
                let uses = inst.inputs.values.flatMap { $0 }.contains { if case .output(f, _) = $0 { return true } else { return false } }
                guard uses else { throw PipelineSpecError(file, "stages.\(name).foreach", "'\(f)' is not one of this stage's inputs") }
            }
        }
        stages = try Self.topologicalOrder(instances, file: file)
    }

    static func parseSource(_ s: String, file: String, place: String) throws -> InputSource {
        if s.hasPrefix("file:") {
            let path = String(s.dropFirst(5))
            guard !path.isEmpty else { throw PipelineSpecError(file, place, "empty path in '\(s)'") }
            return .file(path: path)
        }
        let parts = s.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw PipelineSpecError(file, place, "'\(s)' must be \"stage/file\" or \"file:path\"")
        }
        return .output(stage: parts[0], file: parts[1])
    }

    static func upstreams(of inst: StageInstance) -> [String] {
        var result = Set<String>()
        for sources in inst.inputs.values {
            for case let .output(stage, _) in sources { result.insert(stage) }
        }
        return result.sorted()
    }

    static func topologicalOrder(_ instances: [String: StageInstance], file: String) throws -> [StageInstance] {
        var state: [String: Int] = [:]  // 1 = on the current path, 2 = done
        var order: [StageInstance] = []
        var path: [String] = []
        func visit(_ name: String) throws {
            if state[name] == 2 { return }
            if state[name] == 1 {
                let cycle = path[path.firstIndex(of: name)!...] + [name]
                throw PipelineSpecError(file, "stages", "cycle: \(cycle.joined(separator: " -> "))")
            }
            state[name] = 1
            path.append(name)
            for up in upstreams(of: instances[name]!) { try visit(up) }
            path.removeLast()
            state[name] = 2
            order.append(instances[name]!)
        }
        for name in instances.keys.sorted() { try visit(name) }
        return order
    }
}

import Foundation
import Shards

/// A problem in pipeline.json or a stage file, naming the file and the place in it.
public struct PipelineSpecError: Error, CustomStringConvertible {
    public let description: String
    public init(_ file: String, _ place: String, _ problem: String) {
        description = place.isEmpty ? "\(file): \(problem)" : "\(file): \(place): \(problem)"
    }
}

/// The declared type of a stage parameter.
public enum ParamType: String, Sendable {
    case number, integer, string, boolean, array, object

    func accepts(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.number, .number), (.string, .string), (.boolean, .bool), (.array, .array), (.object, .object): return true
        case (.integer, .number): return value.intValue != nil
        default: return false
        }
    }
}

/// One parameter of a stage: its type, default and documentation, with optional bounds or choices.
public struct ParamSpec: Sendable {
    public let type: ParamType
    public let defaultValue: JSONValue
    public let doc: String
    public let choices: [JSONValue]?
    public let minimum: Double?
    public let maximum: Double?

    /// Checks a value against this spec; returns the problem, or nil.
    func problem(with value: JSONValue) -> String? {
        guard type.accepts(value) else {
            return "expected \(type.rawValue), got \(value.typeName) \(value.canonical)"
        }
        if let choices, !choices.contains(value) {
            return "\(value.canonical) is not one of \(JSONValue.array(choices).canonical)"
        }
        if let d = value.doubleValue {
            if let minimum, d < minimum { return "\(value.canonical) is below the minimum \(JSONValue.formatNumber(minimum))" }
            if let maximum, d > maximum { return "\(value.canonical) is above the maximum \(JSONValue.formatNumber(maximum))" }
        }
        return nil
    }
}

/// A stage's interface, read from `stages/NAME.json`: what it runs, which source folders make up its code,
/// the inputs it takes, the files it writes and its parameters.
public struct StageDefinition: Sendable {
    public let file: String
    /// A product of this package (no "/"), or a path relative to the project root.
    public let command: String
    /// Fixed leading arguments (e.g. a subcommand) before the driver's `--out/--params/--in`.
    public let arguments: [String]
    public let description: String
    /// Paths (relative to the project root) whose content is the stage's code fingerprint.
    public let code: [String]
    /// Input roles; `many` roles accept a list (or a gathered sweep); `optional` ones may be left out.
    public let inputs: [String: (doc: String, many: Bool, optional: Bool)]
    public let outputs: [String]
    public let params: [String: ParamSpec]

    public var isPackageProduct: Bool { !command.contains("/") }

    static let knownKeys: Set<String> = ["version", "command", "args", "description", "code", "inputs", "outputs", "params"]

    public init(url: URL, displayName: String) throws {
        let file = displayName
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PipelineSpecError(file, "", "cannot read stage file")
        }
        let root: JSONValue
        do { root = try JSONValue.parse(data, source: file) } catch {
            throw PipelineSpecError(file, "", "not valid JSON")
        }
        guard case .object(let top) = root else { throw PipelineSpecError(file, "", "must be a JSON object") }
        if let unknown = top.keys.sorted().first(where: { !Self.knownKeys.contains($0) }) {
            throw PipelineSpecError(file, unknown, "unknown key (expected one of \(Self.knownKeys.sorted().joined(separator: ", ")))")
        }
        guard top["version"]?.intValue == 1 else { throw PipelineSpecError(file, "version", "must be 1") }
        guard let command = top["command"]?.stringValue, !command.isEmpty else {
            throw PipelineSpecError(file, "command", "missing or not a string")
        }
        let arguments = try (top["args"]?.arrayValue ?? []).enumerated().map { i, v -> String in
            guard let s = v.stringValue else { throw PipelineSpecError(file, "args[\(i)]", "must be a string") }
            return s
        }
        let code = try (top["code"]?.arrayValue ?? []).enumerated().map { i, v -> String in
            guard let s = v.stringValue else { throw PipelineSpecError(file, "code[\(i)]", "must be a path string") }
            return s
        }
        var inputs: [String: (doc: String, many: Bool, optional: Bool)] = [:]
        for (role, spec) in top["inputs"]?.objectValue ?? [:] {
            guard case .object(let s) = spec else { throw PipelineSpecError(file, "inputs.\(role)", "must be an object") }
            if let unknown = s.keys.sorted().first(where: { !["doc", "many", "optional"].contains($0) }) {
                throw PipelineSpecError(file, "inputs.\(role).\(unknown)", "unknown key (expected doc, many, optional)")
            }
            inputs[role] = (s["doc"]?.stringValue ?? "", s["many"]?.boolValue ?? false, s["optional"]?.boolValue ?? false)
        }
        let outputs = try (top["outputs"]?.arrayValue ?? []).enumerated().map { i, v -> String in
            guard let s = v.stringValue, !s.isEmpty, !s.contains("/") else {
                throw PipelineSpecError(file, "outputs[\(i)]", "must be a file name without '/'")
            }
            return s
        }
        guard !outputs.isEmpty else { throw PipelineSpecError(file, "outputs", "a stage must declare at least one output") }
        var params: [String: ParamSpec] = [:]
        let paramKeys: Set<String> = ["type", "default", "doc", "enum", "min", "max"]
        for (name, spec) in top["params"]?.objectValue ?? [:] {
            let place = "params.\(name)"
            guard case .object(let s) = spec else { throw PipelineSpecError(file, place, "must be an object") }
            if let unknown = s.keys.sorted().first(where: { !paramKeys.contains($0) }) {
                throw PipelineSpecError(file, "\(place).\(unknown)", "unknown key (expected \(paramKeys.sorted().joined(separator: ", ")))")
            }
            guard let typeName = s["type"]?.stringValue, let type = ParamType(rawValue: typeName) else {
                throw PipelineSpecError(file, "\(place).type", "must be one of number, integer, string, boolean, array, object")
            }
            guard let def = s["default"] else { throw PipelineSpecError(file, "\(place).default", "missing") }
            let param = ParamSpec(type: type, defaultValue: def, doc: s["doc"]?.stringValue ?? "",
                                  choices: s["enum"]?.arrayValue, minimum: s["min"]?.doubleValue, maximum: s["max"]?.doubleValue)
            if let problem = param.problem(with: def) { throw PipelineSpecError(file, "\(place).default", problem) }
            params[name] = param
        }
        self.file = file
        self.command = command
        self.arguments = arguments
        self.description = top["description"]?.stringValue ?? ""
        self.code = code
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
    }
}

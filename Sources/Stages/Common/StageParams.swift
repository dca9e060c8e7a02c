import Foundation
import Shards

/// One parameter a stage accepts: the single source of its name, type, default and documentation.
/// `stages/*.json` repeats these for the driver; a test checks the two agree.
public struct ParamDecl: Sendable {
    public enum Kind: String, Sendable { case number, integer, string, boolean }

    public let name: String
    public let kind: Kind
    public let defaultValue: JSONValue
    public let doc: String
    public let choices: [String]?
    public let minimum: Double?
    public let maximum: Double?

    public static func number(_ name: String, _ value: Double, min: Double? = nil, max: Double? = nil, _ doc: String) -> ParamDecl {
        ParamDecl(name: name, kind: .number, defaultValue: .number(value), doc: doc, choices: nil, minimum: min, maximum: max)
    }

    public static func integer(_ name: String, _ value: Int, min: Int? = nil, max: Int? = nil, _ doc: String) -> ParamDecl {
        ParamDecl(name: name, kind: .integer, defaultValue: .number(Double(value)), doc: doc, choices: nil,
                  minimum: min.map(Double.init), maximum: max.map(Double.init))
    }

    public static func string(_ name: String, _ value: String, choices: [String]? = nil, _ doc: String) -> ParamDecl {
        ParamDecl(name: name, kind: .string, defaultValue: .string(value), doc: doc, choices: choices, minimum: nil, maximum: nil)
    }

    public static func boolean(_ name: String, _ value: Bool, _ doc: String) -> ParamDecl {
        ParamDecl(name: name, kind: .boolean, defaultValue: .bool(value), doc: doc, choices: nil, minimum: nil, maximum: nil)
    }

    /// The declaration as `stages/*.json` writes it.
    public var json: JSONValue {
        var o: [String: JSONValue] = ["type": .string(kind.rawValue), "default": defaultValue, "doc": .string(doc)]
        if let choices { o["enum"] = .array(choices.map { .string($0) }) }
        if let minimum { o["min"] = .number(minimum) }
        if let maximum { o["max"] = .number(maximum) }
        return .object(o)
    }
}

/// A stage's parameters resolved from `--params` JSON over the declared defaults. Unknown names, wrong
/// types and out-of-range values are refused with a message naming the parameter.
public struct StageParams: Sendable {
    public let values: [String: JSONValue]

    public init(json text: String, declared: [ParamDecl], stage: String) throws {
        let parsed = try JSONValue.parse(text, source: "\(stage) --params")
        guard case .object(let given) = parsed else { throw StageError("\(stage) --params: must be a JSON object") }
        var values: [String: JSONValue] = [:]
        for d in declared { values[d.name] = d.defaultValue }
        let known = Set(declared.map(\.name))
        for key in given.keys.sorted() where !known.contains(key) {
            throw StageError("\(stage): unknown param '\(key)' (known: \(declared.map(\.name).sorted().joined(separator: ", ")))")
        }
        for d in declared {
            guard let v = given[d.name] else { continue }
            let ok: Bool
            switch d.kind {
            case .number: ok = v.doubleValue != nil
            case .integer: ok = v.intValue != nil
            case .string: ok = v.stringValue != nil
            case .boolean: ok = v.boolValue != nil
            }
            guard ok else { throw StageError("\(stage): param '\(d.name)' must be \(d.kind.rawValue), got \(v.typeName) \(v.canonical)") }
            if let choices = d.choices, let s = v.stringValue, !choices.contains(s) {
                throw StageError("\(stage): param '\(d.name)' is '\(s)', expected one of \(choices.joined(separator: ", "))")
            }
            if let x = v.doubleValue {
                if let lo = d.minimum, x < lo { throw StageError("\(stage): param '\(d.name)' is \(v.canonical), below the minimum \(JSONValue.formatNumber(lo))") }
                if let hi = d.maximum, x > hi { throw StageError("\(stage): param '\(d.name)' is \(v.canonical), above the maximum \(JSONValue.formatNumber(hi))") }
            }
            values[d.name] = v
        }
        self.values = values
    }

    public func double(_ name: String) -> Double { values[name]!.doubleValue! }
    public func float(_ name: String) -> Float { Float(values[name]!.doubleValue!) }
    public func int(_ name: String) -> Int { values[name]!.intValue! }
    public func string(_ name: String) -> String { values[name]!.stringValue! }
    public func bool(_ name: String) -> Bool { values[name]!.boolValue! }

    /// The resolved parameters, echoed into every output.
    public var json: JSONValue { .object(values) }
}

/// A stage failure: one line that names the file or record and the problem.
public struct StageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

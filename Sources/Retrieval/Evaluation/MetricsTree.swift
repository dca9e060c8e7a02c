import Foundation

/// An ordered tree of named metrics: the shape of the JSON the official evaluation writes, with keys in its
/// order (a Swift dictionary would lose it).
public indirect enum MetricsTree: Equatable, Sendable {
    case number(Double)
    case object([Entry])

    /// One key of an object.
    public struct Entry: Equatable, Sendable {
        public var key: String
        public var value: MetricsTree

        public init(_ key: String, _ value: MetricsTree) {
            self.key = key
            self.value = value
        }
    }

    /// The value under `key` when this is an object that has it.
    public subscript(key: String) -> MetricsTree? {
        guard case let .object(entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    /// The number when this is a leaf.
    public var number: Double? {
        if case let .number(value) = self { return value }
        return nil
    }

    /// The keys of this object in order (empty for a leaf).
    public var keys: [String] {
        guard case let .object(entries) = self else { return [] }
        return entries.map(\.key)
    }

    /// The text Python's `json.dump(tree, f, indent=4)` writes, byte for byte (no trailing newline): non-ASCII
    /// escaped, numbers as Python's `repr`, `NaN` for an undefined metric.
    public func jsonString() -> String {
        var output = ""
        write(to: &output, depth: 0)
        return output
    }

    private func write(to output: inout String, depth: Int) {
        switch self {
        case let .number(value):
            output += ReferenceArithmetic.pythonJSONNumber(value)
        case let .object(entries):
            if entries.isEmpty {
                output += "{}"
                return
            }
            let innerIndent = String(repeating: " ", count: 4 * (depth + 1))
            output += "{\n"
            for (index, entry) in entries.enumerated() {
                output += innerIndent
                Self.writeString(entry.key, to: &output)
                output += ": "
                entry.value.write(to: &output, depth: depth + 1)
                output += index == entries.count - 1 ? "\n" : ",\n"
            }
            output += String(repeating: " ", count: 4 * depth) + "}"
        }
    }

    private static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for unit in text.utf16 {
            switch unit {
            case 0x22: output += "\\\""
            case 0x5C: output += "\\\\"
            case 0x0A: output += "\\n"
            case 0x0D: output += "\\r"
            case 0x09: output += "\\t"
            case 0x08: output += "\\b"
            case 0x0C: output += "\\f"
            case 0x20..<0x7F: output.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            default:
                let hex = String(unit, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        output += "\""
    }
}

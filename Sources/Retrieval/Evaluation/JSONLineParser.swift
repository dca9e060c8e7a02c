import Foundation

/// One parsed JSON value. Numbers remember whether they were written as integers, so that a qid of `12` is
/// accepted and a qid of `12.5` is not.
enum ParsedJSONValue {
    case object([String: ParsedJSONValue])
    case array([ParsedJSONValue])
    case string(String)
    case number(Double, isInteger: Bool)
    case bool(Bool)
    case null
}

/// A JSON parser for one line of a JSONL file.
///
/// Written here instead of using `JSONSerialization` for three reasons: it accepts the `NaN`, `Infinity` and
/// `-Infinity` tokens that Python's `json.dump` writes (so the loader can reject a NaN score with the qid it
/// belongs to instead of a bare syntax error), it keeps integers apart from other numbers, and it is several
/// times faster on the 1550-line prediction files. Numbers are correctly rounded, as Python's `float()` is.
struct JSONLineParser {
    /// A syntax error at a byte offset of the line.
    struct SyntaxError: Error {
        let message: String
        let offset: Int
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Parses exactly one JSON value (surrounded by optional whitespace) from `bytes`.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(SyntaxError) -> ParsedJSONValue {
        var parser = JSONLineParser(bytes: bytes)
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position != bytes.count { throw parser.error("unexpected characters after the JSON value") }
        return value
    }

    private static let maximumDepth = 64

    private func error(_ message: String) -> SyntaxError {
        SyntaxError(message: message, offset: position)
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: StaticString) throws(SyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("truncated literal") }
        let start = literal.utf8Start
        for index in 0..<count where bytes[position + index] != start[index] {
            throw error("invalid literal")
        }
        position += count
    }

    private mutating func parseValue(depth: Int) throws(SyntaxError) -> ParsedJSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end of line") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "N"): try expect("NaN"); return .number(.nan, isInteger: false)
        case UInt8(ascii: "I"): try expect("Infinity"); return .number(.infinity, isInteger: false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws(SyntaxError) -> ParsedJSONValue {
        if depth > Self.maximumDepth { throw error("nesting too deep") }
        position += 1
        var members: [String: ParsedJSONValue] = [:]
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            // A repeated key keeps its last value, as Python's json module does.
            members[key] = try parseValue(depth: depth)
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated object") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            } else {
                throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(SyntaxError) -> ParsedJSONValue {
        if depth > Self.maximumDepth { throw error("nesting too deep") }
        position += 1
        var elements: [ParsedJSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated array") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            } else {
                throw error("expected ',' or ']'")
            }
        }
    }

    private mutating func parseString() throws(SyntaxError) -> String {
        position += 1
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { return try parseEscapedString(from: start) }
            if byte < 0x20 { throw error("control character in string") }
            position += 1
        }
        throw error("unterminated string")
    }

    private mutating func parseEscapedString(from start: Int) throws(SyntaxError) -> String {
        var utf8 = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { throw error("unterminated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = UInt32(try parseHexQuad())
                    if (0xD800..<0xDC00).contains(scalar), position + 1 < bytes.count,
                       bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                        let saved = position
                        position += 2
                        let low = UInt32(try parseHexQuad())
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            position = saved
                        }
                    }
                    utf8.append(contentsOf: String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8)
                default:
                    throw error("invalid escape")
                }
            default:
                if byte < 0x20 { throw error("control character in string") }
                utf8.append(byte)
            }
        }
        throw error("unterminated string")
    }

    private mutating func parseHexQuad() throws(SyntaxError) -> UInt16 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    /// Powers of ten that are exact in a Double (10^22 is the largest).
    private static let exactPowersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    private mutating func parseNumber() throws(SyntaxError) -> ParsedJSONValue {
        let start = position
        var negative = false
        if bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "I") {
                try expect("Infinity")
                return .number(-.infinity, isInteger: false)
            }
        }
        var mantissa: UInt64 = 0
        var significantDigits = 0
        var decimalExponent = 0
        var isInteger = true

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        guard position < bytes.count, isDigit(bytes[position]) else { throw error("expected a digit") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < bytes.count, isDigit(bytes[position]) {
                if significantDigits < 19 {
                    mantissa = mantissa * 10 + UInt64(bytes[position] - UInt8(ascii: "0"))
                } else {
                    decimalExponent += 1
                }
                significantDigits += 1
                position += 1
            }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("expected a digit after '.'") }
            while position < bytes.count, isDigit(bytes[position]) {
                let digit = UInt64(bytes[position] - UInt8(ascii: "0"))
                if significantDigits == 0 && digit == 0 {
                    decimalExponent -= 1
                } else {
                    if significantDigits < 19 {
                        mantissa = mantissa * 10 + digit
                        decimalExponent -= 1
                    }
                    significantDigits += 1
                }
                position += 1
            }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            var exponentNegative = false
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                exponentNegative = bytes[position] == UInt8(ascii: "-")
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("expected an exponent") }
            var exponent = 0
            while position < bytes.count, isDigit(bytes[position]) {
                if exponent < 100_000 { exponent = exponent * 10 + Int(bytes[position] - UInt8(ascii: "0")) }
                position += 1
            }
            decimalExponent += exponentNegative ? -exponent : exponent
        }

        // Clinger's fast path: an exact mantissa times or divided by an exact power of ten is one correctly
        // rounded operation. Anything else goes through the correctly rounded library conversion.
        if significantDigits <= 19 && mantissa <= (1 << 53) && abs(decimalExponent) <= 22 {
            let magnitude = decimalExponent >= 0
                ? Double(mantissa) * Self.exactPowersOfTen[decimalExponent]
                : Double(mantissa) / Self.exactPowersOfTen[-decimalExponent]
            return .number(negative ? -magnitude : magnitude, isInteger: isInteger)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let value = Double(text) else { throw error("number out of range") }
        return .number(value, isInteger: isInteger)
    }
}

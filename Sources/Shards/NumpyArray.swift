import Foundation
internal import ZIPFoundation

/// Why a `.npy` / `.npz` file was refused.
public struct NumpyError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// One array from a numpy `.npy` file (format versions 1-3), little-endian f4/f2/f8/i4/i8, C order.
/// Values are kept as their raw bytes and converted on request.
public struct NumpyArray {
    public enum ElementType: String {
        case f2 = "<f2", f4 = "<f4", f8 = "<f8", i4 = "<i4", i8 = "<i8"
    }

    public let elementType: ElementType
    public let shape: [Int]
    let raw: Data

    public var count: Int { shape.reduce(1, *) }

    /// Parses a complete `.npy` byte string; `source` names it in errors (e.g. "vid.npz:features.npy").
    public init(npy data: Data, source: String) throws {
        let header = try Self.parseHeader(data, source: source)
        guard data.count - header.bodyStart == header.bodyLength else {
            throw NumpyError(file: source, reason: "array data is \(data.count - header.bodyStart) bytes, shape \(header.shape) of \(header.type.rawValue) needs \(header.bodyLength)")
        }
        self.elementType = header.type
        self.shape = header.shape
        self.raw = data.subdata(in: data.startIndex + header.bodyStart..<data.endIndex)
    }

    /// The element type, shape, data offset and data length a `.npy` header declares (the header must be
    /// complete in `data`; the array data need not be).
    static func parseHeader(_ data: Data, source: String) throws -> (type: ElementType, shape: [Int], bodyStart: Int, bodyLength: Int) {
        func fail(_ reason: String) -> NumpyError { NumpyError(file: source, reason: reason) }
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("not a .npy array (wrong magic bytes)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy preamble") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail(".npy format version \(major) is not supported")
        }
        guard data.count >= headerStart + headerLength else { throw fail("truncated .npy header") }
        let headerData = data.subdata(in: data.startIndex + headerStart..<data.startIndex + headerStart + headerLength)
        guard let header = String(data: headerData, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail("unreadable .npy header")
        }
        guard let descr = Self.field("descr", in: header) else { throw fail("no 'descr' in .npy header") }
        let descrValue = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        if descrValue.contains("O") { throw fail("object arrays (dtype \(descrValue)) are not supported") }
        let normalised = descrValue.hasPrefix("|") || descrValue.hasPrefix("=") ? "<" + descrValue.dropFirst() : descrValue
        guard let type = ElementType(rawValue: normalised) else {
            if descrValue.hasPrefix(">") { throw fail("big-endian dtype \(descrValue) is not supported") }
            throw fail("dtype \(descrValue) is not supported (use f4, f2, f8, i4 or i8)")
        }
        guard let fortran = Self.field("fortran_order", in: header) else { throw fail("no 'fortran_order' in .npy header") }
        if fortran.trimmingCharacters(in: .whitespaces).hasPrefix("True") {
            throw fail("fortran-order arrays are not supported (save with np.ascontiguousarray)")
        }
        guard let shapeText = Self.field("shape", in: header) else { throw fail("no 'shape' in .npy header") }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0 else { throw fail("bad shape \(shapeText)") }
            shape.append(v)
        }
        let size: Int
        switch type {
        case .f2: size = 2
        case .f4, .i4: size = 4
        case .f8, .i8: size = 8
        }
        var needed = size
        for d in shape {
            let (p, overflow) = needed.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(shapeText) is too large to address") }
            needed = p
        }
        return (type, shape, headerStart + headerLength, needed)
    }

    /// The total length (header + data) a `.npy` byte string's header declares, once its header is complete;
    /// nil while it is not (or when it cannot be parsed: the full parse then reports why).
    static func declaredLength(_ prefix: Data) -> Int? {
        let bytes = [UInt8](prefix.prefix(12))
        guard bytes.count >= 10 else { return nil }
        let major = bytes[6]
        let (headerLength, headerStart) = major == 1 ? (Int(bytes[8]) | Int(bytes[9]) << 8, 10)
            : bytes.count >= 12 ? (Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24, 12) : (-1, 0)
        guard headerLength >= 0, prefix.count >= headerStart + headerLength else { return nil }
        guard let parsed = try? parseHeader(Data(prefix.prefix(headerStart + headerLength)), source: "") else { return nil }
        let (total, overflow) = parsed.bodyStart.addingReportingOverflow(parsed.bodyLength)
        return overflow ? Int.max : total
    }

    /// Reads a `.npy` file.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NumpyError(file: url.path, reason: "cannot read (\(error.localizedDescription))")
        }
        try self.init(npy: data, source: url.path)
    }

    /// The values converted to Float32.
    public func floats() -> [Float] {
        raw.withUnsafeBytes { buf -> [Float] in
            switch elementType {
            case .f4: return Array(buf.bindMemory(to: Float.self))
            case .f2: return buf.bindMemory(to: Float16.self).map { Float($0) }
            case .f8: return buf.bindMemory(to: Double.self).map { Float($0) }
            case .i4: return buf.bindMemory(to: Int32.self).map { Float($0) }
            case .i8: return buf.bindMemory(to: Int64.self).map { Float($0) }
            }
        }
    }

    /// The values converted to Int64 (floating values are truncated toward zero); a NaN, an infinity or a value
    /// outside Int64's range is an error naming the element, not a trap. `source` names the array in errors.
    public func int64s(source: String = "array") throws -> [Int64] {
        func checked<F: BinaryFloatingPoint>(_ values: UnsafeBufferPointer<F>) throws -> [Int64] {
            try values.enumerated().map { i, v in
                guard let x = Int64(exactly: v.rounded(.towardZero)) else {
                    throw NumpyError(file: source, reason: "element \(i) (\(Double(v))) is not an integer in Int64's range")
                }
                return x
            }
        }
        return try raw.withUnsafeBytes { buf -> [Int64] in
            switch elementType {
            case .i8: return Array(buf.bindMemory(to: Int64.self))
            case .i4: return buf.bindMemory(to: Int32.self).map { Int64($0) }
            case .f4: return try checked(buf.bindMemory(to: Float.self))
            case .f2: return try checked(buf.bindMemory(to: Float16.self))
            case .f8: return try checked(buf.bindMemory(to: Double.self))
            }
        }
    }

    /// The text after `'key':` up to the next top-level comma (or the closing tuple for shapes).
    private static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)':") ?? header.range(of: "\"\(key)\":") else { return nil }
        let rest = header[keyRange.upperBound...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.startIndex...close])
        }
        let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) ?? rest.endIndex
        return String(rest[rest.startIndex..<end])
    }
}

/// A numpy `.npz` archive (stored or deflated members), read with ZIPFoundation. The archive is opened
/// per call, which costs one read of its central directory.
public struct NpzArchive {
    public let url: URL
    /// The largest member read (a QVHighlights video's features are under 1 MB).
    public static let maxMemberBytes = 1 << 30

    public init(url: URL) throws {
        self.url = url
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NumpyError(file: url.path, reason: "file not found")
        }
        _ = try open()
    }

    private func open() throws -> Archive {
        do {
            return try Archive(url: url, accessMode: .read)
        } catch {
            throw NumpyError(file: url.path, reason: "not a readable .npz (zip) archive")
        }
    }

    /// Array names, without the `.npy` suffix.
    public var keys: [String] {
        get throws {
            try open().map { entry in
                entry.path.hasSuffix(".npy") ? String(entry.path.dropLast(4)) : entry.path
            }.sorted()
        }
    }

    /// The array stored under `key` (the member `key.npy`).
    public func array(_ key: String) throws -> NumpyArray {
        let archive = try open()
        guard let entry = archive[key + ".npy"] ?? archive[key] else {
            throw NumpyError(file: url.path, reason: "no array '\(key)' (has: \(try keys.joined(separator: ", ")))")
        }
        let declared = Int(clamping: entry.uncompressedSize), compressed = Int(clamping: entry.compressedSize)
        func refuse(_ reason: String) -> NumpyError { NumpyError(file: url.path, reason: "member '\(entry.path)' \(reason)") }
        // numpy writes regular files only; a symlink entry would be read whole, at a size its local header
        // gives and nothing checks.
        guard entry.type == .file else { throw refuse("is a \(entry.type) entry, not an array file") }
        // Sizes a zip declares are checked before anything is inflated: deflate expands at most ~1032:1.
        guard declared <= Self.maxMemberBytes else { throw refuse("declares \(declared) bytes, more than the \(Self.maxMemberBytes)-byte limit") }
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        guard compressed <= fileSize else {
            throw refuse("declares \(compressed) compressed bytes, the archive has \(fileSize)")
        }
        guard declared <= compressed.multipliedReportingOverflow(by: 1032).partialValue + 1024 else {
            throw refuse("declares \(declared) bytes from \(compressed) compressed bytes, more than deflate can expand to")
        }
        var data = Data()
        data.reserveCapacity(declared)
        var checkedHeader = false
        do {
            _ = try archive.extract(entry, skipCRC32: false) { chunk in
                data.append(chunk)
                guard data.count <= declared else { throw refuse("inflates past its declared \(declared) bytes") }
                // Once the .npy header is in, the array's size must be what the zip declares: a member whose
                // header and size disagree is refused before the rest is inflated.
                if !checkedHeader, let expected = NumpyArray.declaredLength(data) {
                    checkedHeader = true
                    guard expected == declared else {
                        throw refuse("holds an array of \(expected) bytes by its .npy header, the zip declares \(declared)")
                    }
                }
            }
        } catch let error as NumpyError {
            throw error
        } catch {
            throw NumpyError(file: url.path, reason: "member '\(entry.path)' is corrupt (\(error))")
        }
        return try NumpyArray(npy: data, source: "\(url.path):\(entry.path)")
    }
}

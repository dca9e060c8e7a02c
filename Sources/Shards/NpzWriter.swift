import Foundation
internal import ZIPFoundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes float32 arrays as a numpy `.npz` (an uncompressed zip of `.npy` files, format 1.0, C order), the
/// layout public feature releases use, through a temporary file and a rename.
public enum NpzWriter {
    public static func write(_ arrays: [(name: String, values: [Float], shape: [Int])], to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let temp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: temp) }
        do {
            let archive = try Archive(url: temp, accessMode: .create)
            for a in arrays {
                guard a.shape.reduce(1, *) == a.values.count else {
                    throw NumpyError(file: url.path, reason: "array '\(a.name)': \(a.values.count) values do not fill shape \(a.shape)")
                }
                let data = npy(a.values, shape: a.shape)
                try archive.addEntry(with: a.name + ".npy", type: .file, uncompressedSize: Int64(data.count)) { position, size in
                    data.subdata(in: Int(position)..<(Int(position) + size))
                }
            }
        } catch let error as NumpyError {
            throw error
        } catch {
            throw NumpyError(file: url.path, reason: "cannot write the archive (\(error))")
        }
        guard rename(temp.path, url.path) == 0 else {
            throw NumpyError(file: url.path, reason: "rename: \(String(cString: strerror(errno)))")
        }
    }

    /// One `.npy` (format 1.0): magic, header dict padded so the data starts at a multiple of 64, raw values.
    static func npy(_ values: [Float], shape: [Int]) -> Data {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }
}

/// A dense, contiguous, row-major array of `Float` values with a shape.
///
/// `Tensor` is a value type backed by a copy-on-write `[Float]`: passing it around is free, and
/// a kernel that writes into one only copies when the storage is shared. Every kernel checks shapes
/// with a precondition that names both shapes, so a mismatch stops the program with a readable
/// message instead of reading or writing out of bounds.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first. `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `data.count == shape.reduce(1, *)`.
    public private(set) var data: [Float]

    /// Wraps `data` with `shape`; the element count must match.
    public init(shape: [Int], data: [Float]) {
        let count = Tensor.elementCount(of: shape)
        precondition(data.count == count,
                     "Tensor: shape \(shape) holds \(count) elements but \(data.count) were given")
        self.shape = shape
        self.data = data
    }

    /// A tensor of `shape` filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: value, count: Tensor.elementCount(of: shape))
    }

    /// A tensor of `shape` filled with zeros.
    public init(zeros shape: [Int]) {
        self.init(repeating: 0, shape: shape)
    }

    /// A rank-0 tensor holding `value`.
    public init(scalar value: Float) {
        self.shape = []
        self.data = [value]
    }

    /// A tensor of `shape` whose elements are written by `fill`, which must initialise every element.
    /// Skips the zeroing pass that `init(zeros:)` pays, which matters for large activations.
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = Tensor.elementCount(of: shape)
        self.shape = shape
        self.data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            initialized = count
        }
    }

    /// The product of `shape`, checking that no dimension is negative.
    public static func elementCount(of shape: [Int]) -> Int {
        var count = 1
        for extent in shape {
            precondition(extent >= 0, "Tensor: negative dimension in shape \(shape)")
            count *= extent
        }
        return count
    }

    /// Number of elements.
    public var count: Int { data.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The single element of a one-element tensor.
    public var scalar: Float {
        precondition(data.count == 1, "Tensor.scalar: tensor of shape \(shape) is not a single element")
        return data[0]
    }

    /// The same elements viewed with another shape; one extent may be `-1` (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0,
                         "Tensor.reshaped: cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = count / known
        }
        precondition(Tensor.elementCount(of: resolved) == count,
                     "Tensor.reshaped: cannot reshape \(shape) (\(count) elements) to \(newShape)")
        var copy = self
        copy.shape = resolved
        return copy
    }

    /// The element at a row-major flat index.
    public subscript(flat index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    /// The element at a multi-dimensional index.
    public subscript(_ indices: Int...) -> Float {
        get { data[flatIndex(indices)] }
        set { data[flatIndex(indices)] = newValue }
    }

    private func flatIndex(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.count,
                     "Tensor: index \(indices) does not match shape \(shape)")
        var flat = 0
        for (axis, index) in indices.enumerated() {
            precondition(index >= 0 && index < shape[axis], "Tensor: index \(indices) out of range for shape \(shape)")
            flat = flat * shape[axis] + index
        }
        return flat
    }

    /// Read access to the elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try data.withUnsafeBufferPointer(body)
    }

    /// Write access to the elements (copies first if the storage is shared).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try data.withUnsafeMutableBufferPointer { try body($0) }
    }
}

/// Stops with a message naming both shapes unless they are equal.
@inline(__always)
public func checkSameShape(_ a: [Int], _ b: [Int], _ operation: @autoclosure () -> String) {
    if a != b {
        preconditionFailure("\(operation()): shape mismatch \(a) vs \(b)")
    }
}

/// Splits `shape` around `axis` into (product of dimensions before, extent, product after):
/// the view every axis-wise kernel works on.
public func axisSplit(_ shape: [Int], axis: Int, _ operation: @autoclosure () -> String) -> (outer: Int, extent: Int, inner: Int) {
    precondition(axis >= 0 && axis < shape.count, "\(operation()): axis \(axis) out of range for shape \(shape)")
    let outer = shape[..<axis].reduce(1, *)
    let inner = shape[(axis + 1)...].reduce(1, *)
    return (outer, shape[axis], inner)
}

/// Resolves a possibly negative axis (`-1` = last) against a rank.
public func normalizedAxis(_ axis: Int, rank: Int) -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    precondition(resolved >= 0 && resolved < rank, "axis \(axis) out of range for rank \(rank)")
    return resolved
}

/// Calls `body` with a mutable pointer to the optional tensor's storage, or nil.
public func withOptionalMutablePointer<R>(_ tensor: inout Tensor?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
    guard var unwrapped = tensor else { return body(nil) }
    tensor = nil  // drop the second reference so the write below does not copy
    let result = unwrapped.withUnsafeMutableBufferPointer { body($0.baseAddress) }
    tensor = unwrapped
    return result
}

/// Calls `body` with a pointer to the optional tensor's storage, or nil.
public func withOptionalPointer<R>(_ tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let unwrapped = tensor else { return body(nil) }
    return unwrapped.withUnsafeBufferPointer { body($0.baseAddress) }
}

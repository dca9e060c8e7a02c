import Tensor
import XCTest

/// Concatenation, slicing and embedding against element-by-element index arithmetic: along every axis, with runs
/// short enough for the vector loop and long enough for `memmove`, and outer extents that split across threads.
final class ShapeKernelTests: XCTestCase {
    func tensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(shape: shape) { out in for i in 0..<out.count { out[i] = generator.nextUniform(in: -1, 1) } }
    }

    /// Row-major strides of `shape`.
    func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        return strides
    }

    /// The multi-index of flat position `flat` in `shape`.
    func index(_ flat: Int, _ shape: [Int]) -> [Int] {
        zip(strides(shape), shape).map { flat / $0 % $1 }
    }

    func flat(_ index: [Int], _ shape: [Int]) -> Int {
        zip(index, strides(shape)).reduce(0) { $0 + $1.0 * $1.1 }
    }

    let shapes = [[3, 5, 7], [2000, 2, 8], [64, 3, 300], [1, 4, 1]]

    func testConcatPlacesEachInputAtItsOffsetAlongTheAxis() {
        for (s, shape) in shapes.enumerated() {
            for axis in 0..<shape.count {
                var other = shape
                other[axis] += 2
                let a = tensor(shape, seed: UInt64(s)), b = tensor(other, seed: UInt64(s + 10))
                let joined = ShapeKernels.concat([a, b], axis: axis)
                var expected = [Float](repeating: .nan, count: joined.count)
                for i in 0..<joined.count {
                    var position = index(i, joined.shape)
                    if position[axis] < shape[axis] {
                        expected[i] = a.data[flat(position, shape)]
                    } else {
                        position[axis] -= shape[axis]
                        expected[i] = b.data[flat(position, other)]
                    }
                }
                XCTAssertEqual(joined.data, expected, "shape \(shape) axis \(axis)")
            }
        }
    }

    func testSliceAndEmbedAreEachOthersInverseAndFillTheRest() {
        for (s, shape) in shapes.enumerated() {
            for axis in 0..<shape.count where shape[axis] >= 2 {
                let x = tensor(shape, seed: UInt64(s + 20))
                let range = 1..<shape[axis]
                let part = ShapeKernels.slice(x, axis: axis, range: range)
                var expected = [Float](repeating: .nan, count: part.count)
                for i in 0..<part.count {
                    var position = index(i, part.shape)
                    position[axis] += range.lowerBound
                    expected[i] = x.data[flat(position, shape)]
                }
                XCTAssertEqual(part.data, expected, "slice of \(shape) axis \(axis)")
                let embedded = ShapeKernels.embed(part, in: shape, axis: axis, at: range.lowerBound, fillValue: 7)
                let filled = (0..<embedded.count).map { index($0, shape)[axis] >= range.lowerBound ? x.data[$0] : 7 }
                XCTAssertEqual(embedded.data, filled, "embed in \(shape) axis \(axis)")
            }
        }
    }
}

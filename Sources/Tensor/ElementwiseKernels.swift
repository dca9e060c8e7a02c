import Foundation

/// A scalar binary function, dispatched statically so element loops compile to straight-line code.
protocol BinaryScalarFunction {
    static func apply(_ a: Float, _ b: Float) -> Float
}

/// A scalar unary function, dispatched statically.
protocol UnaryScalarFunction {
    static func apply(_ x: Float) -> Float
}

enum AddFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
}
enum SubtractFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b }
}
enum MultiplyFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
}
enum DivideFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b }
}
enum MaximumFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a >= b ? a : b }
}
enum MinimumFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a <= b ? a : b }
}
/// 1 where `a >= b`, else 0: routes a maximum's gradient (ties go to `a`).
enum GreaterOrEqualMaskFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a >= b ? 1 : 0 }
}
/// 1 where `a <= b`, else 0: routes a minimum's gradient (ties go to `a`).
enum LessOrEqualMaskFunction: BinaryScalarFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a <= b ? 1 : 0 }
}

enum ExpFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { Foundation.exp(x) }
}
enum LogFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { Foundation.log(x) }
}
enum SqrtFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { x.squareRoot() }
}
enum AbsFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { Swift.abs(x) }
}
enum SignFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
enum NegateFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { -x }
}
enum SigmoidFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float {
        // Split by sign so exp never overflows.
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }
}
enum TanhFunction: UnaryScalarFunction {
    @inline(__always) static func apply(_ x: Float) -> Float { Foundation.tanh(x) }
}

/// Element-wise kernels: unary maps, broadcast binary maps, scalar affine maps.
public enum Elementwise {
    /// `F(x)` for every element.
    static func map<F: UnaryScalarFunction>(_ x: Tensor, _ function: F.Type) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                Parallelism.forEachChunk(count: input.count, grain: Parallelism.elementwiseGrain) { range in
                    for i in range { out[i] = F.apply(input[i]) }
                }
            }
        }
    }

    /// `F(a, b)` with NumPy broadcasting; shapes that cannot broadcast stop with both named.
    static func combine<F: BinaryScalarFunction>(_ a: Tensor, _ b: Tensor, _ function: F.Type) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        if a.shape == b.shape {
            return Tensor(shape: a.shape) { out in
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        Parallelism.forEachChunk(count: ap.count, grain: Parallelism.elementwiseGrain) { range in
                            for i in range { out[i] = F.apply(ap[i], bp[i]) }
                        }
                    }
                }
            }
        }
        let outShape = Broadcasting.shape(a.shape, b.shape, "element-wise \(F.self)")
        let aStrides = Broadcasting.strides(of: a.shape, in: outShape)
        let bStrides = Broadcasting.strides(of: b.shape, in: outShape)
        return Tensor(shape: outShape) { out in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    Broadcasting.forEachRun(outShape: outShape, aStrides: aStrides, bStrides: bStrides) {
                        outOffset, aOffset, bOffset, run, aStep, bStep in
                        for i in 0..<run {
                            out[outOffset + i] = F.apply(ap[aOffset + i * aStep], bp[bOffset + i * bStep])
                        }
                    }
                }
            }
        }
    }

    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, AddFunction.self) }
    public static func subtract(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, SubtractFunction.self) }
    public static func multiply(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, MultiplyFunction.self) }
    public static func divide(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, DivideFunction.self) }
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, MaximumFunction.self) }
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, MinimumFunction.self) }
    /// 1 where `a >= b` else 0, broadcast.
    public static func greaterOrEqualMask(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, GreaterOrEqualMaskFunction.self) }
    /// 1 where `a <= b` else 0, broadcast.
    public static func lessOrEqualMask(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, LessOrEqualMaskFunction.self) }

    public static func exp(_ x: Tensor) -> Tensor { map(x, ExpFunction.self) }
    public static func log(_ x: Tensor) -> Tensor { map(x, LogFunction.self) }
    public static func sqrt(_ x: Tensor) -> Tensor { map(x, SqrtFunction.self) }
    public static func abs(_ x: Tensor) -> Tensor { map(x, AbsFunction.self) }
    public static func sign(_ x: Tensor) -> Tensor { map(x, SignFunction.self) }
    public static func negate(_ x: Tensor) -> Tensor { map(x, NegateFunction.self) }
    public static func sigmoid(_ x: Tensor) -> Tensor { map(x, SigmoidFunction.self) }
    public static func tanh(_ x: Tensor) -> Tensor { map(x, TanhFunction.self) }

    /// `x * scale + shift` for every element.
    public static func affine(_ x: Tensor, scale: Float, shift: Float) -> Tensor {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { input in
                Parallelism.forEachChunk(count: input.count, grain: Parallelism.elementwiseGrain) { range in
                    for i in range { out[i] = input[i] * scale + shift }
                }
            }
        }
    }

    /// `accumulator += x * scale`, in place; shapes must match.
    public static func addScaled(_ x: Tensor, scale: Float = 1, into accumulator: inout Tensor) {
        let profiled = Profiler.enter(.elementwise)
        defer { Profiler.exit(profiled) }
        checkSameShape(accumulator.shape, x.shape, "addScaled")
        accumulator.withUnsafeMutableBufferPointer { acc in
            x.withUnsafeBufferPointer { input in
                Parallelism.forEachChunk(count: input.count, grain: Parallelism.elementwiseGrain) { range in
                    if scale == 1 {
                        for i in range { acc[i] += input[i] }
                    } else {
                        for i in range { acc[i] += input[i] * scale }
                    }
                }
            }
        }
    }
}

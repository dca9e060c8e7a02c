import Tensor

// Element-wise arithmetic with NumPy broadcasting. The backward of a broadcast operand sums the
// gradient over the dimensions it was stretched along.

public func + (a: Variable, b: Variable) -> Variable {
    Variable.result(Elementwise.add(a.value, b.value), parents: [a, b]) { g in
        if a.requiresGrad { a.accumulateGradient(Broadcasting.sum(g, toShape: a.shape)) }
        if b.requiresGrad { b.accumulateGradient(Broadcasting.sum(g, toShape: b.shape)) }
    }
}

public func - (a: Variable, b: Variable) -> Variable {
    Variable.result(Elementwise.subtract(a.value, b.value), parents: [a, b]) { g in
        if a.requiresGrad { a.accumulateGradient(Broadcasting.sum(g, toShape: a.shape)) }
        if b.requiresGrad { b.accumulateGradient(Broadcasting.sum(Elementwise.negate(g), toShape: b.shape)) }
    }
}

public func * (a: Variable, b: Variable) -> Variable {
    Variable.result(Elementwise.multiply(a.value, b.value), parents: [a, b]) { g in
        if a.requiresGrad { a.accumulateGradient(Broadcasting.sum(Elementwise.multiply(g, b.value), toShape: a.shape)) }
        if b.requiresGrad { b.accumulateGradient(Broadcasting.sum(Elementwise.multiply(g, a.value), toShape: b.shape)) }
    }
}

public func / (a: Variable, b: Variable) -> Variable {
    let quotient = Elementwise.divide(a.value, b.value)
    return Variable.result(quotient, parents: [a, b]) { g in
        let gOverB = Elementwise.divide(g, b.value)
        if a.requiresGrad { a.accumulateGradient(Broadcasting.sum(gOverB, toShape: a.shape)) }
        if b.requiresGrad {
            // d(a/b)/db = -(a/b) / b
            b.accumulateGradient(Broadcasting.sum(Elementwise.negate(Elementwise.multiply(gOverB, quotient)), toShape: b.shape))
        }
    }
}

public prefix func - (x: Variable) -> Variable { x * -1 }

public func * (x: Variable, scale: Float) -> Variable {
    Variable.result(Elementwise.affine(x.value, scale: scale, shift: 0), parents: [x]) { g in
        x.accumulateGradient(Elementwise.affine(g, scale: scale, shift: 0))
    }
}

public func * (scale: Float, x: Variable) -> Variable { x * scale }
public func / (x: Variable, divisor: Float) -> Variable { x * (1 / divisor) }

public func + (x: Variable, shift: Float) -> Variable {
    Variable.result(Elementwise.affine(x.value, scale: 1, shift: shift), parents: [x]) { g in
        x.accumulateGradient(g)
    }
}

public func + (shift: Float, x: Variable) -> Variable { x + shift }
public func - (x: Variable, shift: Float) -> Variable { x + (-shift) }
/// `shift - x`.
public func - (shift: Float, x: Variable) -> Variable {
    Variable.result(Elementwise.affine(x.value, scale: -1, shift: shift), parents: [x]) { g in
        x.accumulateGradient(Elementwise.negate(g))
    }
}

/// Element-wise maximum (gradient to `a` on ties).
public func maximum(_ a: Variable, _ b: Variable) -> Variable {
    Variable.result(Elementwise.maximum(a.value, b.value), parents: [a, b]) { g in
        let toA = Elementwise.greaterOrEqualMask(a.value, b.value)
        if a.requiresGrad { a.accumulateGradient(Broadcasting.sum(Elementwise.multiply(g, toA), toShape: a.shape)) }
        if b.requiresGrad {
            let toB = Elementwise.affine(toA, scale: -1, shift: 1)
            b.accumulateGradient(Broadcasting.sum(Elementwise.multiply(g, toB), toShape: b.shape))
        }
    }
}

/// Element-wise minimum (gradient to `a` on ties).
public func minimum(_ a: Variable, _ b: Variable) -> Variable {
    Variable.result(Elementwise.minimum(a.value, b.value), parents: [a, b]) { g in
        let toA = Elementwise.lessOrEqualMask(a.value, b.value)
        if a.requiresGrad { a.accumulateGradient(Broadcasting.sum(Elementwise.multiply(g, toA), toShape: a.shape)) }
        if b.requiresGrad {
            let toB = Elementwise.affine(toA, scale: -1, shift: 1)
            b.accumulateGradient(Broadcasting.sum(Elementwise.multiply(g, toB), toShape: b.shape))
        }
    }
}

extension Variable {
    /// `e^x`.
    public func exp() -> Variable {
        let y = Elementwise.exp(value)
        return Variable.result(y, parents: [self]) { [self] g in accumulateGradient(Elementwise.multiply(g, y)) }
    }

    /// Natural logarithm.
    public func log() -> Variable {
        Variable.result(Elementwise.log(value), parents: [self]) { [self] g in
            accumulateGradient(Elementwise.divide(g, value))
        }
    }

    /// Square root.
    public func sqrt() -> Variable {
        let y = Elementwise.sqrt(value)
        return Variable.result(y, parents: [self]) { [self] g in
            accumulateGradient(Elementwise.affine(Elementwise.divide(g, y), scale: 0.5, shift: 0))
        }
    }

    /// Absolute value (gradient 0 at 0).
    public func abs() -> Variable {
        Variable.result(Elementwise.abs(value), parents: [self]) { [self] g in
            accumulateGradient(Elementwise.multiply(g, Elementwise.sign(value)))
        }
    }

    /// Logistic sigmoid.
    public func sigmoid() -> Variable {
        let y = Elementwise.sigmoid(value)
        return Variable.result(y, parents: [self]) { [self] g in
            // dy/dx = y (1 - y)
            accumulateGradient(Elementwise.multiply(g, Elementwise.multiply(y, Elementwise.affine(y, scale: -1, shift: 1))))
        }
    }

    /// Hyperbolic tangent.
    public func tanh() -> Variable {
        let y = Elementwise.tanh(value)
        return Variable.result(y, parents: [self]) { [self] g in
            accumulateGradient(Elementwise.multiply(g, Elementwise.affine(Elementwise.multiply(y, y), scale: -1, shift: 1)))
        }
    }

    /// `x` limited to `[lower, upper]` (gradient 0 where clipped).
    public func clamped(min lower: Float = -.infinity, max upper: Float = .infinity) -> Variable {
        let y = Tensor(shape: value.shape) { out in
            value.withUnsafeBufferPointer { x in
                for i in 0..<x.count { out[i] = Swift.min(Swift.max(x[i], lower), upper) }
            }
        }
        return Variable.result(y, parents: [self]) { [self] g in
            let passed = Tensor(shape: value.shape) { out in
                value.withUnsafeBufferPointer { x in
                    g.withUnsafeBufferPointer { gp in
                        for i in 0..<x.count { out[i] = x[i] >= lower && x[i] <= upper ? gp[i] : 0 }
                    }
                }
            }
            accumulateGradient(passed)
        }
    }
}

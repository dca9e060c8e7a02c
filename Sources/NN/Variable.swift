@_exported import Tensor

/// A node of the autograd graph: a tensor value, its accumulated gradient, and how to pass a
/// gradient back to the variables it was computed from.
///
/// Each op builds its result with `Variable.result(_:parents:backward:)`, recording a closure that
/// receives the result's gradient and accumulates the inputs' gradients; `backward()` walks the
/// graph in reverse topological order calling those closures. Ops are coarse (a whole linear layer,
/// a whole attention), so the tape stays short.
public final class Variable {
    /// The value. Optimizers update parameters in place; use `assign(_:)` to replace it.
    public internal(set) var value: Tensor
    /// The gradient accumulated by `backward()` (nil until one arrives). Kept for leaves; freed for
    /// intermediate results once passed on, to bound memory.
    public var grad: Tensor?
    /// Whether gradients flow to this variable (true for parameters and for results computed from them).
    public let requiresGrad: Bool
    let parents: [Variable]
    let backwardStep: ((Tensor) -> Void)?

    /// A leaf: a constant input (`requiresGrad: false`) or a trainable parameter.
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.parents = []
        self.backwardStep = nil
    }

    private init(value: Tensor, parents: [Variable], backward: @escaping (Tensor) -> Void) {
        self.value = value
        self.requiresGrad = true
        self.parents = parents
        self.backwardStep = backward
    }

    /// The result of an op: recorded on the graph only when gradients are enabled and some input
    /// needs them, otherwise a constant.
    public static func result(_ value: Tensor, parents: [Variable], backward: @escaping (Tensor) -> Void) -> Variable {
        if GradientMode.isEnabled && parents.contains(where: \.requiresGrad) {
            return Variable(value: value, parents: parents, backward: backward)
        }
        return Variable(value)
    }

    public var shape: [Int] { value.shape }
    public var count: Int { value.count }
    /// The value of a one-element variable.
    public var scalar: Float { value.scalar }

    /// Replaces the value (e.g. when loading a checkpoint); the shape must not change.
    public func assign(_ newValue: Tensor) {
        checkSameShape(value.shape, newValue.shape, "Variable.assign")
        value = newValue
    }

    /// Adds `gradient` to `grad` (a gradient used by several consumers accumulates).
    public func accumulateGradient(_ gradient: Tensor) {
        checkSameShape(value.shape, gradient.shape, "gradient vs value")
        if grad == nil {
            grad = gradient
        } else {
            Elementwise.addScaled(gradient, into: &grad!)
        }
    }

    /// Clears the gradient.
    public func zeroGrad() { grad = nil }

    /// Back-propagates from this scalar: every variable it depends on that requires gradients gets
    /// `d self / d variable` added to its `grad`.
    public func backward() {
        precondition(value.count == 1, "backward(): needs a scalar, got shape \(value.shape)")
        backward(gradient: Tensor(repeating: 1, shape: value.shape))
    }

    /// Back-propagates `gradient`, taken as `d loss / d self` for some downstream loss (same shape as the
    /// value): every variable this one depends on gets `d loss / d variable` added to its `grad`. Lets a
    /// benchmark or a caller holding an upstream gradient run one op's backward pass alone.
    public func backward(gradient: Tensor) {
        checkSameShape(value.shape, gradient.shape, "backward(gradient:): gradient vs value")
        guard requiresGrad else { return }
        let order = topologicalOrder()
        accumulateGradient(gradient)
        for node in order.reversed() {
            guard let step = node.backwardStep, let gradient = node.grad else { continue }
            step(gradient)
            node.grad = nil
        }
    }

    /// Nodes that need gradients, each after all of its parents (iterative DFS: graphs of deep models
    /// would overflow a recursive one).
    private func topologicalOrder() -> [Variable] {
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for parent in node.parents where parent.requiresGrad && !visited.contains(ObjectIdentifier(parent)) {
                stack.append((parent, false))
            }
        }
        return order
    }
}

/// Whether ops record the graph. Evaluation runs inside `GradientMode.withoutGradients { ... }`, so
/// no backward closures (and no saved activations) are kept.
public enum GradientMode {
    @TaskLocal static var disabled = false

    /// True unless inside `withoutGradients`.
    public static var isEnabled: Bool { !disabled }

    /// Runs `body` without recording the autograd graph.
    public static func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
        try $disabled.withValue(true) { try body() }
    }
}

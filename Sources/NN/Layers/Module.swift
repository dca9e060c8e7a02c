import Tensor

/// A layer or model that owns parameters.
///
/// `namedParameters()` lists every trainable variable under a stable dotted name (children prefixed
/// with their field name, e.g. `encoder.0.self_attn.q_proj.weight`), in a fixed order. Optimizers,
/// gradient clipping, checkpoints and a future all-reduce all walk this list.
public protocol Module: AnyObject {
    func namedParameters() -> [(name: String, parameter: Variable)]
}

extension Module {
    /// The trainable variables, in `namedParameters()` order.
    public var parameters: [Variable] { namedParameters().map(\.parameter) }

    /// Total number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// The parameters of `child`, named `prefix.childName`.
    public func parameters(of child: Module, prefix: String) -> [(name: String, parameter: Variable)] {
        child.namedParameters().map { (name: "\(prefix).\($0.name)", parameter: $0.parameter) }
    }
}

/// Per-call state a forward pass needs beyond its inputs: whether it is training (dropout on) and the
/// generator dropout masks are drawn from. One context threads through a whole model, so a run is
/// reproducible from its seed and its generator state can be checkpointed.
public final class ForwardContext {
    /// True while training: dropout is applied.
    public var isTraining: Bool
    /// The generator all dropout masks of the pass draw their seeds from.
    public var generator: SeededGenerator
    /// Set while the pass computes a slice of a whole batch (data-parallel training): which samples the
    /// leading axis holds, so that dropout masks and other per-sample draws are the whole batch's.
    public var batchRows: BatchRows?

    public init(isTraining: Bool, generator: SeededGenerator = SeededGenerator(seed: 0)) {
        self.isTraining = isTraining
        self.generator = generator
    }
}

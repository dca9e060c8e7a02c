import Tensor

/// A learned table of `count` vectors of `width` (initialised `N(0, 1)`, as PyTorch).
public final class Embedding: Module {
    public let weight: Variable

    public init(count: Int, width: Int, generator: inout SeededGenerator) {
        weight = Variable(Initialization.normal(shape: [count, width], generator: &generator), requiresGrad: true)
    }

    /// Rows for `indices`, shaped `indexShape + [width]`.
    public func callAsFunction(_ indices: [Int], indexShape: [Int]) -> Variable {
        embeddingLookup(weight, indices: indices, indexShape: indexShape)
    }

    /// The whole table as a variable (e.g. DETR's query embeddings), `[count, width]`.
    public var table: Variable { weight }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        [(name: "weight", parameter: weight)]
    }
}

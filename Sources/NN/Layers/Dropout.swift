import Tensor

/// Inverted dropout, active only when the context is training.
public struct Dropout: Sendable {
    public let probability: Float

    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "Dropout: probability must be in [0, 1), got \(probability)")
        self.probability = probability
    }

    public func callAsFunction(_ x: Variable, context: ForwardContext) -> Variable {
        guard context.isTraining && probability > 0 else { return x }
        return dropout(x, probability: probability, generator: &context.generator, rows: context.batchRows)
    }
}

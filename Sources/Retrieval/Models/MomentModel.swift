import NN

/// What the train and mask-eval stages need from a moment retrieval model, whatever its architecture
/// (QD-DETR / TD-DETR or CDNet): its parameters, one training loss, and predictions.
public protocol MomentModel: Module {
    /// Forward pass in training mode plus the loss, with every weighted term by name (for the log).
    func trainingLoss(_ batch: MomentBatch, context: ForwardContext) -> (total: Variable, terms: [String: Float])
    /// Evaluation: per sample, windows in seconds sorted by score and one saliency score per valid clip.
    func predict(_ batch: MomentBatch) -> [MomentRetrieval]
}

extension MomentDETR: MomentModel {
    public func trainingLoss(_ batch: MomentBatch, context: ForwardContext) -> (total: Variable, terms: [String: Float]) {
        loss(forward(batch, context: context), batch: batch)
    }
}

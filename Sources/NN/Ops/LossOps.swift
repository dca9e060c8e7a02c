import Tensor

// Losses as coarse ops on a prediction and a constant target, each returning a scalar `[]`.

/// Mean (or summed) absolute error.
public func l1Loss(_ prediction: Variable, _ target: Tensor, reduction: LossReduction = .mean) -> Variable {
    let loss = LossKernels.l1(prediction.value, target, reduction: reduction)
    return Variable.result(Tensor(scalar: loss), parents: [prediction]) { g in
        prediction.accumulateGradient(LossKernels.l1Backward(prediction.value, target, reduction: reduction, outputGradient: g.scalar))
    }
}

/// Smooth L1 (Huber) loss with threshold `beta`.
public func smoothL1Loss(_ prediction: Variable, _ target: Tensor, beta: Float = 1, reduction: LossReduction = .mean) -> Variable {
    let loss = LossKernels.smoothL1(prediction.value, target, beta: beta, reduction: reduction)
    return Variable.result(Tensor(scalar: loss), parents: [prediction]) { g in
        prediction.accumulateGradient(LossKernels.smoothL1Backward(prediction.value, target, beta: beta, reduction: reduction,
                                                                   outputGradient: g.scalar))
    }
}

/// Cross entropy of `logits` `[N, C]` against class indices, with optional per-class weights
/// (weighted mean, as PyTorch).
public func crossEntropyLoss(_ logits: Variable, targets: [Int], classWeights: [Float]? = nil) -> Variable {
    let (loss, logP) = LossKernels.crossEntropy(logits: logits.value, targets: targets, classWeights: classWeights)
    return Variable.result(Tensor(scalar: loss), parents: [logits]) { g in
        logits.accumulateGradient(LossKernels.crossEntropyBackward(logProbabilities: logP, targets: targets,
                                                                   classWeights: classWeights, outputGradient: g.scalar))
    }
}

/// Binary cross entropy on logits against targets in `[0, 1]`.
public func binaryCrossEntropyWithLogits(_ logits: Variable, _ targets: Tensor, reduction: LossReduction = .mean) -> Variable {
    let loss = LossKernels.binaryCrossEntropyWithLogits(logits.value, targets, reduction: reduction)
    return Variable.result(Tensor(scalar: loss), parents: [logits]) { g in
        logits.accumulateGradient(LossKernels.binaryCrossEntropyWithLogitsBackward(logits.value, targets, reduction: reduction,
                                                                                   outputGradient: g.scalar))
    }
}

/// Sigmoid focal loss (RetinaNet): `alpha_t (1 - p_t)^gamma BCE`; `alpha < 0` disables weighting.
public func sigmoidFocalLoss(_ logits: Variable, _ targets: Tensor, alpha: Float = 0.25, gamma: Float = 2,
                             reduction: LossReduction = .mean) -> Variable {
    let loss = LossKernels.sigmoidFocal(logits.value, targets, alpha: alpha, gamma: gamma, reduction: reduction)
    return Variable.result(Tensor(scalar: loss), parents: [logits]) { g in
        logits.accumulateGradient(LossKernels.sigmoidFocalBackward(logits.value, targets, alpha: alpha, gamma: gamma,
                                                                   reduction: reduction, outputGradient: g.scalar))
    }
}

/// A contrastive (InfoNCE-style) term from log-softmax: for each row of `scores` `[N, C]`,
/// `-sum_j positive[i, j] log softmax(scores_i + maskOffset_i)_j / sum_j positive[i, j]`, averaged over
/// rows that have a positive. `validColumns` (`[N, C]`, 1 = candidate) excludes columns from the
/// softmax; rows without positives are skipped.
public func softmaxContrastiveLoss(_ scores: Variable, positives: Tensor, validColumns: Tensor? = nil) -> Variable {
    checkSameShape(scores.shape, positives.shape, "softmaxContrastiveLoss scores vs positives")
    precondition(scores.value.rank == 2, "softmaxContrastiveLoss: scores must be [N, C], got \(scores.shape)")
    let (rows, columns) = (scores.shape[0], scores.shape[1])
    var input = scores
    if let validColumns {
        checkSameShape(validColumns.shape, scores.shape, "softmaxContrastiveLoss valid columns vs scores")
        let offset = Tensor(shape: scores.shape) { out in
            for i in 0..<out.count { out[i] = validColumns.data[i] > 0.5 ? 0 : -1e9 }
        }
        input = scores + Variable(offset)
    }
    // Row weights 1 / (positives in row * rows with positives), zero for rows without positives.
    var rowsWithPositives = 0
    var rowTotals = [Float](repeating: 0, count: rows)
    for i in 0..<rows {
        for j in 0..<columns { rowTotals[i] += positives.data[i * columns + j] }
        if rowTotals[i] > 0 { rowsWithPositives += 1 }
    }
    let weights = Tensor(shape: scores.shape) { out in
        for i in 0..<rows {
            let w: Float = rowTotals[i] > 0 ? -1 / (rowTotals[i] * Float(rowsWithPositives)) : 0
            for j in 0..<columns { out[i * columns + j] = positives.data[i * columns + j] * w }
        }
    }
    let logP = input.logSoftmax(axis: 1)
    // Excluded columns get a large finite offset rather than -inf, so that 0 x log p stays 0.
    return (logP * Variable(weights)).sum()
}

import NN
import Tensor

/// Small compositions of NN ops that several CDNet modules share.
enum CDNetOps {
    /// `x / sqrt(|x|^2 + epsilon)` along the last axis: rows of unit length, so that dot products of
    /// normalised rows are cosine similarities.
    static func normalized(_ x: Variable, epsilon: Float = 1e-8) -> Variable {
        x / ((x * x).sum(axis: -1, keepingDimension: true) + epsilon).sqrt()
    }

    /// Cosine similarity of every row of `a` `[B, La, D]` with every row of `b` `[B, Lb, D]`: `[B, La, Lb]`.
    static func cosineSimilarities(_ a: Variable, _ b: Variable) -> Variable {
        matmul(normalized(a), normalized(b), transposeB: true)
    }

    /// Valid clips of sample `row` of a `[B, L]` validity mask.
    static func validCount(_ videoMask: Tensor, row: Int) -> Int {
        let length = videoMask.shape[1]
        var count = 0
        for t in 0..<length where videoMask.data[row * length + t] > 0.5 { count += 1 }
        return count
    }

    /// `[B, L, 1]` copy of a `[B, L]` validity mask, to zero padded tokens by broadcasting.
    static func tokenMask(_ validity: Tensor) -> Variable {
        Variable(validity.reshaped([validity.shape[0], validity.shape[1], 1]))
    }

    /// Stochastic depth on a residual branch `x` `[B, ...]`: while training, each sample's branch is
    /// dropped with probability `p` and kept ones are scaled by `1 / (1 - p)`; one draw per sample of the
    /// whole batch from the context's generator (a slice of a batch draws them all and keeps its own).
    static func dropPath(_ x: Variable, probability p: Float, context: ForwardContext) -> Variable {
        guard context.isTraining && p > 0 else { return x }
        let batch = x.shape[0]
        var maskShape = [Int](repeating: 1, count: x.shape.count)
        maskShape[0] = batch
        let keep = 1 - p
        let rows = context.batchRows
        let kept = (0..<(rows?.whole ?? batch)).map { _ in context.generator.nextUniform() < keep }
        let mask = Tensor(shape: maskShape) { out in
            for b in 0..<batch { out[b] = kept[rows?.wholeRow(b) ?? b] ? 1 / keep : 0 }
        }
        return x * Variable(mask)
    }
}

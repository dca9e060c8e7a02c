import NN
import Tensor

/// Temporal span arithmetic in normalised (center, width) and (start, end) form.
public enum SpanGeometry {
    /// Generalised IoU of two `[start, end]` spans: `IoU - (hull - union) / hull`.
    public static func generalizedIoU(_ a: (start: Double, end: Double), _ b: (start: Double, end: Double)) -> Double {
        let intersection = max(min(a.end, b.end) - max(a.start, b.start), 0)
        let union = (a.end - a.start) + (b.end - b.start) - intersection
        let hull = max(max(a.end, b.end) - min(a.start, b.start), 0)
        return intersection / union - (hull - union) / hull
    }

    /// `(center, width)` to `(start, end)`.
    public static func startEnd(center: Double, width: Double) -> (start: Double, end: Double) {
        (center - width / 2, center + width / 2)
    }

    /// Per row, `1 - gIoU` of predicted and target spans given as `[M, 2]` (center, width): a
    /// differentiable `[M, 1]`, unreduced so callers choose the reduction.
    static func generalizedIoULoss(predicted: Variable, target: Tensor) -> Variable {
        let center = predicted.sliced(axis: 1, 0..<1), width = predicted.sliced(axis: 1, 1..<2)
        let start = center - width * 0.5, end = center + width * 0.5
        let targetCenter = Variable(ShapeKernels.slice(target, axis: 1, range: 0..<1))
        let targetWidth = Variable(ShapeKernels.slice(target, axis: 1, range: 1..<2))
        let targetStart = targetCenter - targetWidth * 0.5, targetEnd = targetCenter + targetWidth * 0.5
        let intersection = (minimum(end, targetEnd) - maximum(start, targetStart)).clamped(min: 0)
        let union = (end - start) + (targetEnd - targetStart) - intersection
        let hull = (maximum(end, targetEnd) - minimum(start, targetStart)).clamped(min: 0)
        let giou = intersection / union - (hull - union) / hull
        return 1 - giou
    }

    /// The reference's `inverse_sigmoid`: `log(x / (1 - x))` with `x` clamped to `[0, 1]` and both
    /// numerator and denominator floored at `eps`.
    static func inverseSigmoid(_ x: Variable, epsilon: Float = 1e-3) -> Variable {
        let clamped = x.clamped(min: 0, max: 1)
        return (clamped.clamped(min: epsilon) / (1 - clamped).clamped(min: epsilon)).log()
    }
}

import Foundation

/// A span of a video in seconds, `start <= end`.
public struct TimeWindow: Equatable, Hashable, Sendable {
    public var start: Double
    public var end: Double

    public init(start: Double, end: Double) {
        self.start = start
        self.end = end
    }

    /// `end - start`, the quantity the official evaluation uses to put a window in a length bucket.
    public var length: Double { end - start }

    /// Temporal IoU as the official `compute_temporal_iou_batch_cross` computes it: the intersection over
    /// `(length1 + length2) - intersection`. Two zero-length windows give NaN (0/0), as numpy does.
    public func intersectionOverUnion(_ other: TimeWindow) -> Double {
        let intersection = max(min(end, other.end) - max(start, other.start), 0)
        let union = (length + other.length) - intersection
        return intersection / union
    }

    /// Temporal IoU as the official `compute_temporal_iou_batch_paired` computes it (used for R1): the
    /// intersection over the span from the earliest start to the latest end, and 0 when that span is empty.
    /// It equals `intersectionOverUnion` in exact arithmetic whenever the windows overlap, but it is not always
    /// the same Double, so R1 must use this one to reproduce the official numbers.
    public func intersectionOverHull(_ other: TimeWindow) -> Double {
        let intersection = max(0, min(end, other.end) - max(start, other.start))
        let hull = max(end, other.end) - min(start, other.start)
        return hull != 0 ? intersection / hull : 0
    }
}

/// A predicted window with its confidence score.
public struct ScoredWindow: Equatable, Sendable {
    public var window: TimeWindow
    public var score: Double

    public init(start: Double, end: Double, score: Double) {
        self.window = TimeWindow(start: start, end: end)
        self.score = score
    }

    public var start: Double { window.start }
    public var end: Double { window.end }
}

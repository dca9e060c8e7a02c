import Foundation
import Tensor

/// DETR's sine positional encoding over time (as Moment-DETR / QD-DETR use it): the position is the
/// running count of valid clips, optionally normalised to `(0, scale]` by the number of valid clips,
/// and feature `i` is `sin` (even `i`) or `cos` (odd `i`) of `position / temperature^(2 floor(i/2) / F)`.
public struct SinePositionalEncoding: Sendable {
    public let featureCount: Int
    public let temperature: Float
    public let normalize: Bool
    public let scale: Float

    public init(featureCount: Int, temperature: Float = 10000, normalize: Bool = true, scale: Float = 2 * .pi) {
        self.featureCount = featureCount
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
    }

    /// Encodings `[B, L, featureCount]` for a validity mask `[B, L]` (1 = valid clip).
    public func encode(validity: Tensor) -> Tensor {
        precondition(validity.rank == 2, "SinePositionalEncoding: validity must be [B, L], got \(validity.shape)")
        let (batch, length) = (validity.shape[0], validity.shape[1])
        let frequencies = (0..<featureCount).map { i in
            Foundation.pow(temperature, Float(2 * (i / 2)) / Float(featureCount))
        }
        let rowSize = length * featureCount
        return Tensor(shape: [batch, length, featureCount]) { out in
            // Samples with the same running counts (in a batch of whole videos, nearly all) get the same rows: each
            // distinct one is encoded once and copied.
            var encoded: [[Float]: Int] = [:]
            for b in 0..<batch {
                var running = [Float](repeating: 0, count: length)
                var total: Float = 0
                for t in 0..<length {
                    total += validity[b, t]
                    running[t] = total
                }
                if let earlier = encoded[running] {
                    (out.baseAddress! + b * rowSize).update(from: out.baseAddress! + earlier * rowSize, count: rowSize)
                    continue
                }
                encoded[running] = b
                for t in 0..<length {
                    let position = normalize ? running[t] / (total + 1e-6) * scale : running[t]
                    let row = out.baseAddress! + (b * length + t) * featureCount
                    for i in 0..<featureCount {
                        let angle = position / frequencies[i]
                        row[i] = i % 2 == 0 ? Foundation.sin(angle) : Foundation.cos(angle)
                    }
                }
            }
        }
    }
}

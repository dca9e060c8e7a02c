import Foundation
import Tensor

/// Sine embedding of continuous coordinates, as DAB-DETR embeds its anchors: `x` `[..., C]` becomes
/// `[..., C * F]`, the `F` features of coordinate `c` being `sin` (even `i`) or `cos` (odd `i`) of
/// `x_c * scale / temperature^(2 floor(i / 2) / F)`. Unlike `SinePositionalEncoding` (a constant of the
/// mask), the coordinates here are learned, so the op is differentiable in `x`.
public func sineEmbedding(_ x: Variable, featuresPerCoordinate features: Int, temperature: Float = 10000,
                          scale: Float = 2 * .pi) -> Variable {
    precondition(features > 0 && features % 2 == 0,
                 "sineEmbedding: features per coordinate must be even and positive, got \(features)")
    precondition(x.value.rank >= 1, "sineEmbedding: needs at least one dimension, got \(x.shape)")
    let coordinates = x.count
    // Angle multiplier of feature i: scale / temperature^(2 floor(i/2) / F).
    let multipliers = (0..<features).map { i in
        scale / Foundation.pow(temperature, Float(2 * (i / 2)) / Float(features))
    }
    let outShape = Array(x.shape.dropLast()) + [x.shape[x.value.rank - 1] * features]
    let y = Tensor(shape: outShape) { out in
        x.value.withUnsafeBufferPointer { input in
            for c in 0..<coordinates {
                let row = out.baseAddress! + c * features
                for i in 0..<features {
                    let angle = input[c] * multipliers[i]
                    row[i] = i % 2 == 0 ? Foundation.sin(angle) : Foundation.cos(angle)
                }
            }
        }
    }
    return Variable.result(y, parents: [x]) { g in
        let dx = Tensor(shape: x.shape) { out in
            x.value.withUnsafeBufferPointer { input in
                g.withUnsafeBufferPointer { gp in
                    for c in 0..<coordinates {
                        var total: Float = 0
                        for i in 0..<features {
                            let angle = input[c] * multipliers[i]
                            let derivative = i % 2 == 0 ? Foundation.cos(angle) : -Foundation.sin(angle)
                            total += gp[c * features + i] * derivative * multipliers[i]
                        }
                        out[c] = total
                    }
                }
            }
        }
        x.accumulateGradient(dx)
    }
}

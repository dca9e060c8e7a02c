import Foundation
import NN
import Tensor

/// Context-aware dynamic denoising (CDD, paper section 3.2): a 1-D deformable attention in the style of
/// DAT, which the paper's description (down-sampled reference grid, offset network of a `k`-wide
/// convolution, GELU and a bias-free 1x1 convolution, interpolation sampling) follows.
///
/// For tokens `x` `[B, L, D]` (the disentangled video):
/// 1. `q = x W_q`.
/// 2. Offset network on `q` (padding clips zeroed): `conv1d(k, stride r, padding (k-1)/2) -> GELU ->
///    conv1d(1, no bias)` gives `[B, M, G]` raw offsets, `M = ceil(L / r)`, one per reference point and
///    offset group. The stride-`r` convolution *is* the down-sampling: output `m` is centred on clip `m r`,
///    which is reference point `m`. The first convolution is a full one, not DAT's depth-wise one (the NN
///    core has no grouped convolution).
/// 3. Reference points `p_m = m r` (clip units). The paper normalises them to `[-1, 1]`; per sample that is
///    `2 p_m / (L_b - 1) - 1` for its `L_b` valid clips, an affine change of units, so the sampling here
///    works in clip units directly. Offsets are bounded as in DAT, `range * tanh(raw)` reference-grid steps,
///    i.e. `r * range * tanh(raw)` clips, and the sampling position `p_m + offset` is clamped into the
///    sample's valid clips `[0, L_b - 1]`, so that padding is never read. Points with `p_m >= L_b` lie in
///    the padding and are masked as keys.
/// 4. `x~ = interpolate(x, at: positions)`, linear interpolation between the two neighbouring clips,
///    differentiable in the features and the positions (channel group `g` sampled at group `g`'s offsets).
/// 5. Cross-attention with `q` as queries and `x~ W_k`, `x~ W_v` as keys and values (eq. 12-13), output
///    projection, then `LayerNorm(x + droppath(attention))`.
///
/// Equations 9-11 contain a Hadamard product whose operands were lost; the tokens sampled here already
/// carry the relevance score as a Hadamard factor (`V_d = r * V_c`), which is the reading taken.
public final class ContextDenoising: Module {
    public let queryProjection: Linear
    public let keyProjection: Linear
    public let valueProjection: Linear
    public let outputProjection: Linear
    /// `[D, k, D]` and `[D]`: the offset network's first convolution.
    public let offsetConvWeight: Variable
    public let offsetConvBias: Variable
    /// `[G, 1, D]`: the bias-free 1x1 convolution giving the offsets.
    public let offsetPointWeight: Variable
    public let norm: LayerNorm
    public let heads: Int
    public let downsampling: Int
    public let offsetRange: Float
    public let attentionDropout: Float
    public let dropPath: Float

    public init(width: Int, heads: Int, downsampling: Int, offsetKernel: Int, offsetGroups: Int, offsetRange: Float,
                dropout: Float, dropPath: Float, generator: inout SeededGenerator) {
        precondition(width % offsetGroups == 0, "ContextDenoising: width \(width) not divisible by \(offsetGroups) groups")
        queryProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, generator: &generator)
        keyProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, generator: &generator)
        valueProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, generator: &generator)
        outputProjection = Linear(inFeatures: width, outFeatures: width, zeroBias: true, generator: &generator)
        // PyTorch's default convolution initialisation bound, 1 / sqrt(fan-in).
        let convBound = 1 / Float(offsetKernel * width).squareRoot()
        offsetConvWeight = Variable(Initialization.uniform(shape: [width, offsetKernel, width], bound: convBound,
                                                           generator: &generator), requiresGrad: true)
        offsetConvBias = Variable(Initialization.uniform(shape: [width], bound: convBound, generator: &generator),
                                  requiresGrad: true)
        offsetPointWeight = Variable(Initialization.uniform(shape: [offsetGroups, 1, width], bound: 1 / Float(width).squareRoot(),
                                                            generator: &generator), requiresGrad: true)
        norm = LayerNorm(width: width)
        self.heads = heads
        self.downsampling = downsampling
        self.offsetRange = offsetRange
        attentionDropout = dropout
        self.dropPath = dropPath
    }

    public var offsetKernel: Int { offsetConvWeight.shape[1] }
    public var offsetGroups: Int { offsetPointWeight.shape[0] }

    /// Reference points `M = ceil(L / r)` for `L` clip slots.
    public func referenceCount(length: Int) -> Int { (length - 1) / downsampling + 1 }

    /// Raw offset-network output `[B, M, G]` for projected queries `q` `[B, L, D]`.
    public func rawOffsets(_ query: Variable, videoMask: Tensor) -> Variable {
        let hidden = conv1d(query * CDNetOps.tokenMask(videoMask), weight: offsetConvWeight, bias: offsetConvBias,
                            stride: downsampling, padding: (offsetKernel - 1) / 2).gelu()
        return conv1d(hidden, weight: offsetPointWeight, bias: nil)
    }

    /// Sampling positions `[B, M, G]` in clip units: reference points plus bounded offsets, clamped into
    /// each sample's valid clips.
    public func samplingPositions(rawOffsets raw: Variable, videoMask: Tensor) -> Variable {
        let (b, m) = (raw.shape[0], raw.shape[1])
        let reference = Tensor(shape: [1, m, 1]) { out in
            for i in 0..<m { out[i] = Float(i * downsampling) }
        }
        let upper = Tensor(shape: [b, 1, 1]) { out in
            for row in 0..<b { out[row] = Float(max(CDNetOps.validCount(videoMask, row: row) - 1, 0)) }
        }
        let shifted = raw.tanh() * (offsetRange * Float(downsampling)) + Variable(reference)
        return minimum(shifted.clamped(min: 0), Variable(upper))
    }

    /// Denoised tokens `[B, L, D]` for `x` `[B, L, D]` with its `[B, L]` validity mask.
    public func callAsFunction(_ x: Variable, videoMask: Tensor, context: ForwardContext) -> Variable {
        let (b, width) = (x.shape[0], x.shape[2])
        let query = queryProjection(x)
        let positions = samplingPositions(rawOffsets: rawOffsets(query, videoMask: videoMask), videoMask: videoMask)
        let m = positions.shape[1]
        let groups = offsetGroups, groupWidth = width / groups
        let sampled: Variable
        if groups == 1 {
            sampled = interpolate(x, at: positions.reshaped([b, m]))
        } else {
            sampled = concat((0..<groups).map { g in
                interpolate(x.sliced(axis: 2, (g * groupWidth)..<((g + 1) * groupWidth)),
                            at: positions.sliced(axis: 2, g..<(g + 1)).reshaped([b, m]))
            }, axis: 2)
        }
        let keyPadding = KeyPaddingMask(batch: b, length: m, isPadding: (0..<b).flatMap { row in
            let valid = CDNetOps.validCount(videoMask, row: row)
            return (0..<m).map { $0 * downsampling >= valid }
        })
        let attended = scaledDotProductAttention(
            query: query, key: keyProjection(sampled), value: valueProjection(sampled), heads: heads,
            keyPaddingMask: keyPadding, dropout: context.isTraining ? attentionDropout : 0,
            generator: &context.generator, rows: context.batchRows)
        return norm(x + CDNetOps.dropPath(outputProjection(attended), probability: dropPath, context: context))
    }

    public func namedParameters() -> [(name: String, parameter: Variable)] {
        parameters(of: queryProjection, prefix: "q_proj") + parameters(of: keyProjection, prefix: "k_proj")
            + parameters(of: valueProjection, prefix: "v_proj") + parameters(of: outputProjection, prefix: "out_proj")
            + [(name: "offset_net.conv.weight", parameter: offsetConvWeight),
               (name: "offset_net.conv.bias", parameter: offsetConvBias),
               (name: "offset_net.point.weight", parameter: offsetPointWeight)]
            + parameters(of: norm, prefix: "norm")
    }
}

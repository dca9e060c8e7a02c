/// Everything that shapes a QD-DETR / TD-DETR model and its training objective, as plain data with
/// the defaults in one place. The defaults are the TD-DETR paper's QVHighlights setting with TDEM off,
/// i.e. the QD-DETR baseline; `ModelConfig.tdDETR` switches the dynamics module on.
public struct ModelConfig: Sendable, Equatable, Codable {
    /// Width of the per-clip video features (2816 SlowFast + CLIP, plus 2 `tef` dims on QVHighlights).
    public var videoFeatureWidth = 2818
    /// Width of the per-token text features (CLIP text: 512).
    public var textFeatureWidth = 512
    /// Hidden width `d` of every transformer layer.
    public var hiddenWidth = 256
    public var heads = 8
    public var feedForwardWidth = 1024
    /// Text-to-video cross-attention layers.
    public var textToVideoLayers = 2
    /// Self-attention encoder layers over `[global token, video]`.
    public var encoderLayers = 2
    public var decoderLayers = 2
    /// Moment queries (anchors) `N`.
    public var queryCount = 10
    /// LayerNorm-Dropout-Linear(-ReLU) blocks in each input projection.
    public var inputProjectionLayers = 2
    /// Dropout inside the transformer (attention weights, residual branches, feed-forward).
    public var dropout: Float = 0.1
    /// Dropout of the input projections.
    public var inputDropout: Float = 0.5
    /// Reproduces the reference's batch-misaligned text-to-video attention mask
    /// (`TextToVideoLayer.referenceBlockedPairs`), under which a sample's outputs depend on the other
    /// samples of its batch. For parity with the reference only; off, each sample sees its own text.
    public var referenceTextToVideoMask = false

    /// Temporal dynamics enhancement module (TD-DETR section 3.2) in every text-to-video layer.
    /// Off, the model is exactly QD-DETR.
    public var tdem = false
    /// Injection ratio `beta` of `V' = beta V + (1 - beta) T'` (paper 0.5; the authors' code 0.7).
    public var beta: Float = 0.5
    /// Which reading of TDEM to build (the paper's equations or the authors' public code).
    public var tdemVariant: TDEMVariant = .paper
    /// Whether the training set is extended with synthesized videos (VSDC, paper section 3.1). The
    /// model accepts batches of any composition; the train stage reads this flag to build its data.
    public var vsdc = false

    /// Loss (and matching-cost) coefficients.
    public var coefficients: LossCoefficients = .paper
    /// Losses on every decoder layer, each re-matched (as the reference's `aux_loss`).
    public var auxiliaryLosses = true
    /// Margin of the saliency hinge loss.
    public var saliencyMargin: Float = 0.2
    /// Cross-entropy weight of the background class (foreground weight 1).
    public var backgroundWeight: Float = 0.1
    /// Temperature of the rank-aware saliency contrastive loss.
    public var rankTemperature: Float = 0.5

    public init() {}

    /// The QD-DETR baseline with the given coefficient preset.
    public static func qdDETR(coefficients: LossCoefficients = .paper) -> ModelConfig {
        var config = ModelConfig()
        config.coefficients = coefficients
        return config
    }

    /// TD-DETR: the baseline plus TDEM and VSDC.
    public static func tdDETR(coefficients: LossCoefficients = .paper) -> ModelConfig {
        var config = qdDETR(coefficients: coefficients)
        config.tdem = true
        config.vsdc = true
        return config
    }

    /// One cell of the paper's ablation (table 4): baseline, VSDC only, TDEM only, or both.
    public static func ablation(vsdc: Bool, tdem: Bool, coefficients: LossCoefficients = .paper) -> ModelConfig {
        var config = qdDETR(coefficients: coefficients)
        config.vsdc = vsdc
        config.tdem = tdem
        return config
    }

    /// Decodes a partial configuration: every key that is absent keeps its default, so a parameter file
    /// lists only its overrides.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(.videoFeatureWidth, &videoFeatureWidth)
        try c.overwrite(.textFeatureWidth, &textFeatureWidth)
        try c.overwrite(.hiddenWidth, &hiddenWidth)
        try c.overwrite(.heads, &heads)
        try c.overwrite(.feedForwardWidth, &feedForwardWidth)
        try c.overwrite(.textToVideoLayers, &textToVideoLayers)
        try c.overwrite(.encoderLayers, &encoderLayers)
        try c.overwrite(.decoderLayers, &decoderLayers)
        try c.overwrite(.queryCount, &queryCount)
        try c.overwrite(.inputProjectionLayers, &inputProjectionLayers)
        try c.overwrite(.dropout, &dropout)
        try c.overwrite(.inputDropout, &inputDropout)
        try c.overwrite(.referenceTextToVideoMask, &referenceTextToVideoMask)
        try c.overwrite(.tdem, &tdem)
        try c.overwrite(.beta, &beta)
        try c.overwrite(.tdemVariant, &tdemVariant)
        try c.overwrite(.vsdc, &vsdc)
        try c.overwrite(.coefficients, &coefficients)
        try c.overwrite(.auxiliaryLosses, &auxiliaryLosses)
        try c.overwrite(.saliencyMargin, &saliencyMargin)
        try c.overwrite(.backgroundWeight, &backgroundWeight)
        try c.overwrite(.rankTemperature, &rankTemperature)
    }

    /// Stops with a readable message when the configuration cannot build a model.
    public func validate() {
        precondition(hiddenWidth > 0 && hiddenWidth % heads == 0,
                     "ModelConfig: hidden width \(hiddenWidth) must be a positive multiple of heads \(heads)")
        precondition(hiddenWidth % 4 == 0, "ModelConfig: hidden width \(hiddenWidth) must be a multiple of 4 (anchor sine embedding)")
        precondition(decoderLayers >= 1 && queryCount >= 1, "ModelConfig: needs at least one decoder layer and one query")
        precondition(inputProjectionLayers >= 1, "ModelConfig: needs at least one input projection block")
        precondition(beta >= 0 && beta <= 1, "ModelConfig: beta must be in [0, 1], got \(beta)")
    }
}

/// The two readings of the temporal dynamics enhancement module.
public enum TDEMVariant: String, Sendable, Codable {
    /// Paper equations 2-6: differences of the layer's video tokens; the dynamics attention has its own
    /// query projection and shares the text keys/values with the video attention;
    /// `V' = beta (V + dropout(A_video)) + (1 - beta) A_dynamics`.
    case paper
    /// The authors' public code (`T2V_TransformerEncoderLayer`): differences of video tokens plus positions;
    /// a projection whose dropout is 0.1 whatever the transformer's; the dynamics attention has its own query,
    /// key and value projections over the same text; `V' = beta V + (1 - beta) A_dynamics + dropout(A_video)`,
    /// i.e. beta mixes only the residual term and the video attention is added in full; then the same
    /// `norm2(V' + FFN(norm1(V')))` as QD-DETR's layer.
    case authorsCode
}

/// Coefficients of the objective terms; the matcher uses the span, gIoU and class ones as its costs.
public struct LossCoefficients: Sendable, Equatable, Codable {
    public var span: Float
    public var giou: Float
    public var label: Float
    /// Saliency hinge (margin ranking) term.
    public var margin: Float
    /// Rank-aware contrastive saliency term.
    public var contrastive: Float
    /// Negative (mismatched) query-video pair term.
    public var negative: Float

    public init(span: Float, giou: Float, label: Float, margin: Float, contrastive: Float, negative: Float) {
        self.span = span
        self.giou = giou
        self.label = label
        self.margin = margin
        self.contrastive = contrastive
        self.negative = negative
    }

    /// TD-DETR paper, QVHighlights: margin 1, contrastive 1, L1 1, gIoU 10, CE 4, negative 4.
    public static let paper = LossCoefficients(span: 1, giou: 10, label: 4, margin: 1, contrastive: 1, negative: 4)
    /// QD-DETR's own: L1 10, gIoU 1, CE 4, and one saliency weight 1 over its three saliency terms.
    public static let qdDETR = LossCoefficients(span: 10, giou: 1, label: 4, margin: 1, contrastive: 1, negative: 1)
    /// The authors' TD-DETR code: matcher costs and loss coefficients span 1 / gIoU 10 / label 4, and
    /// `lw_saliency` 1 over its three saliency terms (hinge, rank contrastive, negative pair), as QD-DETR.
    public static let authorsCode = LossCoefficients(span: 1, giou: 10, label: 4, margin: 1, contrastive: 1, negative: 1)

    /// The preset called `name` (`paper` or `qd-detr`), or nil.
    public static func preset(named name: String) -> LossCoefficients? {
        switch name {
        case "paper": return .paper
        case "qd-detr": return .qdDETR
        default: return nil
        }
    }
}

/// Everything that shapes a CDNet model and its objective, as plain data with the defaults in one place.
///
/// The defaults are the paper's (hidden 1024, down-sampling factor r = 4, contrastive weights 0.1, every
/// other weight 1, focal gamma 2, NMS 0.7, drop path 0.1) where it states them; where it is silent the
/// choice is marked "not in the paper" and follows the works it builds on (Moment-DETR's input projection
/// and encoder, DAT's offset network, RetinaNet's focal-loss normalisation). The input widths belong to
/// the data and are set by the caller.
public struct CDNetConfig: Sendable, Equatable, Codable {
    /// Width of the per-clip video features (SlowFast + CLIP, plus 2 `tef` dims on QVHighlights).
    public var videoFeatureWidth = 2818
    /// Width of the per-token text features (CLIP text: 512).
    public var textFeatureWidth = 512
    /// Hidden width `d` (paper: 1024).
    public var hiddenWidth = 1024
    /// Heads of every multi-head attention (not in the paper).
    public var heads = 8
    /// LayerNorm-Dropout-Linear(-ReLU) blocks of each input projection ("two linear projections (MLP)").
    public var inputProjectionLayers = 2
    /// Dropout of the input projections (not in the paper; Moment-DETR's 0.5).
    public var inputDropout: Float = 0.5
    /// Dropout on attention weights and feed-forward activations (not in the paper).
    public var dropout: Float = 0.1
    /// Drop-path (stochastic depth) rate on the residual branches of the attention blocks (paper: 0.1).
    public var dropPath: Float = 0.1
    /// Transformer encoder layers of the final localizer over `[video; text]` (not in the paper).
    public var localizerLayers = 2
    /// Feed-forward width of the localizer layers (not in the paper).
    public var feedForwardWidth = 2048

    /// Down-sampling factor `r` of the reference grid of the denoising attention (paper: 4).
    public var downsamplingFactor = 4
    /// Kernel size `k` of the context offset network's first convolution (odd; not in the paper).
    public var offsetKernel = 5
    /// Offset groups: each group of `d / groups` channels is sampled at its own offsets (DAT; 1 = one
    /// offset per reference point).
    public var offsetGroups = 1
    /// Largest displacement of a sampling point, in reference-grid steps (`r` clips each):
    /// offsets are `range * tanh(raw)` (DAT's offset range factor; not in the paper).
    public var offsetRange: Float = 2

    /// Kernel size of the three convolutions of each prediction head (not in the paper).
    public var headKernel = 3
    /// Temperature dividing the cosine similarities of the three contrastive terms (not in the paper:
    /// plain cosines bound the logits to [-1, 1], which leaves the softmax nearly flat).
    public var contrastiveTemperature: Float = 0.1
    /// Initial scale of the relevance score `sigmoid(scale * cos(v_i, g) + bias)` (learned; not in the paper).
    public var relevanceInitialScale: Float = 5

    /// Focusing parameter `gamma` of the focal loss (paper: 2).
    public var focalGamma: Float = 2
    /// Class balance `alpha` of the focal loss; negative disables it (the paper's formula has none).
    public var focalAlpha: Float = -1
    /// Threshold `beta` of the smooth L1 boundary loss (offsets are fractions of the video duration).
    public var smoothL1Beta: Float = 1
    /// Loss weights.
    public var weights = CDNetLossWeights.paper

    /// Temporal NMS IoU threshold of the final moments (paper: 0.7).
    public var nmsThreshold: Float = 0.7
    /// Moments kept per sample after NMS.
    public var maxMoments = 10
    /// Which per-clip score `predict` reports as saliency.
    public var saliencySource: CDNetSaliencySource = .relevance

    /// Ablation switches (paper table 4). Global guidance: the intra- and inter-video contrastive terms.
    public var globalGuidance = true
    /// Fine-grained guidance: the clip-to-word attention and its token-level contrastive term.
    public var fineGrainedGuidance = true
    /// The relevance score multiplied onto the context-encoded video tokens.
    public var relevanceScore = true
    /// Context-aware dynamic denoising.
    public var denoising = true

    public init() {}

    /// One row of the paper's ablation (table 4).
    public static func ablation(globalGuidance: Bool, fineGrainedGuidance: Bool, relevanceScore: Bool,
                                denoising: Bool) -> CDNetConfig {
        var config = CDNetConfig()
        config.globalGuidance = globalGuidance
        config.fineGrainedGuidance = fineGrainedGuidance
        config.relevanceScore = relevanceScore
        config.denoising = denoising
        return config
    }

    /// Decodes a partial configuration: every absent key keeps its default, so a parameter file lists
    /// only its overrides.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(.videoFeatureWidth, &videoFeatureWidth)
        try c.overwrite(.textFeatureWidth, &textFeatureWidth)
        try c.overwrite(.hiddenWidth, &hiddenWidth)
        try c.overwrite(.heads, &heads)
        try c.overwrite(.inputProjectionLayers, &inputProjectionLayers)
        try c.overwrite(.inputDropout, &inputDropout)
        try c.overwrite(.dropout, &dropout)
        try c.overwrite(.dropPath, &dropPath)
        try c.overwrite(.localizerLayers, &localizerLayers)
        try c.overwrite(.feedForwardWidth, &feedForwardWidth)
        try c.overwrite(.downsamplingFactor, &downsamplingFactor)
        try c.overwrite(.offsetKernel, &offsetKernel)
        try c.overwrite(.offsetGroups, &offsetGroups)
        try c.overwrite(.offsetRange, &offsetRange)
        try c.overwrite(.headKernel, &headKernel)
        try c.overwrite(.contrastiveTemperature, &contrastiveTemperature)
        try c.overwrite(.relevanceInitialScale, &relevanceInitialScale)
        try c.overwrite(.focalGamma, &focalGamma)
        try c.overwrite(.focalAlpha, &focalAlpha)
        try c.overwrite(.smoothL1Beta, &smoothL1Beta)
        try c.overwrite(.weights, &weights)
        try c.overwrite(.nmsThreshold, &nmsThreshold)
        try c.overwrite(.maxMoments, &maxMoments)
        try c.overwrite(.saliencySource, &saliencySource)
        try c.overwrite(.globalGuidance, &globalGuidance)
        try c.overwrite(.fineGrainedGuidance, &fineGrainedGuidance)
        try c.overwrite(.relevanceScore, &relevanceScore)
        try c.overwrite(.denoising, &denoising)
    }

    /// Stops with a readable message when the configuration cannot build a model.
    public func validate() {
        precondition(videoFeatureWidth > 0 && textFeatureWidth > 0,
                     "CDNetConfig: input widths must be positive, got video \(videoFeatureWidth), text \(textFeatureWidth)")
        precondition(hiddenWidth > 0 && heads > 0 && hiddenWidth % heads == 0,
                     "CDNetConfig: hidden width \(hiddenWidth) must be a positive multiple of heads \(heads)")
        precondition(hiddenWidth % 2 == 0, "CDNetConfig: hidden width \(hiddenWidth) must be even (sine positions)")
        precondition(offsetGroups >= 1 && hiddenWidth % offsetGroups == 0,
                     "CDNetConfig: hidden width \(hiddenWidth) must be a multiple of offset groups \(offsetGroups)")
        precondition(downsamplingFactor >= 1, "CDNetConfig: down-sampling factor must be >= 1, got \(downsamplingFactor)")
        precondition(offsetKernel >= 1 && offsetKernel % 2 == 1, "CDNetConfig: offset kernel must be odd, got \(offsetKernel)")
        precondition(headKernel >= 1 && headKernel % 2 == 1, "CDNetConfig: head kernel must be odd, got \(headKernel)")
        precondition(inputProjectionLayers >= 1, "CDNetConfig: needs at least one input projection block")
        precondition(localizerLayers >= 0, "CDNetConfig: localizer layers must be >= 0")
        precondition(contrastiveTemperature > 0, "CDNetConfig: contrastive temperature must be positive")
        precondition(dropPath >= 0 && dropPath < 1, "CDNetConfig: drop path must be in [0, 1), got \(dropPath)")
        precondition(maxMoments >= 1, "CDNetConfig: max moments must be >= 1")
    }
}

/// Weights of the objective's terms (paper eq. 17: 0.1 for the three contrastive terms, 1 for the rest).
public struct CDNetLossWeights: Sendable, Equatable, Codable {
    public var intra: Float
    public var inter: Float
    public var token: Float
    public var focal: Float
    public var smoothL1: Float
    public var giou: Float

    public init(intra: Float, inter: Float, token: Float, focal: Float, smoothL1: Float, giou: Float) {
        self.intra = intra
        self.inter = inter
        self.token = token
        self.focal = focal
        self.smoothL1 = smoothL1
        self.giou = giou
    }

    public static let paper = CDNetLossWeights(intra: 0.1, inter: 0.1, token: 0.1, focal: 1, smoothL1: 1, giou: 1)
}

/// The per-clip score `predict` reports as saliency.
public enum CDNetSaliencySource: String, Sendable, Codable {
    /// The QSD relevance score (the paper measures it with highlight detection, table 4).
    case relevance
    /// The head's foreground confidence.
    case confidence
}

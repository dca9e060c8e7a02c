import NN
import Tensor

/// The reference QD-DETR's parameter names (its PyTorch `model.state_dict()` keys) for ours, so that its
/// weights load into a `MomentDETR` and its gradients compare with ours tensor by tensor.
///
/// Our layers keep separate query/key/value projections where PyTorch's `nn.MultiheadAttention` packs them
/// into one `[3D, D]` `in_proj_weight` (and `[3D]` `in_proj_bias`): such a parameter is the `part`-th third
/// of the packed rows. Our `[1, 1, D]` global token and position are the reference's `[D]` vectors. The
/// reference's `txt_position_embed.*` has no counterpart: it is built but unused (`use_txt_pos` is off).
/// TD-DETR's dynamics parameters have no QD-DETR name.
public enum ReferenceParameters {
    /// Where one of our parameters comes from in the reference.
    public struct Source: Equatable, Sendable {
        public var name: String
        /// For a packed attention projection: which third of the rows (0 query, 1 key, 2 value); nil otherwise.
        public var part: Int?
    }

    /// Reference tensors that have no counterpart in our model (built but unused by the reference).
    public static let unusedReferenceNames: Set<String> = [
        "txt_position_embed.LayerNorm.weight", "txt_position_embed.LayerNorm.bias",
        "txt_position_embed.position_embeddings.weight",
    ]

    /// The reference tensor behind our parameter `name` (as `MomentDETR.namedParameters()` names it), or nil
    /// when the reference has none.
    public static func source(of name: String) -> Source? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let head = parts.first else { return nil }
        switch head {
        case "input_vid_proj", "input_txt_proj":
            // `<i>.norm.<w>` -> `<i>.LayerNorm.<w>`, `<i>.linear.<w>` -> `<i>.net.1.<w>`.
            guard parts.count == 4 else { return nil }
            let inner = parts[2] == "norm" ? "LayerNorm" : parts[2] == "linear" ? "net.1" : nil
            return inner.map { Source(name: "\(head).\(parts[1]).\($0).\(parts[3])") }
        case "t2v_encoder", "encoder":
            guard parts.count >= 4, parts[2] != "dynamics" else { return nil }
            return encoderLayer(rest: Array(parts[2...]), prefix: "transformer.\(head).layers.\(parts[1])")
        case "decoder":
            if parts.count >= 3, parts[1] == "layers" {
                let rest = Array(parts[3...])
                let renamed = rest.first == "ffn" ? feedForward(rest, norm: "norm3") : rest.joined(separator: ".")
                return renamed.map { Source(name: "transformer.decoder.layers.\(parts[2]).\($0)") }
            }
            return Source(name: "transformer." + name)
        case "dynamics_start":
            return nil
        default:
            return Source(name: name)
        }
    }

    /// A text-to-video or self-attention encoder layer: packed attention, `norm1`, and the feed-forward block
    /// whose norm is `norm2`.
    private static func encoderLayer(rest: [String], prefix: String) -> Source? {
        switch rest[0] {
        case "cross_attn", "self_attn":
            guard rest.count == 3 else { return nil }
            if rest[1] == "out_proj" { return Source(name: "\(prefix).self_attn.out_proj.\(rest[2])") }
            guard let part = ["q_proj", "k_proj", "v_proj"].firstIndex(of: rest[1]) else { return nil }
            return Source(name: "\(prefix).self_attn.in_proj_\(rest[2])", part: part)
        case "ffn":
            return feedForward(rest, norm: "norm2").map { Source(name: "\(prefix).\($0)") }
        default:
            return Source(name: "\(prefix).\(rest.joined(separator: "."))")
        }
    }

    /// `ffn.linear1.w` -> `linear1.w`, `ffn.activation.weight` -> `activation.weight`, `ffn.norm.w` -> `<norm>.w`.
    private static func feedForward(_ rest: [String], norm: String) -> String? {
        guard rest.count == 3 else { return nil }
        return "\(rest[1] == "norm" ? norm : rest[1]).\(rest[2])"
    }

    /// Our part of a reference tensor: the whole tensor, or one third of its rows for a packed projection.
    public static func slice(_ tensor: Tensor, for source: Source) -> Tensor {
        guard let part = source.part else { return tensor }
        let rows = tensor.shape[0] / 3
        return ShapeKernels.slice(tensor, axis: 0, range: (part * rows)..<((part + 1) * rows))
    }

    /// Copies the reference tensors (`read` returns one by its reference name) into `model`'s parameters.
    /// Throws when a parameter has no reference name or a tensor's size differs from ours; returns the
    /// reference names that were read.
    @discardableResult
    public static func load(into model: MomentDETR, read: (String) throws -> Tensor) throws -> Set<String> {
        var used: Set<String> = []
        for (name, parameter) in model.namedParameters() {
            guard let source = source(of: name) else {
                throw ReferenceParameterError(reason: "our parameter '\(name)' has no counterpart in the reference QD-DETR")
            }
            let value = slice(try read(source.name), for: source)
            guard value.count == parameter.value.count else {
                throw ReferenceParameterError(reason: "'\(source.name)' holds \(value.shape) for our '\(name)' of shape \(parameter.shape)")
            }
            parameter.assign(value.reshaped(parameter.shape))
            used.insert(source.name)
        }
        return used
    }
}

/// A reference checkpoint that does not fit the model.
public struct ReferenceParameterError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "reference parameters: \(reason)" }
}

import ArgumentParser

/// The `mask-eval` executable: scoring of prediction files (and, with the models, masked evaluation).
public struct MaskEvalCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mask-eval",
        abstract: "Evaluate moment retrieval predictions, with and without masking the ground-truth clips.",
        subcommands: [RunCommand.self, ScoreCommand.self])

    public init() {}
}

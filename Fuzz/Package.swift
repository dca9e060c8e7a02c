// swift-tools-version:6.1
import PackageDescription

/// libFuzzer harnesses for the readers of untrusted input, built apart from the main package because every
/// target here is compiled with `-sanitize=fuzzer,address -parse-as-library` (scripts/fuzz.sh does that).
let targets = ["fuzz-shard-reader", "fuzz-numpy", "fuzz-annotations", "fuzz-submissions", "fuzz-pipeline-spec"]

let package = Package(
    name: "MomentPipelineFuzz",
    products: targets.map { .executable(name: $0, targets: [$0]) },
    dependencies: [.package(name: "MomentPipeline", path: "..")],
    targets: [
        .target(name: "CFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzer", .product(name: "Shards", package: "MomentPipeline")]),
    ] + targets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                "FuzzSupport",
                .product(name: "Shards", package: "MomentPipeline"),
                .product(name: "Retrieval", package: "MomentPipeline"),
                .product(name: "PipelineDriver", package: "MomentPipeline"),
            ])
    },
    swiftLanguageModes: [.v5]
)

// swift-tools-version:6.1
import PackageDescription

/// Hot numeric targets are optimised in debug builds too, so `swift test` and `swift run` are fast
/// (ARCHITECTURE.md section 8). Unsafe flags are allowed because this is the root package.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]

/// The AVX-512 product kernel's module is compiled for that instruction set on x86-64 hosts; `GEMM` calls it
/// only after checking that the CPU it runs on has it (elsewhere it is plain portable code that is never called).
#if arch(x86_64)
let wideVectors: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "skylake-avx512"])]
#else
let wideVectors: [SwiftSetting] = optimised
#endif

let package = Package(
    name: "MomentPipeline",
    products: [
        .executable(name: "pipeline", targets: ["pipeline"]),
        .executable(name: "stage-launcher", targets: ["stage-launcher"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "feature-ingest", targets: ["feature-ingest"]),
        .executable(name: "pair-mining", targets: ["pair-mining"]),
        .executable(name: "video-synthesis", targets: ["video-synthesis"]),
        .executable(name: "train", targets: ["train"]),
        .executable(name: "mask-eval", targets: ["mask-eval"]),
        .executable(name: "report", targets: ["report"]),
        // The readers the fuzz harnesses in Fuzz/ drive.
        .library(name: "Shards", targets: ["Shards"]),
        .library(name: "Retrieval", targets: ["Retrieval"]),
        .library(name: "PipelineDriver", targets: ["PipelineDriver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        // Layer 1: system libraries.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // Layer 2: formats and bookkeeping.
        .target(
            name: "Shards",
            dependencies: [
                "CZstd",
                "CSHA256",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: optimised),
        // SHA-256 blocks in C, optimised in debug builds too (shards hash every byte they hold).
        .target(name: "CSHA256", cSettings: [.unsafeFlags(["-O2"])]),
        // Element-wise kernels on AVX-512 intrinsics (called only on a CPU that has it), optimised in debug builds too;
        // no contraction of multiplies and adds, so their bits are the portable Swift loops'.
        .target(name: "CVectorKernels", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])]),
        .target(name: "AVX512Kernels", dependencies: ["CVectorKernels"], swiftSettings: wideVectors),
        .target(name: "Tensor", dependencies: ["CBLAS", "AVX512Kernels", "CVectorKernels"], swiftSettings: optimised),
        .target(
            name: "Lineage",
            dependencies: [
                "Shards",
                .product(name: "GRDB", package: "GRDB.swift")
            ]),

        // Layer 3: autograd, layers, optimisers.
        .target(name: "NN", dependencies: ["Tensor", "CVectorKernels", "Shards"], swiftSettings: optimised),

        // Layer 4: datasets, models, matching, losses, metrics.
        .target(
            name: "Retrieval",
            dependencies: ["NN", "Tensor", "Shards"],
            swiftSettings: optimised),

        // Layer 5: one type per stage.
        .target(
            name: "Stages",
            dependencies: [
                "Retrieval", "NN", "Tensor", "Shards",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        .executableTarget(name: "feature-ingest", dependencies: ["Stages"]),
        .executableTarget(name: "pair-mining", dependencies: ["Stages"]),
        .executableTarget(name: "video-synthesis", dependencies: ["Stages"]),
        .executableTarget(name: "train", dependencies: ["Stages"]),
        .executableTarget(name: "mask-eval", dependencies: ["Stages"]),
        .executableTarget(name: "report", dependencies: ["Stages"]),

        // Layer 5-6: the driver.
        .target(
            name: "PipelineDriver",
            dependencies: ["Lineage", "Shards"]),
        // Runs one stage as its own child and reports what that child used (C, so that it is small: a
        // child's peak RSS starts at its parent's).
        .executableTarget(name: "stage-launcher"),
        .executableTarget(
            name: "pipeline",
            dependencies: ["PipelineDriver", "stage-launcher", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "bench",
            dependencies: [
                "Shards", "Lineage", "PipelineDriver", "stage-launcher", "Retrieval", "NN", "Tensor", "CBLAS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimised),

        .testTarget(name: "ShardsTests", dependencies: ["Shards", "CSHA256"], exclude: ["Fixtures"]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        // The finite-difference checker the NN and model tests share (its tolerances are stated once).
        .target(name: "GradientChecking", dependencies: ["NN"], path: "Tests/GradientChecking"),
        .testTarget(name: "NNTests", dependencies: ["NN", "Tensor", "Shards", "GradientChecking"]),
        .testTarget(name: "RetrievalTests", dependencies: ["Retrieval", "Shards", "NN", "Tensor", "GradientChecking"],
                    exclude: ["Fixtures"]),
        .testTarget(
            name: "StagesTests",
            dependencies: [
                "Stages", "Retrieval", "Shards", "PipelineDriver", "stage-launcher",
                "feature-ingest", "pair-mining", "video-synthesis", "train", "mask-eval", "report",
            ],
            exclude: ["Fixtures"]),
        .testTarget(name: "LineageTests", dependencies: ["Lineage", "Shards", .product(name: "GRDB", package: "GRDB.swift")]),
        // SlurmExecutorTests runs the real stages through the driver too.
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "PipelineDriver", "Lineage", "Shards", "pipeline", "stage-launcher",
                "feature-ingest", "pair-mining", "video-synthesis", "train", "mask-eval", "report",
            ]),
    ],
    // Numeric kernels share buffers across threads under their own discipline; Swift 6's strict
    // concurrency checking would force copies or locks onto those hot paths.
    swiftLanguageModes: [.v5]
)

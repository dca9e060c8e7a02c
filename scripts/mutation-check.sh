#!/usr/bin/env bash
# Mutation check: applies each deliberate one-line bug below on its own, rebuilds, runs the tests that must
# catch it, and reverts it. Prints one line per mutation: its name, then CAUGHT with the failing tests, or
# MISSED. Exits non-zero if any mutation is missed (or does not apply or compile).
#
#   scripts/mutation-check.sh [NAME...]    # all mutations, or only the named ones
#
# Builds and tests take the machine-wide build lock one command at a time (other work shares the machine).
# python3 does the literal, exactly-once replacements.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=${LOCK:-/tmp/swift-build.lock}
SCRATCH=${SCRATCH:-.build-tests}
LOG_DIR=${LOG_DIR:-$SCRATCH/mutations}
mkdir -p "$LOG_DIR"

# name <TAB> file <TAB> exact original text <TAB> its replacement <TAB> swift test --filter (a regular expression)
# selecting the tests that must catch it
MUTATIONS=$(cat <<'EOF'
subtraction-backward-sign	Sources/NN/Ops/ArithmeticOps.swift	b.accumulateGradient(Broadcasting.sum(Elementwise.negate(g), toShape: b.shape))	b.accumulateGradient(Broadcasting.sum(g, toShape: b.shape))	NNTests.OpGradientTests
gelu-derivative-1pct	Sources/Tensor/BiasActivationKernel.swift	        let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))	        let cdf = 0.505 * (1 + erff(x * 0.70710678118654752))	NNTests.FusedOpTests|NNTests.LayerGradientTests
layernorm-backward-1pct	Sources/Tensor/LayerNormKernels.swift	LAYERNORM_OLD	LAYERNORM_NEW	NNTests.OpGradientTests/testLayerNormGradients
softmax-backward-1pct	Sources/Tensor/SoftmaxKernels.swift	out[at] = p[at] * (g[at] - dot)	out[at] = 1.01 * p[at] * (g[at] - dot)	NNTests.OpGradientTests/testSoftmaxAndLogSoftmaxGradients
log-softmax-backward-1pct	Sources/Tensor/SoftmaxKernels.swift	out[at] = g[at] - Foundation.exp(logP[at]) * total	out[at] = g[at] - 1.01 * Foundation.exp(logP[at]) * total	NNTests.OpGradientTests/testSoftmaxAndLogSoftmaxGradients
attention-scores-backward-1pct	Sources/Tensor/AttentionKernels.swift	for j in 0..<keyLength { d[j] = (w[j] * d[j] - p[j] * dot) * scale }	for j in 0..<keyLength { d[j] = (w[j] * d[j] - p[j] * dot) * scale * 1.01 }	NNTests.OpGradientTests/testAttentionGradients
interpolation-position-backward-1pct	Sources/Tensor/InterpolationKernel.swift	dpp[b * samples + m] = slope	dpp[b * samples + m] = slope * 1.01	NNTests.OpGradientTests/testInterpolationGradientsToFeaturesAndPositions
conv1d-bias-backward-1pct	Sources/Tensor/Conv1DKernel.swift	let dBias = Reduction.sum(dy.reshaped([rows, g.outChannels]), axis: 0)	let dBias = Elementwise.affine(Reduction.sum(dy.reshaped([rows, g.outChannels]), axis: 0), scale: 1.01, shift: 0)	NNTests.OpGradientTests/testConv1DGradients|RetrievalTests.CDNetGradientTests/testConvolutionalHeadGradients
layernorm-beta-gradient-missing	Sources/NN/Ops/NormalizationOps.swift	if beta.requiresGrad { beta.accumulateGradient(grads.beta) }	if beta.requiresGrad && beta.count < 0 { beta.accumulateGradient(grads.beta) }	NNTests.OpGradientTests/testLayerNormGradients
erase-replacement-clip	Sources/Retrieval/Masking/GroundTruthMask.swift	                    replacement = Array(rows[(source * width)..<(source * width + d)])	                    replacement = Array(rows[(c * width)..<(c * width + d)])	RetrievalTests.GroundTruthMaskTests
nms-threshold-comparison	Sources/Retrieval/Evaluation/TemporalNMS.swift	candidate.window.intersectionOverUnion($0.window) > threshold	candidate.window.intersectionOverUnion($0.window) >= threshold	RetrievalTests.CDNetTests/testDecodingSuppressesWindowsOverlappingAHigherRankedOneBeyondTheNMSThreshold
cache-key-input-order	Sources/Lineage/CacheKey.swift	($0.element.role, $0.offset) < ($1.element.role, $1.offset)	($0.element.role, $0.element.hash) < ($1.element.role, $1.element.hash)	LineageTests.CacheKeyAndHashingTests
report-sample-std	Sources/Stages/Report/ReportData.swift	.reduce(0, +) / Double(values.count - 1)).squareRoot()	.reduce(0, +) / Double(values.count)).squareRoot()	StagesTests.ReportBuilderTests
best-checkpoint-tie	Sources/Stages/Train/TrainingRun.swift	guard best.epoch < 0 || value > best.score else { return false }	guard best.epoch < 0 || value >= best.score else { return false }	StagesTests.BestCheckpointTests
best-checkpoint-nan	Sources/Stages/Train/TrainingRun.swift	let value = score.isFinite ? score : -Double.infinity	let value = score	StagesTests.BestCheckpointTests
cdnet-loss-weight	Sources/Retrieval/Models/CDNet/CDNetCriterion.swift	                    weight: weights.inter)	                    weight: weights.intra)	RetrievalTests.CDNetLossTests
qd-detr-aux-suffix	Sources/Retrieval/Models/MomentCriterion.swift	let suffix = index == last ? "" : "_\(index)"	let suffix = index == last ? "" : "_\(index + 1)"	RetrievalTests.MomentLossTests
racy-clean-window	Sources/Lineage/ContentHasher.swift	if now - Double(mtime) / 1e9 > 2 {	if now - Double(mtime) / 1e9 > -1 {	LineageTests.CacheKeyAndHashingTests
same-cache-key-dedupe	Sources/PipelineDriver/Pipeline.swift	if running.values.contains(where: { $0.cacheKey == e.cacheKey }) {	if running.values.contains(where: { $0.node == e.cacheKey }) {	PipelineTests.DriverTests/testNodesWithTheSameCacheKeyRunOnceEvenWhenReadyTogether
batch-kept-duration	Sources/Retrieval/Training/BatchBuilder.swift	let duration = min(videos.durations[v], Double(lengths[row]) * videos.clipLength)	let duration = videos.durations[v]	RetrievalTests.BatchBuilderTests
t2v-feed-forward-skip	Sources/Retrieval/Models/TextToVideoLayer.swift	return feedForward.norm(mixed + feedForward.branch(norm(mixed), context: context))	return feedForward(norm(mixed), context: context)	RetrievalTests.ParityTests
attention-init-per-matrix	Sources/NN/Layers/MultiheadAttention.swift	let packed = LinearInitialization.uniform(bound: (6 / Float(4 * width)).squareRoot())	let packed = LinearInitialization.xavier	RetrievalTests.ReferenceInitializationTests
window-cap-off-by-one	Sources/Retrieval/Training/BatchBuilder.swift	guard windows.count > maxWindows else { return windows }	guard windows.count > maxWindows + 1 else { return windows }	RetrievalTests.BatchBuilderTests
submission-rounding-half-up	Sources/Retrieval/Training/SubmissionWriter.swift	duration) / clip).rounded(.toNearestOrEven) * clip	duration) / clip).rounded() * clip	RetrievalTests.SubmissionWriterTests
summary-key-mapping	Sources/Retrieval/Masking/SpuriousEvaluation.swift	("R1@0.3", v("MR-full-R1@0.3")), ("R1@0.5", v("MR-full-R1@0.5"))	("R1@0.3", v("MR-full-R1@0.5")), ("R1@0.5", v("MR-full-R1@0.3"))	RetrievalTests.RetrievalSummaryTests
grounding-tie	Sources/Retrieval/Masking/SpuriousEvaluation.swift	} else if target >= other { queried += 1 }	} else if target > other { queried += 1 }	RetrievalTests.SpanDiagnosticsTests
shared-event-partner	Sources/Retrieval/Synthesis/VideoSynthesizer.swift	                out.partnerSharesEvent.append(shares(q, video: k))	                out.partnerSharesEvent.append(shares(q, video: i))	StagesTests.VideoSynthesisTests/testPartnerFilterSkipsPartnersThatShareTheEvent
slurm-reattach-off	Sources/PipelineDriver/Slurm/SlurmRun.swift	if try reattach(p, inputs: inputs) { continue }	if try reattach(p, inputs: []) { continue }	PipelineTests.SlurmExecutorTests/testADriverSIGKILLedMidDAGReattachesToItsJobsWithoutSubmittingAnyTwice
slurm-signal-no-scancel	Sources/PipelineDriver/Slurm/SlurmRun.swift	let jobs = inFlight.values.compactMap(\.submission.jobID)	let jobs: [String] = []	PipelineTests.SlurmExecutorTests/testSIGTERMCancelsTheDriversJobs
slurm-cancelled-is-success	Sources/PipelineDriver/Slurm/SlurmRun.swift	let succeeded = (state == nil || state?.state == "COMPLETED") && exit?.status == 0	let succeeded = exit?.status ?? 0 == 0	PipelineTests.SlurmExecutorTests/testAJobCancelledWithScancelIsAFailedRunAndTheNextRunCompletesIt
escape-order	Sources/Stages/Report/SVGPlot.swift	ESCAPE_OLD	ESCAPE_NEW	StagesTests.ReportBuilderTests/testEscapeMakesTextSafeInHTMLAndSVG
EOF
)

# Mutations whose text holds a tab or a newline are spelled out here.
LAYERNORM_OLD='xhat[j] = (line[j] - mu) * rstd }'
LAYERNORM_NEW='xhat[j] = (line[j] - mu) * rstd * 1.01 }'
ESCAPE_OLD='s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")'
ESCAPE_NEW='s.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "&", with: "&amp;")'

replace() {  # file old new: replaces the one occurrence of old, or fails
    python3 - "$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
count = text.count(old)
if count != 1:
    sys.exit(f"{path}: the original text occurs {count} times, expected once: {old!r}")
open(path, "w").write(text.replace(old, new))
PY
}

backup=""
restore() { if [ -n "$backup" ]; then cp "$backup" "${backup%.orig}"; rm -f "$backup"; backup=""; fi; }
trap restore EXIT

missed=0
while IFS=$'\t' read -r name file old new filter; do
    [ -z "$name" ] && continue
    if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    [ "$old" = LAYERNORM_OLD ] && old=$LAYERNORM_OLD && new=$LAYERNORM_NEW
    [ "$old" = ESCAPE_OLD ] && old=$ESCAPE_OLD && new=$ESCAPE_NEW
    backup="$file.orig"
    cp "$file" "$backup"
    if ! replace "$file" "$old" "$new"; then
        echo "$name: DOES NOT APPLY"; missed=1; restore; continue
    fi
    log="$LOG_DIR/$name.log"
    if ! flock "$LOCK" swift build --build-tests --scratch-path "$SCRATCH" > "$log" 2>&1; then
        echo "$name: DOES NOT COMPILE (see $log)"; missed=1; restore; continue
    fi
    # The filter is a regular expression; the mutation is caught when any test it selects fails.
    caught=""
    if ! flock "$LOCK" swift test --skip-build --scratch-path "$SCRATCH" --disable-swift-testing --filter "$filter" >> "$log" 2>&1; then
        failed=$(grep -oE "Test Case '[^']+' failed" "$log" | sed -E "s/Test Case '(.*)' failed/\1/" | sort -u | tr '\n' ' ' || true)
        # A test that traps takes the process down before XCTest reports it: name the one that was running.
        crashed=$(grep -oE "Test Case '[^']+' started" "$log" | tail -1 | sed -E "s/Test Case '(.*)' started/\1 (trapped)/" || true)
        caught="${failed:-${crashed:-$filter (the run failed)}}"
    fi
    if [ -n "$caught" ]; then
        echo "$name: CAUGHT by $caught"
    else
        echo "$name: MISSED ($filter passed; see $log)"; missed=1
    fi
    restore
done <<< "$MUTATIONS"

# Leave the build matching the sources again.
flock "$LOCK" swift build --build-tests --scratch-path "$SCRATCH" > "$LOG_DIR/restored.log" 2>&1
exit $missed

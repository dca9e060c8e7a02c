import Foundation
import NN
@testable import Retrieval
import Tensor
import XCTest

/// `recipe: authors-code`, one test per point of what the authors' TD-DETR code does: TDEM's tokenizer,
/// projection, interactor and beta mix; the similarity; the in-batch argmax partner; the merged ground truth;
/// whole-partner sampling; the rate jitter; both anchors as two contiguous blocks; the batch mix; the values.
/// Expected numbers are worked out by hand or by a plain reference written here.
final class AuthorsCodeRecipeTests: XCTestCase {
    // MARK: TDEM

    func testTokenizerDifferencesThePositionEmbeddedVideoFromTheStartToken() {
        var g = SeededGenerator(seed: 1)
        let code = TemporalDynamicsBranch(width: 2, heads: 1, dropout: 0.1, variant: .authorsCode, generator: &g)
        let paper = TemporalDynamicsBranch(width: 2, heads: 1, dropout: 0.1, variant: .paper, generator: &g)
        let video = Variable(Tensor(shape: [1, 3, 2], data: [1, 2, 4, 6, 5, 5]))
        let position = Variable(Tensor(shape: [1, 3, 2], data: [0.5, 0, 1, 1, 0, -1]))
        let start = Variable(Tensor(shape: [1, 1, 2], data: [0.5, -1]))
        // v + p = (1.5, 2), (5, 7), (5, 4): differences from st = (0.5, -1), then row to row.
        XCTAssertEqual(code.dynamicsTokens(video: video, position: position, startToken: start).value.data, [1, 3, 3.5, 5, 0, -3])
        // The paper's reading differences the video rows alone.
        XCTAssertEqual(paper.dynamicsTokens(video: video, position: position, startToken: start).value.data, [0.5, 3, 3, 4, 1, -1])
    }

    /// `LayerNorm (weight 1, bias 0, eps 1e-5) -> Linear -> ReLU` of one row, in Double.
    static func block(_ x: [Double], _ linear: Linear) -> [Double] {
        let mean = x.reduce(0, +) / Double(x.count)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)
        let normed = x.map { ($0 - mean) / (variance + 1e-5).squareRoot() }
        return affine(normed, linear).map { max(0, $0) }
    }

    /// `W x + b` of one row, in Double.
    static func affine(_ x: [Double], _ linear: Linear) -> [Double] {
        let w = linear.weight.value, out = linear.outFeatures, inputs = linear.inFeatures
        return (0..<out).map { o in
            (0..<inputs).reduce(Double(linear.bias?.value[o] ?? 0)) { $0 + Double(w[o, $1]) * x[$1] }
        }
    }

    func testProjectionIsTwoLayerNormDropoutLinearReLUBlocksWithDropoutHardWiredAtOneTenth() {
        var g = SeededGenerator(seed: 2)
        let code = TemporalDynamicsBranch(width: 3, heads: 1, dropout: 0.3, variant: .authorsCode, generator: &g)
        XCTAssertEqual(code.projection.linears.count, 2)
        XCTAssertEqual(code.projection.dropout.probability, 0.1, "LinearLayer's default, not the transformer's 0.3")
        XCTAssertTrue(code.projection.reluAfterLast, "ReLU on both blocks")
        let paper = TemporalDynamicsBranch(width: 3, heads: 1, dropout: 0.3, variant: .paper, generator: &g)
        XCTAssertEqual(paper.projection.dropout.probability, 0.3)
        let x: [Float] = [0.3, -1.2, 2.0, 1.0, 1.5, -0.5]
        let out = code.projection(Variable(Tensor(shape: [1, 2, 3], data: x)), context: ForwardContext(isTraining: false))
        for row in 0..<2 {
            let expected = Self.block(Self.block(x[(row * 3)..<(row * 3 + 3)].map(Double.init), code.projection.linears[0]),
                                      code.projection.linears[1])
            for j in 0..<3 { XCTAssertEqual(Double(out.value[0, row, j]), expected[j], accuracy: 1e-5) }
        }
        XCTAssertTrue(out.value.data.allSatisfy { $0 >= 0 }, "ends in a ReLU")
    }

    func testInteractorAttendsWithItsOwnQueryKeyValueProjectionsOverTheSameText() {
        var g = SeededGenerator(seed: 3)
        let (width, heads) = (4, 2)
        let branch = TemporalDynamicsBranch(width: width, heads: heads, dropout: 0.1, variant: .authorsCode, generator: &g)
        XCTAssertNotNil(branch.keyProjection)
        XCTAssertNotNil(branch.valueProjection)
        let video = Initialization.normal(shape: [1, 3, width], generator: &g)
        let position = Initialization.normal(shape: [1, 3, width], generator: &g)
        let start = Initialization.normal(shape: [1, 1, width], generator: &g)
        let text = Initialization.normal(shape: [1, 3, width], generator: &g)
        let mask = KeyPaddingMask(batch: 1, length: 3, isPadding: [false, false, true])
        // The video branch's keys and values are garbage here: the authors' interactor must not read them.
        let garbage = Variable(Tensor(repeating: 100, shape: [1, 3, width]))
        let out = branch(video: Variable(video), position: Variable(position), startToken: Variable(start), text: Variable(text),
                         sharedKey: garbage, sharedValue: garbage, textMask: mask, context: ForwardContext(isTraining: false))
        // Reference: tokens -> projection -> per-head softmax(q k^T / sqrt(dh)) v over the two valid words -> output.
        let tokens = branch.dynamicsTokens(video: Variable(video), position: Variable(position), startToken: Variable(start)).value
        let words = (0..<2).map { t in (0..<width).map { Double(text[0, t, $0]) } }
        let keys = words.map { Self.affine($0, branch.keyProjection!) }, values = words.map { Self.affine($0, branch.valueProjection!) }
        let dh = width / heads
        for c in 0..<3 {
            let row = (0..<width).map { Double(tokens[0, c, $0]) }
            let dynamics = Self.block(Self.block(row, branch.projection.linears[0]), branch.projection.linears[1])
            let query = Self.affine(dynamics, branch.queryProjection)
            var attended = [Double](repeating: 0, count: width)
            for h in 0..<heads {
                let dims = (h * dh)..<((h + 1) * dh)
                let scores = keys.map { k in dims.reduce(0.0) { $0 + query[$1] * k[$1] } / Double(dh).squareRoot() }
                let top = scores.max()!, weights = scores.map { exp($0 - top) }, total = weights.reduce(0, +)
                for j in dims { attended[j] = zip(weights, values).reduce(0.0) { $0 + $1.0 / total * $1.1[j] } }
            }
            let expected = Self.affine(attended, branch.outputProjection)
            for j in 0..<width { XCTAssertEqual(Double(out.value[0, c, j]), expected[j], accuracy: 1e-4, "clip \(c), dim \(j)") }
        }
    }

    func testBetaMixesOnlyTheResidualAndTheVideoAttentionIsAddedInFull() {
        for variant in [TDEMVariant.authorsCode, .paper] {
            var g = SeededGenerator(seed: 4)
            let width = 3
            let layer = TextToVideoLayer(width: width, heads: 1, feedForwardWidth: 5, dropout: 0.1, dynamics: variant, beta: 0.7,
                                         generator: &g)
            // The video attention gives b everywhere, the dynamics attention c, the feed-forward branch e.
            let b: [Float] = [0.5, -1, 2], c: [Float] = [1, 3, -2], e: [Float] = [0.25, 0, -0.5]
            layer.attention.outputProjection.weight.assign(Tensor(zeros: [width, width]))
            layer.attention.outputProjection.bias!.assign(Tensor(shape: [width], data: b))
            layer.dynamics!.outputProjection.weight.assign(Tensor(zeros: [width, width]))
            layer.dynamics!.outputProjection.bias!.assign(Tensor(shape: [width], data: c))
            layer.feedForward.linear2.weight.assign(Tensor(zeros: [width, 5]))
            layer.feedForward.linear2.bias!.assign(Tensor(shape: [width], data: e))
            let v: [Float] = [1, 2, 4, -3, 0, 1]
            let out = layer(video: Variable(Tensor(shape: [1, 2, width], data: v)),
                            position: Variable(Tensor(repeating: 7, shape: [1, 2, width])),
                            text: Variable(Initialization.normal(shape: [1, 2, width], generator: &g)),
                            textMask: KeyPaddingMask(batch: 1, length: 2, isPadding: [false, false]),
                            startToken: Variable(Tensor(zeros: [1, 1, width])), context: ForwardContext(isTraining: false))
            for row in 0..<2 {
                // Authors' code: m = 0.7 V + 0.3 f + A; the paper's reading: m = 0.7 (V + A) + 0.3 f. Output norm2(m + FFN).
                let m = (0..<width).map { j -> Double in
                    let vj = Double(v[row * width + j]), bj = Double(b[j]), cj = Double(c[j])
                    return variant == .authorsCode ? 0.7 * vj + 0.3 * cj + bj : 0.7 * (vj + bj) + 0.3 * cj
                }
                let x = (0..<width).map { m[$0] + Double(e[$0]) }
                let mean = x.reduce(0, +) / 3, sd = (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3 + 1e-5).squareRoot()
                for j in 0..<width {
                    XCTAssertEqual(Double(out.value[0, row, j]), (x[j] - mean) / sd, accuracy: 1e-5, "\(variant), clip \(row), dim \(j)")
                }
            }
        }
    }

    // MARK: pairing

    /// A video of `rows` (each `[feature dims]`), tef on, as `VideoSet` rows.
    static func videoSet(_ videos: [[[Float]]], clipLength: Double = 2) -> VideoSet {
        let d = videos.first!.first!.count
        var set = VideoSet(vids: [], durations: [], clipLength: clipLength, featureDim: d, tef: true, features: [], offsets: [0])
        for (i, rows) in videos.enumerated() {
            set.append(vid: "v\(i)", duration: Double(rows.count) * clipLength,
                       rows: rows.enumerated().flatMap { t, r in r + [Float(t) / Float(rows.count), Float(t + 1) / Float(rows.count)] })
        }
        return set
    }

    /// A split with one query per `(video, windows)`, 2-token texts, saliency `clip % 5` from every annotator
    /// and relevant on odd clips.
    static func split(_ videos: VideoSet, queries: [(video: Int, windows: [[Double]])]) -> MomentSplit {
        var set = QuerySet(qids: [], texts: [], videoIndex: [], textDim: 2, tokens: [], tokenOffsets: [0], windows: [],
                           hasSaliency: true, saliency: [], relevant: [], clipOffsets: [0])
        for (q, query) in queries.enumerated() {
            set.qids.append("q\(q)")
            set.texts.append("query \(q)")
            set.videoIndex.append(query.video)
            set.appendTokens([Float(q), 1, Float(q), 2])
            set.windows.append(query.windows)
            let length = videos.length(query.video)
            for clip in 0..<length {
                set.saliency += [Int32(clip % 5), Int32(clip % 5), Int32(clip % 5)]
                set.relevant.append(UInt8(clip % 2))
            }
            set.clipOffsets.append(set.clipOffsets.last! + length)
        }
        return MomentSplit(name: "train", videos: videos, queries: set)
    }

    func testSimilaritySumsTheTop50HalvedClipProductsAndDividesByFifty() {
        let ones = [[Float]](repeating: [1, 0], count: 10)
        let fourOnes = (0..<10).map { $0 < 4 ? [Float(1), 0] : [Float(0), 1] }
        func similarity(_ a: [[Float]], _ b: [[Float]], padded: Int = 0) -> Float {
            let set = Self.videoSet([a, b])
            return PairMiner.topkMeanSimilarity(try! set.clips(0), try! set.clips(1), dim: 2, width: 4, entries: 50, paddedLength: padded)
        }
        // 100 products: 40 ones, 60 zeros. The top 50 sum to 40: 40 / 2 / 50.
        XCTAssertEqual(similarity(ones, fourOnes), 0.4, accuracy: 1e-7)
        // 12 products of 2: fewer than 50, still divided by 50 (24 / 2 / 50), not averaged over 12.
        XCTAssertEqual(similarity([[Float]](repeating: [2, 0], count: 3), [[Float]](repeating: [1, 0], count: 4)), 0.24, accuracy: 1e-7)
        // Negative products: the zeros of the padding to the longest video (8 x 8 = 64 entries) outrank all 12.
        let minus = [[Float]](repeating: [-1, 0], count: 4), three = [[Float]](repeating: [1, 0], count: 3)
        XCTAssertEqual(similarity(three, minus, padded: 8), 0)
        // With 4 padding zeros only (4 x 4 = 16 entries), the 12 products still count: -12 / 2 / 50.
        XCTAssertEqual(similarity(three, minus, padded: 4), -0.12, accuracy: 1e-7)
        XCTAssertEqual(similarity(three, minus), -0.12, accuracy: 1e-7)
        XCTAssertEqual(AuthorsCodeSynthesizer().topkEntries, 50)
    }

    func testBatchSimilaritiesAreTheCodesBetweenSyntheticIndicesAndZeroForOriginals() throws {
        var g = SeededGenerator(seed: 5)
        let rows = (0..<3).map { v in (0..<(4 + v)).map { _ in [g.nextNormal() + 1, g.nextNormal(), g.nextNormal()] } }
        let videos = Self.videoSet(rows)
        let split = Self.split(videos, queries: [(0, [[0, 2]]), (1, [[0, 2]]), (2, [[0, 2]])])
        // n = 3: indices 0, 2, 1 are synthetic, 4 is the original of query 1.
        let batch = [0, 4, 2, 1]
        let s = try AuthorsCodeSynthesizer().batchSimilarities(split, batch: batch, paddedLength: 6)
        func expected(_ a: Int, _ b: Int) -> Float {
            PairMiner.topkMeanSimilarity(try! videos.clips(a), try! videos.clips(b), dim: 3, width: 5, entries: 50, paddedLength: 6)
        }
        for p in 0..<4 { XCTAssertEqual(s[p * 4 + p], 0, "diagonal") }
        for p in 0..<4 {
            XCTAssertEqual(s[p * 4 + 1], 0, "the original index has no similarity")
            XCTAssertEqual(s[1 * 4 + p], 0)
        }
        XCTAssertEqual(s[0 * 4 + 2], expected(0, 2), accuracy: 1e-5)
        XCTAssertEqual(s[0 * 4 + 3], expected(0, 1), accuracy: 1e-5)
        XCTAssertEqual(s[2 * 4 + 3], expected(2, 1), accuracy: 1e-5)
        XCTAssertEqual(s[3 * 4 + 2], s[2 * 4 + 3])
        XCTAssertNotEqual(s[0 * 4 + 2], 0)
    }

    func testPartnerIsTheArgmaxAmongTheOtherIndicesOfTheBatch() {
        // n = 5; positions 0, 1, 3, 4 hold synthetic indices 3, 0, 1, 2; position 2 the original index 7.
        let batch = [3, 0, 7, 1, 2]
        let x: Float = 9 // the diagonal: ignored whatever it holds
        let similarities: [Float] = [
            x, 0.2, 0, 0.5, 0.5, // tie of positions 3 and 4: the first, query 1
            0.3, x, 0, 0.1, 0.95, // position 4, query 2 (a near duplicate unless cut)
            0, 0, x, 0, 0,
            -0.1, -0.2, 0, x, -0.3, // nothing above 0: the first zero is the original index 7, clamped to n - 1 = 4
            0.6, 0.7, 0, 0.2, x, // position 1, query 0
        ]
        let synthesizer = AuthorsCodeSynthesizer()
        XCTAssertEqual(synthesizer.partners(batch: batch, count: 5, similarities: similarities), [1, 2, -1, 4, 0])
        var nonQVH = synthesizer
        nonQVH.nearDuplicateCutoff = 0.9
        // 0.95 is zeroed: position 0 (query 3) wins with 0.3.
        XCTAssertEqual(nonQVH.partners(batch: batch, count: 5, similarities: similarities), [1, 3, -1, 4, 0])
    }

    // MARK: synthesis

    func testGroundTruthIsOneRangeOverAllWindowsWithTheGapsBetweenThem() {
        typealias S = AuthorsCodeSynthesizer
        // [3.5, 7.2]: int(3 / 2) = 1 ..< int(8 / 2) = 4; [12, 14]: 6 ..< 7. Merged: 1...6, clips 4 and 5 included.
        XCTAssertEqual(S.groundTruthRange([[3.5, 7.2], [12, 14]], clips: 20, clipLength: 2), 1...6)
        XCTAssertEqual(S.groundTruthRange([[30, 44]], clips: 20, clipLength: 2), 15...19, "the end clamped to the video")
        XCTAssertEqual(S.groundTruthRange([[41, 42]], clips: 20, clipLength: 2), 19...19, "the start clamped to the last clip")
        XCTAssertEqual(S.groundTruthRange([[3, 3]], clips: 20, clipLength: 2), 1...1, "no clip: the last window's start clip")
        XCTAssertEqual(S.groundTruthRange([[2.5, 4.2]], clips: 10, clipLength: 1), 2...4)
        XCTAssertNil(S.groundTruthRange([], clips: 10, clipLength: 2))
    }

    func testAnchorKeepsAlphaOfItsBackgroundAndThePartnerGivesOneMinusAlphaOfItsWholeVideo() {
        let synthesizer = AuthorsCodeSynthesizer()
        XCTAssertEqual(synthesizer.alpha, 0.7)
        var g = SeededGenerator(seed: 6)
        let background = [0, 1, 2, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
        var partnerSeen = Set<Int>()
        for _ in 0..<100 {
            let own = synthesizer.ownBackground(background, generator: &g)
            XCTAssertEqual(own.count, 9, "int(0.7 * 14)")
            XCTAssertEqual(own, own.sorted())
            XCTAssertEqual(Set(own).count, 9)
            XCTAssertTrue(Set(own).isSubset(of: background))
            let partner = synthesizer.partnerClips(length: 10, generator: &g)
            XCTAssertEqual(partner.count, 3, "int(0.3 * 10)")
            XCTAssertEqual(partner, partner.sorted())
            XCTAssertEqual(Set(partner).count, 3)
            partnerSeen.formUnion(partner)
        }
        XCTAssertEqual(partnerSeen, Set(0..<10), "any clip of the whole partner video, its moment included")
        XCTAssertEqual(synthesizer.ownBackground([1, 2, 3, 4], generator: &g), [], "int(2.8) = 2 clips or fewer: none")
        XCTAssertEqual(synthesizer.partnerClips(length: 9, generator: &g), [], "int(2.7) = 2: none")
        XCTAssertEqual(synthesizer.partnerClips(length: 30, generator: &g).count, 9)
    }

    func testRateJitterDuplicatesAboveOneAndDropsBelow() {
        typealias S = AuthorsCodeSynthesizer
        var g = SeededGenerator(seed: 7)
        let clips = Array(stride(from: 0, to: 40, by: 2))
        for _ in 0..<20 {
            let slow = S.jitter(clips, rate: 1.16, generator: &g)
            XCTAssertEqual(slow.count, 23, "20 + int(20 * 1.16 - 20) = 20 + 3")
            XCTAssertEqual(slow, slow.sorted(), "duplicates next to their originals")
            XCTAssertEqual(Set(slow), Set(clips), "only clips of the block")
            XCTAssertEqual(Dictionary(grouping: slow, by: { $0 }).values.filter { $0.count == 2 }.count, 3, "three distinct duplicates")
            let fast = S.jitter(clips, rate: 0.83, generator: &g)
            XCTAssertEqual(fast.count, 16, "int(20 * 0.83)")
            XCTAssertEqual(fast, fast.sorted())
            XCTAssertEqual(Set(fast).count, 16)
            XCTAssertTrue(Set(fast).isSubset(of: clips))
        }
        XCTAssertEqual(S.jitter(clips, rate: 1, generator: &g), clips, "rate 1 keeps every clip")
        XCTAssertEqual(S.jitter([], rate: 1.2, generator: &g), [])
        let rates = (0..<2000).map { _ in S.jitterRate(generator: &g) }
        XCTAssertGreaterThan(rates.min()!, 0.8)
        XCTAssertLessThanOrEqual(rates.max()!, 1.2)
        XCTAssertGreaterThan(rates.filter { $0 > 1 }.count, 800, "about half slow down")
        XCTAssertGreaterThan(rates.filter { $0 < 1 }.count, 800, "about half speed up")
    }

    /// Video 0: 20 clips, query 0's windows [3.5, 7.2] and [9, 12] (merged ground truth 1...5); video 1: 12 clips,
    /// query 1's window [10, 16] (5...7).
    static func pairSplit() -> MomentSplit {
        var g = SeededGenerator(seed: 8)
        let videos = videoSet([20, 12].map { length in (0..<length).map { _ in [g.nextNormal(), g.nextNormal()] } })
        return split(videos, queries: [(0, [[3.5, 7.2], [9, 12]]), (1, [[10, 16]])])
    }

    func testBothAnchorsAreTwoContiguousBlocksWithTheMomentWholeAndItsWindowsShifted() throws {
        let split = Self.pairSplit()
        let synthesizer = AuthorsCodeSynthesizer()
        var g = SeededGenerator(seed: 9)
        var sawDuplicate = false
        for _ in 0..<50 {
            let (first, second) = try synthesizer.samplePair(split, anchor: 0, partner: 1, generator: &g)
            for (s, sample) in [first, second].enumerated() {
                let focus = s, other = 1 - s
                let gt = s == 0 ? 1...5 : 5...7
                let videos = sample.clips.map(\.video)
                // Two contiguous blocks: anchor 0 = [video 0 | video 1], anchor 1 = [video 0 | video 1] too, the
                // focus (own) block first for anchor 0 and second for anchor 1.
                let boundary = videos.firstIndex(of: 1) ?? videos.count
                XCTAssertTrue(videos[..<boundary].allSatisfy { $0 == 0 } && videos[boundary...].allSatisfy { $0 == 1 }, "\(videos)")
                let ownBlock = sample.clips.filter { $0.video == focus }.map(\.clip)
                let otherBlock = sample.clips.filter { $0.video == other }.map(\.clip)
                XCTAssertEqual(ownBlock, ownBlock.sorted())
                XCTAssertEqual(otherBlock, otherBlock.sorted())
                // The moment whole, once, contiguous.
                let start = try XCTUnwrap(sample.clips.firstIndex { $0.video == focus && $0.clip == gt.lowerBound })
                XCTAssertEqual(sample.clips[start..<(start + gt.count)].map(\.clip), Array(gt))
                XCTAssertEqual(ownBlock.filter { gt.contains($0) }.count, gt.count)
                // Own background: int(0.7 * 15) or int(0.7 * 9), jittered by (0.8, 1.2]; the other block: int(0.3 * L) jittered.
                let bg = ownBlock.count - gt.count, kept = s == 0 ? 10 : 6
                XCTAssertTrue((Int(Double(kept) * 0.8)...(kept + Int(Double(kept) * 0.2))).contains(bg), "background \(bg) of \(kept)")
                let drawn = s == 0 ? 3 : 6
                XCTAssertTrue((Int(Double(drawn) * 0.8)...(drawn + Int(Double(drawn) * 0.2))).contains(otherBlock.count))
                // Windows move with the moment: by the ground truth's new position minus its old one, in clips.
                let shift = Double(start - gt.lowerBound) * 2
                let source = split.queries.windows[focus]
                XCTAssertEqual(sample.windows, source.map { [$0[0] + shift, $0[1] + shift] })
                // Saliency on the moment's clips only.
                for (p, item) in sample.clips.enumerated() {
                    let scores = Array(sample.saliency[(p * 3)..<(p * 3 + 3)])
                    if (start..<(start + gt.count)).contains(p) {
                        XCTAssertEqual(scores, [Int32(item.clip % 5), Int32(item.clip % 5), Int32(item.clip % 5)])
                        XCTAssertEqual(sample.relevant[p], UInt8(item.clip % 2))
                    } else {
                        XCTAssertEqual(scores, [0, 0, 0], "clip \(p) outside the moment")
                        XCTAssertEqual(sample.relevant[p], 0)
                    }
                }
                sawDuplicate = sawDuplicate || zip(sample.clips, sample.clips.dropFirst()).contains { $0 == $1 }
            }
            XCTAssertEqual(first.clips.first?.video, 0, "anchor 0 starts with its own block")
            XCTAssertEqual(second.clips.last?.video, 1, "anchor 1 ends with its own block")
        }
        XCTAssertTrue(sawDuplicate, "slowed-down blocks repeat clips side by side")
    }

    func testAPartnerOfTheSameVideoGetsNoSaliencyInItsBlock() throws {
        let split = Self.split(Self.videoSet([(0..<20).map { [Float($0), 1] }]), queries: [(0, [[4, 8]]), (0, [[20, 24]])])
        var g = SeededGenerator(seed: 10)
        let (first, _) = try AuthorsCodeSynthesizer().samplePair(split, anchor: 0, partner: 1, generator: &g)
        let start = first.clips.firstIndex { $0.clip == 2 }!
        for p in first.clips.indices where !(start..<(start + 2)).contains(p) {
            XCTAssertEqual(Array(first.saliency[(p * 3)..<(p * 3 + 3)]), [0, 0, 0], "position \(p), clip \(first.clips[p].clip)")
        }
    }

    // MARK: training

    static func trainer(batchSize: Int = 32) -> (Trainer, MomentSplit) {
        var data = SyntheticBenchmark.Config()
        data.trainVideos = 12
        data.videoDim = 8
        data.textDim = 4
        let split = SyntheticBenchmark(config: data).split("train")
        var model = ModelConfig.tdDETR()
        model.videoFeatureWidth = split.videos.dim
        model.textFeatureWidth = split.queries.textDim
        model.hiddenWidth = 8
        model.heads = 2
        model.feedForwardWidth = 8
        var training = TrainingConfig()
        training.batchSize = batchSize
        TrainingRecipe.authorsCode.apply(model: &model, training: &training)
        var g = SeededGenerator(seed: 1)
        let trainer = Trainer(model: MomentDETR(config: model, generator: &g), config: training, builder: BatchBuilder(maxClips: 20),
                              train: split, synthesized: nil, val: split)
        return (trainer, split)
    }

    static func draws() -> Trainer.EpochDraws { Trainer.EpochDraws(shuffle: SeededGenerator(seed: 1), pairs: SeededGenerator(seed: 2)) }

    func testAnEpochRunsOverSyntheticAndOriginalIndicesAndASyntheticIndexTrainsTwoSamples() throws {
        let (trainer, split) = Self.trainer(batchSize: 5)
        let n = split.queries.count
        XCTAssertEqual(n, 12)
        XCTAssertEqual(trainer.stepsPerEpoch, 5, "24 indices in batches of 5")
        // Synthetic 3, original 12 + 7, synthetic 5: 2 + 1 + 2 rows in that order.
        let batch = try trainer.prepareBatch([3, n + 7, 5], epoch: 0, step: 0, draws: Self.draws())
        XCTAssertEqual(batch.batchSize, 5)
        let tokens = { (row: Int, q: Int) throws -> Void in
            let count = split.queries.tokenCount(q), dt = split.queries.textDim
            XCTAssertEqual(Array(batch.textFeatures.data[(row * batch.textFeatures.shape[1] * dt)..<(row * batch.textFeatures.shape[1] * dt + count * dt)]),
                           try split.queries.tokens(q), "row \(row) is query \(q)'s")
        }
        try tokens(0, 3)
        try tokens(2, 7)
        try tokens(3, 5)
        XCTAssertEqual(batch.durations[2], Float(min(split.videos.durations[split.queries.videoIndex[7]], 20 * split.videos.clipLength)))
        // Row 1 is anchor 1 of the pair: the partner's query, chosen among the batch's synthetic indices (only 5 here).
        try tokens(1, 5)
        try tokens(4, 3)
        // Over any cut of an epoch's 2N indices: 3N samples, 1.5 per index.
        var samples = 0
        for (step, start) in stride(from: 0, to: 2 * n, by: 8).enumerated() {
            samples += try trainer.prepareBatch(Array(start..<min(2 * n, start + 8)).map { ($0 * 7) % (2 * n) }, epoch: 0, step: step,
                                                draws: Self.draws()).batchSize
        }
        XCTAssertEqual(samples, 3 * n)
    }

    func testAStepsSamplesAreFixedByTheSeedEpochAndStep() throws {
        let (trainer, _) = Self.trainer()
        let indices = [0, 13, 4, 9, 20, 2]
        let a = try trainer.prepareBatch(indices, epoch: 3, step: 2, draws: Self.draws())
        let b = try trainer.prepareBatch(indices, epoch: 3, step: 2, draws: Self.draws())
        XCTAssertEqual(a.videoFeatures, b.videoFeatures)
        XCTAssertEqual(a.windows, b.windows)
        let c = try trainer.prepareBatch(indices, epoch: 3, step: 3, draws: Self.draws())
        XCTAssertNotEqual(a.videoFeatures, c.videoFeatures)
    }

    func testTheRecipeSetsTheCodesValues() {
        var model = ModelConfig.tdDETR(), training = TrainingConfig()
        let (model0, training0) = (model, training)
        TrainingRecipe.paper.apply(model: &model, training: &training)
        XCTAssertEqual(model, model0, "the paper's reading changes nothing")
        XCTAssertNil(training.authorsCodeSynthesis)
        TrainingRecipe.authorsCode.apply(model: &model, training: &training)
        XCTAssertEqual(model.tdemVariant, .authorsCode)
        XCTAssertTrue(model.tdem && model.vsdc)
        XCTAssertEqual(model.beta, 0.7)
        XCTAssertEqual([model.textToVideoLayers, model.encoderLayers, model.decoderLayers], [4, 4, 4])
        XCTAssertEqual(model.coefficients, LossCoefficients(span: 1, giou: 10, label: 4, margin: 1, contrastive: 1, negative: 1))
        XCTAssertEqual(training.lrDrop, 80)
        XCTAssertEqual(training.lrGamma, 0.1)
        XCTAssertEqual(training.authorsCodeSynthesis?.alpha, 0.7)
        XCTAssertEqual(training.authorsCodeSynthesis?.topkEntries, 50)
        XCTAssertNil(training.authorsCodeSynthesis?.nearDuplicateCutoff, "QVHighlights: no near-duplicate cut")
        XCTAssertNil(training.inBatchSynthesis)
        XCTAssertEqual(training0.learningRate, training.learningRate, "lr stays the param's")
        let (trainer, _) = Self.trainer()
        XCTAssertEqual(trainer.learningRate(epoch: 79), 1e-4)
        XCTAssertEqual(trainer.learningRate(epoch: 80), 1e-5, accuracy: 1e-12)
        XCTAssertEqual(trainer.learningRate(epoch: 160), 1e-6, accuracy: 1e-13)
    }
}

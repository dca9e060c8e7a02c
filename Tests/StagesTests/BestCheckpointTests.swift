import XCTest
@testable import Stages
import Retrieval

/// Which epoch's weights the train stage keeps as `checkpoint.tshard`.
final class BestCheckpointTests: XCTestCase {
    /// The best epoch after each epoch of a run scoring `scores` on val.
    func bestEpochs(_ scores: [Double]) -> [Int] {
        var best = (epoch: -1, score: -Double.infinity)
        return scores.enumerated().map { i, score in
            _ = TrainingRun.updateBest(&best, epoch: i + 1, score: score)
            return best.epoch
        }
    }

    /// `eval_every` 5 over 12 epochs: val after epochs 5, 10 and the last (so every run has a best checkpoint).
    func testValIsScoredEveryEvalEveryEpochsAndAfterTheLast() {
        XCTAssertEqual((1...12).filter { TrainingRun.evaluates(epoch: $0, every: 5, of: 12) }, [5, 10, 12])
        XCTAssertEqual((1...3).filter { TrainingRun.evaluates(epoch: $0, every: 1, of: 3) }, [1, 2, 3])
        XCTAssertEqual((1...3).filter { TrainingRun.evaluates(epoch: $0, every: 5, of: 3) }, [3])
    }

    func testAStrictlyHigherValScoreWinsAndATieKeepsTheEarlierEpoch() {
        XCTAssertEqual(bestEpochs([10, 12, 12, 11, 13]), [1, 2, 2, 2, 5])
    }

    func testANonFiniteScoreNeverBeatsARealOneButTheFirstEpochStillGivesABest() {
        XCTAssertEqual(bestEpochs([.nan, 3, .nan, .infinity, 2]), [1, 2, 2, 2, 2])
        XCTAssertEqual(bestEpochs([.nan, .nan]), [1, 1])
        var best = (epoch: -1, score: -Double.infinity)
        XCTAssertTrue(TrainingRun.updateBest(&best, epoch: 1, score: .nan))
        XCTAssertEqual(best.score, -.infinity, "kept as minus infinity, so any real score beats it")
        XCTAssertTrue(TrainingRun.updateBest(&best, epoch: 2, score: 0))
        XCTAssertFalse(TrainingRun.updateBest(&best, epoch: 3, score: -.infinity))
    }
}

/// How the train stage's params become a model configuration.
final class TrainParamsTests: XCTestCase {
    func config(_ json: String) throws -> ModelConfig {
        TrainCommand.modelConfig(try StageParams(json: json, declared: TrainCommand.params, stage: "train"), videoWidth: 6, textWidth: 4)
    }

    /// `saliency_weight` is QD-DETR's lw_saliency: it scales the three saliency terms of the preset, nothing else.
    func testSaliencyWeightScalesTheThreeSaliencyCoefficientsOfThePreset() throws {
        let plain = try config(#"{"model": "qd-detr", "loss_preset": "qd-detr"}"#).coefficients
        let scaled = try config(#"{"model": "qd-detr", "loss_preset": "qd-detr", "saliency_weight": 4}"#).coefficients
        XCTAssertEqual(plain, .qdDETR)
        XCTAssertEqual(scaled, LossCoefficients(span: 10, giou: 1, label: 4, margin: 4, contrastive: 4, negative: 4))
        XCTAssertEqual(try config(#"{"model": "td-detr", "saliency_weight": 0.5}"#).coefficients,
                       LossCoefficients(span: 1, giou: 10, label: 4, margin: 0.5, contrastive: 0.5, negative: 2))
    }
}

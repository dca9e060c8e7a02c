import XCTest
@testable import Stages

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

import Retrieval
@testable import Stages
import XCTest

/// The train stage's `recipe` param: the authors' code's settings over the individual params, the paper's
/// reading by default.
final class TrainRecipeTests: XCTestCase {
    func params(_ json: String) throws -> StageParams {
        try StageParams(json: json, declared: TrainCommand.params, stage: "train")
    }

    func testAuthorsCodeOverridesTheIndividualParams() throws {
        let p = try params(#"{"recipe": "authors-code", "beta": 0.2, "tdem_variant": "paper", "t2v_layers": 1, "enc_layers": 1, "dec_layers": 1, "loss_preset": "qd-detr", "lr_drop": 5, "lr_gamma": 0.5, "vsdc_source": "batch", "recipe_drop_near_duplicates": true, "hidden": 16, "heads": 2}"#)
        let (model, training) = try TrainCommand.configurations(p, videoWidth: 10, textWidth: 6)
        XCTAssertEqual(model.tdemVariant, .authorsCode)
        XCTAssertEqual(model.beta, 0.7)
        XCTAssertEqual([model.textToVideoLayers, model.encoderLayers, model.decoderLayers], [4, 4, 4])
        XCTAssertEqual(model.coefficients, .authorsCode)
        XCTAssertEqual(training.lrDrop, 80)
        XCTAssertEqual(training.lrGamma, 0.1)
        XCTAssertNil(training.inBatchSynthesis, "the recipe's own in-batch synthesis replaces vsdc_source")
        XCTAssertEqual(training.authorsCodeSynthesis?.alpha, 0.7)
        XCTAssertEqual(training.authorsCodeSynthesis?.nearDuplicateCutoff, 0.9)
        XCTAssertEqual(model.hiddenWidth, 16, "what the code shares with the defaults stays a param")
    }

    func testThePaperReadingIsTheDefaultAndKeepsEveryParam() throws {
        let p = try params(#"{"beta": 0.2, "t2v_layers": 1, "lr_drop": 5}"#)
        XCTAssertEqual(p.string("recipe"), "paper")
        let (model, training) = try TrainCommand.configurations(p, videoWidth: 10, textWidth: 6)
        XCTAssertEqual(model.tdemVariant, .paper)
        XCTAssertEqual(model.beta, 0.2)
        XCTAssertEqual(model.textToVideoLayers, 1)
        XCTAssertEqual(model.coefficients, .paper)
        XCTAssertEqual(training.lrDrop, 5)
        XCTAssertNil(training.authorsCodeSynthesis)
    }

    func testTheRecipeIsRefusedForAnotherModel() throws {
        for model in ["qd-detr", "vsdc-only", "tdem-only", "cdnet"] {
            XCTAssertThrowsError(try TrainCommand.configurations(try params(#"{"model": "\#(model)", "recipe": "authors-code"}"#),
                                                                 videoWidth: 10, textWidth: 6)) { error in
                XCTAssertEqual("\(error)", "train: recipe authors-code is TD-DETR's; it cannot apply to model \(model)")
            }
        }
    }
}

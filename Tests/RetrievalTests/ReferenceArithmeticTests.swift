import XCTest

@testable import Retrieval

/// The Python and numpy arithmetic the official numbers depend on (expected values printed by Python 3.11 and
/// numpy 2.4).
final class ReferenceArithmeticTests: XCTestCase {
    func testRoundingMatchesPythonRoundOnTheExactBinaryValue() {
        // round(2.675, 2) == 2.67: the Double is just below the tie.
        XCTAssertEqual(ReferenceArithmetic.roundToHundredths(2.675), 2.67)
        // round(93.255, 2) == 93.25, although 93.255 * 100 rounds up to exactly 9325.5.
        XCTAssertEqual(ReferenceArithmetic.roundToHundredths(93.255), 93.25)
        // round(0.34500000000000003, 2) == 0.35: just above the tie.
        XCTAssertEqual(ReferenceArithmetic.roundToHundredths(0.34500000000000003), 0.35)
        // Exact binary ties go to the even neighbour: round(0.125, 2) == 0.12, round(0.375, 2) == 0.38.
        XCTAssertEqual(ReferenceArithmetic.roundToHundredths(0.125), 0.12)
        XCTAssertEqual(ReferenceArithmetic.roundToHundredths(0.375), 0.38)
        XCTAssertEqual(ReferenceArithmetic.roundToHundredths(-0.375), -0.38)
        XCTAssertEqual(ReferenceArithmetic.roundToHundredths(100), 100)
        XCTAssertTrue(ReferenceArithmetic.roundToHundredths(.nan).isNaN)
    }

    func testPercentMatchesThePythonFormatting() {
        // float(f"{100 * (1 / 3):.2f}") == 33.33 and float(f"{100 * (2 / 9):.2f}") == 22.22.
        XCTAssertEqual(ReferenceArithmetic.percent(1.0 / 3), 33.33)
        XCTAssertEqual(ReferenceArithmetic.percent(2.0 / 9), 22.22)
        XCTAssertEqual(ReferenceArithmetic.percent(1.0 / 32), 3.12)
    }

    func testPairwiseSumFollowsNumpy() {
        // np.sum([1e16] + [1.0] * 9) == 1.0000000000000008e+16, where a plain loop gives 1e16.
        let values = [1e16] + Array(repeating: 1.0, count: 9)
        XCTAssertEqual(ReferenceArithmetic.sum(values), 1.0000000000000008e16)
        XCTAssertEqual(values.reduce(0, +), 1e16)
        // Below eight terms numpy adds in order.
        XCTAssertEqual(ReferenceArithmetic.sum([1e16, 1, 1, 1]), 1e16)
        // Above 128 terms it halves at a multiple of 8; a sum of integers is exact whatever the order.
        XCTAssertEqual(ReferenceArithmetic.sum((1...1000).map(Double.init)), 500_500)
        XCTAssertTrue(ReferenceArithmetic.mean([]).isNaN)
    }

    func testNumbersPrintAsPythonJSON() {
        XCTAssertEqual(ReferenceArithmetic.pythonJSONNumber(32.2), "32.2")
        XCTAssertEqual(ReferenceArithmetic.pythonJSONNumber(0), "0.0")
        XCTAssertEqual(ReferenceArithmetic.pythonJSONNumber(100), "100.0")
        XCTAssertEqual(ReferenceArithmetic.pythonJSONNumber(0.95), "0.95")
        XCTAssertEqual(ReferenceArithmetic.pythonJSONNumber(.nan), "NaN")
    }

    func testMetricsTreeWritesPythonIndentedJSON() {
        let tree = MetricsTree.object([
            MetricsTree.Entry("a", .object([MetricsTree.Entry("0.5", .number(54.96)), MetricsTree.Entry("é\"", .number(0))])),
            MetricsTree.Entry("empty", .object([])),
        ])
        XCTAssertEqual(tree.jsonString(), "{\n    \"a\": {\n        \"0.5\": 54.96,\n        \"\\u00e9\\\"\": 0.0\n    },\n    \"empty\": {}\n}")
    }
}

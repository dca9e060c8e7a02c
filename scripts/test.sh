#!/usr/bin/env bash
# The whole test suite: unit, gradient-check, golden-file, fault-injection and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh test
# The whole suite (no arguments) also fuzzes each reader of untrusted input briefly (scripts/fuzz.sh): a fixed
# seed and number of inputs (up to 60 s per target) so that a run is repeatable; FUZZ_RUNS=0 skips it.
# XCTest then prints the closing summary.
if [ $# -eq 0 ] && [ "${FUZZ_RUNS:-15000}" != 0 ]; then
  # A finding fails the suite; the input is kept under Fuzz/.build/crashes.
  scripts/fuzz.sh all 60 -seed=1 -runs="${FUZZ_RUNS:-15000}"
fi
# The suite is XCTest; without the flag an empty Swift Testing run would print the last (0-test) line.
exec swift test --disable-swift-testing "$@"

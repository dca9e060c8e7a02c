#!/usr/bin/env bash
# The whole test suite: unit, gradient-check, golden-file, fault-injection and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh
# The whole suite (no arguments) also fuzzes each reader of untrusted input briefly (scripts/fuzz.sh; set
# FUZZ_SECONDS to change the 30 s per target, 0 to skip); XCTest then prints the closing summary.
if [ $# -eq 0 ] && [ "${FUZZ_SECONDS:-30}" != 0 ]; then
  scripts/fuzz.sh all "${FUZZ_SECONDS:-30}"
fi
# The suite is XCTest; without the flag an empty Swift Testing run would print the last (0-test) line.
exec swift test --disable-swift-testing "$@"

#!/usr/bin/env bash
# The whole test suite: unit, gradient-check, golden-file, fault-injection and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh
# The suite is XCTest; without the flag an empty Swift Testing run would print the last (0-test) line.
exec swift test --disable-swift-testing "$@"

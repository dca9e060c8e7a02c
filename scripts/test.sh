#!/usr/bin/env bash
# The whole test suite: unit, gradient-check, golden-file, fault-injection and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh test
# SlurmExecutorTests submit to a real Slurm: a single-node cluster on this machine (installed with apt-get
# when missing). A cluster that cannot start is reported here and fails those tests, with the reason.
scripts/slurm-local.sh start || echo "test.sh: the local Slurm cluster did not start; SlurmExecutorTests will fail" >&2
# The whole suite (no arguments) also fuzzes each reader of untrusted input briefly (scripts/fuzz.sh): a fixed
# seed and number of inputs (up to 60 s per target) so that a run is repeatable; FUZZ_RUNS=0 skips it.
# XCTest then prints the closing summary.
if [ $# -eq 0 ] && [ "${FUZZ_RUNS:-15000}" != 0 ]; then
  # A finding fails the suite; the input is kept under Fuzz/.build/crashes.
  scripts/fuzz.sh all 60 -seed=1 -runs="${FUZZ_RUNS:-15000}"
fi
# The suite is XCTest; without the flag an empty Swift Testing run would print the last (0-test) line.
exec swift test --disable-swift-testing "$@"

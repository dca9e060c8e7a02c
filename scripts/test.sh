#!/usr/bin/env bash
# The whole test suite: unit, gradient-check, golden-file, fault-injection and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh
exec swift test "$@"

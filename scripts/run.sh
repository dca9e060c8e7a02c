#!/usr/bin/env bash
# The main job: the whole default pipeline on the embedded synthetic benchmark (cached and incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh
# Every product in one build (one package graph compiles faster than the driver building each stage on demand).
swift build
# Two stages at a time, each on half the cores: the default pipeline's small models use two threads at about 1.5x
# the speed of one, so two trainings side by side finish sooner (README, "The pipelines"). A later --jobs wins.
exec swift run --skip-build pipeline run --no-build --jobs 2 "$@"

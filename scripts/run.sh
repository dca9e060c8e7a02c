#!/usr/bin/env bash
# The main job: the whole default pipeline on the embedded synthetic benchmark (cached and incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh
# Two stages at a time, each on half the cores: the default pipeline's small models run on two threads at 1.5-1.7x
# the speed of one, so two trainings side by side finish sooner. A later --jobs wins.
exec swift run pipeline run --jobs 2 "$@"

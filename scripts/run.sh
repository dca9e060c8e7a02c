#!/usr/bin/env bash
# The main job: the whole default pipeline on the embedded synthetic benchmark (cached and incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh
exec swift run pipeline run "$@"

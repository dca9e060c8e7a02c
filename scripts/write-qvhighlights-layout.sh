#!/usr/bin/env bash
# Writes the synthetic benchmark out in the public QVHighlights layout, at any size, so that
# `feature-ingest folders` (and qvhighlights.json) can be checked on a full-size input:
#   DIR/annotations/highlight_{train,val}_release.jsonl
#   DIR/features/{slowfast_features,clip_features}/{vid}.npz       ("features": [75, 2304] / [75, 512])
#   DIR/features/clip_text_features/qid{qid}.npz                    ("last_hidden_state": [tokens, 512])
# Usage: scripts/write-qvhighlights-layout.sh DIR [TRAIN_VIDEOS [VAL_VIDEOS]]   (default: QVHighlights' 7200 and 1550)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [TRAIN_VIDEOS [VAL_VIDEOS]]" >&2
  exit 2
fi
dir="$1"
train="${2:-7200}"
val="${3:-1550}"
scripts/install-system-packages.sh
swift build -c release --product feature-ingest
bin="$(swift build -c release --show-bin-path)/feature-ingest"
shards="$(mktemp -d "${TMPDIR:-/tmp}/qvh-shards.XXXXXX")"
trap 'rm -rf "$shards"' EXIT
"$bin" synthetic --out "$shards" --params "{\"train_videos\": $train, \"val_videos\": $val, \"shifted_videos\": 1,
  \"min_clips\": 75, \"max_clips\": 75, \"video_dim\": 2816, \"text_dim\": 512}"
for split in train val; do
  "$bin" export-layout --videos "$shards/$split.videos.tshard" --queries "$shards/$split.queries.tshard" \
    --annotations "highlight_${split}_release.jsonl" --out "$dir"
done

#!/usr/bin/env bash
# Fuzzes one reader of untrusted input with libFuzzer (and the address sanitizer) for SECONDS.
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
# TARGET: shard-reader, numpy, annotations, submissions, pipeline-spec, or all (each for SECONDS).
# Corpora start from the seeds in Fuzz/Corpus/TARGET (kept unchanged); what a run finds is kept under
# Fuzz/.build/corpus/TARGET, crashing inputs under Fuzz/.build/crashes/TARGET. A single allocation over 512 MB
# or a process over 2 GB counts as a failure, as a crash does. Exits non-zero when a target fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
targets=(shard-reader numpy annotations submissions pipeline-spec)
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer options...]   (TARGET: ${targets[*]} or all)" >&2
  exit 2
fi
target="$1"
seconds="$2"
shift 2
if [ "$target" = all ]; then
  for t in "${targets[@]}"; do "$0" "$t" "$seconds" "$@"; done
  exit 0
fi
if [[ ! " ${targets[*]} " =~ " $target " ]]; then
  echo "$0: unknown target '$target' (known: ${targets[*]} all)" >&2
  exit 2
fi
scripts/install-system-packages.sh
swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
  --product "fuzz-$target" >&2
bin="$(swift build --package-path Fuzz -c debug --show-bin-path)/fuzz-$target"
work="$root/Fuzz/.build"
mkdir -p "$work/corpus/$target" "$work/crashes/$target"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
log="$scratch/log"
status=0
FUZZ_PROJECT="$root" FUZZ_SCRATCH="$scratch" ASAN_OPTIONS=detect_leaks=0 \
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -malloc_limit_mb=512 -rss_limit_mb=2048 -max_len=8192 \
  -artifact_prefix="$work/crashes/$target/" "$@" "$work/corpus/$target" "Fuzz/Corpus/$target" > "$log" 2>&1 || status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
if [ "$status" -ne 0 ]; then
  grep -E "ERROR|==[0-9]+==|Fatal|Test unit written|SUMMARY" "$log" | head -20 >&2
  echo "fuzz $target: FAILED after ${runs:-?} executions (exit $status; inputs in $work/crashes/$target)" >&2
  exit 1
fi
echo "fuzz $target: ${runs:-0} executions in ${took:-$seconds} s, 0 crashes"

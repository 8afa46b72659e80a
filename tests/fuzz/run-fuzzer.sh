#!/usr/bin/env bash
# Runs one fuzz target for ctest (tests/fuzz/CMakeLists.txt).
#   run-fuzzer.sh fuzz FUZZER SEEDS WORKDIR SECONDS
#     fuzzes for SECONDS from the seed corpus; new inputs go to WORKDIR/corpus, never into the
#     source tree; a crash, leak, timeout or out-of-memory input is kept in WORKDIR and fails.
#   run-fuzzer.sh replay FUZZER DIR...
#     runs every file in the DIRs once (the regression inputs and the seeds).
# -timeout=20: the slowest valid inputs (host lists of millions of names) take ~4 s under the
# sanitizers, more on a loaded 2-core CI machine; hangs still stop the run.
# Every finding exits 1 (libFuzzer's default for crashes, 77, is ctest's skip code here); the
# final statistics include stat::number_of_executed_units.
set -euo pipefail
mode=$1 fuzzer=$2
shift 2
case "$mode" in
  fuzz)
    seeds=$1 work=$2 seconds=$3
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/tmp"
    # Scratch files of the harnesses (fuzz_util.h) go to the work directory as well.
    export TMPDIR="$work/tmp"
    exec "$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -error_exitcode=1 \
      -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds"
    ;;
  replay)
    files=()
    for dir in "$@"; do
      [ -d "$dir" ] || continue
      while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$dir" -type f -print0 | sort -z)
    done
    if ((${#files[@]} == 0)); then
      echo "run-fuzzer: no inputs in $*" >&2
      exit 1
    fi
    echo "run-fuzzer: replaying ${#files[@]} inputs"
    exec "$fuzzer" -timeout=20 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 "${files[@]}"
    ;;
  *)
    echo "usage: run-fuzzer.sh fuzz FUZZER SEEDS WORKDIR SECONDS | replay FUZZER DIR..." >&2
    exit 2
    ;;
esac

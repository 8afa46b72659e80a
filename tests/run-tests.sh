#!/usr/bin/env bash
# The whole test suite: installs the dependencies (Debian packages, tokenizer files), builds the
# default preset and runs every test with ctest. GPU tests skip themselves where there is no GPU.
# The last lines printed are ctest's summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./etc/setup/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)"
# Tests that start Slurm clusters or several training processes are serialised by RESOURCE_LOCK;
# the rest run in parallel. ctest lists skipped tests (GPU tests without a GPU) after its summary,
# so the summary line is repeated last.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
ctest --preset default -j"$(nproc)" "$@" 2>&1 | tee "$log" || rc=$?
summary=$(grep -a -E '^[0-9]+% tests passed' "$log" | tail -n 1 || true)
[ -n "$summary" ] && echo "$summary"
exit "$rc"

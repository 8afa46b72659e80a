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
# the rest run in parallel.
exec ctest --preset default -j"$(nproc)" "$@"

#!/usr/bin/env bash
# strun under `srun --mpi=pmix` on a 2-node local cluster (tests/cluster): the agents must agree on
# the master address and the coordination secret through PMIx alone. Every task gets its own empty
# HOME and neither STRUN_JOB_SECRET nor STRUN_SECRET_FILE, so no shared secret exists; the same
# launch without PMIx must then fail to authenticate (the control), and with PMIx a real
# torch.distributed all-reduce must succeed in mode (b) (one strun per task) and mode (a) (one
# strun per node).
# Usage: pmix_cluster_test.sh STRUN_BINARY CLUSTER_SCRIPT ALLREDUCE_SCRIPT.
# Exit 77 (skipped) without root, Slurm or /usr/bin/python3 with torch.
set -euo pipefail
strun=$1
cluster=$2
script=$3
if [ ! -x "$cluster" ] || [ "$(id -u)" != 0 ] || ! command -v slurmd >/dev/null || ! command -v srun >/dev/null; then
  echo "skipped: needs root, slurmd, srun and tests/cluster/slurm-cluster.sh to start the local cluster"
  exit 77
fi
if ! /usr/bin/python3 -c 'import torch.distributed' 2>/dev/null; then
  echo "skipped: /usr/bin/python3 has no torch"
  exit 77
fi
unset STRUN_JOB_SECRET STRUN_SECRET_FILE STRUN_COORD_PORT
export STRUN_PYTHON=/usr/bin/python3

# Runs as the command of the cluster: three steps in one cluster.
steps=$(mktemp)
trap 'rm -f "$steps"' EXIT
cat >"$steps" <<'STEPS'
set -u
# Each task: a fresh, empty home on its own node (/tmp is private to every node).
task='HOME=$(mktemp -d /tmp/strun-home.XXXXXX) exec "$@"'
echo "== control: no PMIx, no shared secret"
if srun -N2 --ntasks-per-node=2 --mpi=none sh -c "$task" task "$STRUN" --rdzv-conf=join_timeout=5 \
     "$SCRIPT" --expect-world 4; then
  echo "FAIL: strun without PMIx and without a shared secret succeeded; the homes are shared?"
  exit 1
fi
echo "== mode (b): srun -N2 --ntasks-per-node=2 --mpi=pmix strun script"
srun -N2 --ntasks-per-node=2 --mpi=pmix --kill-on-bad-exit=1 sh -c "$task" task "$STRUN" \
  "$SCRIPT" --expect-world 4 --expect-local-world 2 || { echo "FAIL: mode (b) under PMIx"; exit 1; }
echo "== mode (a): srun -N2 --ntasks-per-node=1 --mpi=pmix strun --nproc-per-node=2 script"
srun -N2 --ntasks-per-node=1 --mpi=pmix --kill-on-bad-exit=1 sh -c "$task" task "$STRUN" --nproc-per-node=2 \
  "$SCRIPT" --expect-world 4 --expect-local-world 2 || { echo "FAIL: mode (a) under PMIx"; exit 1; }
STEPS
out=$(STRUN="$strun" SCRIPT="$script" "$cluster" run --nodes 2 --owner-pid $$ -- bash "$steps" 2>&1) || {
  echo "$out"
  echo "FAIL: see above"
  exit 1
}
echo "$out"
# The control must have failed for the right reason, and every rank of both PMIx launches all-reduced.
grep -q "authenticat\|coordination" <<<"$out" || { echo "FAIL: the control did not fail on coordination"; exit 1; }
n=$(grep -c "ALLREDUCE_OK" <<<"$out" || true)
if [ "$n" != 8 ]; then
  echo "FAIL: expected 8 ALLREDUCE_OK lines (4 ranks x 2 launches), got $n"
  exit 1
fi
echo "PASS"

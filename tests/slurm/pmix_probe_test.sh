#!/usr/bin/env bash
# Runs strun-pmix-probe under `srun --mpi=pmix` on a 2-node local cluster (tests/cluster) and
# checks the PMIx topology, the key exchange and Slurm's NodeAddr lookup on every task.
# Usage: pmix_probe_test.sh PROBE_BINARY CLUSTER_SCRIPT. Exit 77 (skipped) without root or Slurm.
set -euo pipefail
probe=$1
cluster=$2
if [ ! -x "$cluster" ] || [ "$(id -u)" != 0 ] || ! command -v slurmd >/dev/null || ! command -v srun >/dev/null; then
  echo "skipped: needs root, slurmd, srun and tests/cluster/slurm-cluster.sh to start the local cluster"
  exit 77
fi
out=$("$cluster" run --nodes 2 --owner-pid $$ -- \
  srun -N2 --ntasks-per-node=2 --mpi=pmix --kill-on-bad-exit=1 "$probe" 2>&1) || {
  echo "$out"
  echo "FAIL: srun of the probe failed"
  exit 1
}
echo "$out"
fail=0
for rank in 0 1 2 3; do
  node_rank=$((rank / 2))
  line=$(grep "^pmix-probe .* rank=$rank " <<<"$out" || true)
  want="first_node_addr=127.0.0.1 rank=$rank world_size=4 local_rank=$((rank % 2)) local_world_size=2 node_rank=$node_rank num_nodes=2 nodes=nid001,nid002 tasks_per_node=2,2 node_name=nid00$((node_rank + 1)) master=addr-0:29500 neighbour=ok slurm_env=match"
  if [ "$line" != "pmix-probe $want" ]; then
    echo "FAIL: rank $rank printed '$line', expected 'pmix-probe $want'"
    fail=1
  fi
done
exit $fail

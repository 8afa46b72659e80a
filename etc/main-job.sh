#!/usr/bin/env bash
# The main job: everything from a fresh machine to a real run on a local Slurm cluster.
#
#   ./etc/main-job.sh                 install dependencies, build (preset release), start a 4-node
#                                     Slurm cluster on this machine, run the payload, stop the cluster
#   ./etc/main-job.sh -- COMMAND...   the same with COMMAND as the payload (it sees SLURM_CONF,
#                                     STRUN (the built strun), STRUN_CLUSTER_SHARED, ...)
#
# The default payload trains the small Llama of etc/examples/cpu_tiny_llama.yaml on CPU with two
# data-parallel ranks on two Slurm nodes, on English text from Debian's `fortunes` package:
#   srun -N2 --ntasks-per-node=1 strun --nproc-per-node=1 --no-python strun-train --config-file ...
# first for 100 steps (the loss falls, checkpoints are written), then a second run to step 200
# that resumes from the first one's checkpoint. `-- two_node_launch` runs the older payload: a
# two-node launch of a real PyTorch script (gloo all-reduce, checks of torchrun's environment).
# The cluster is stopped however the payload ends (tests/cluster/slurm-cluster.sh explains how).
#
# Environment: MAIN_JOB_TARGETS (the targets to build, default "strun strun-train"), MAIN_JOB_SKIP_SETUP=1
# (skip install-deps.sh and the build, for a second run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

payload=()
if (($#)); then
  [ "$1" = -- ] || { echo "usage: $0 [-- COMMAND...]" >&2; exit 2; }
  shift
  payload=("$@")
fi

step() { printf '\n== %s\n' "$*"; }

# --- set-up: dependencies and the release build -----------------------------------------------
if [ "${MAIN_JOB_SKIP_SETUP:-0}" != 1 ]; then
  step "installing dependencies (etc/setup/install-deps.sh)"
  ./etc/setup/install-deps.sh
  step "building preset release: ${MAIN_JOB_TARGETS:-strun strun-train}"
  cmake --preset release >/dev/null
  # shellcheck disable=SC2086
  cmake --build --preset release -j"$(nproc)" --target ${MAIN_JOB_TARGETS:-strun strun-train}
fi
export STRUN=$root/build/release/launcher/strun
[ -x "$STRUN" ] || { echo "main-job: $STRUN was not built" >&2; exit 1; }

# --- the local Slurm cluster: started here, stopped on any exit --------------------------------
cluster_script=$root/tests/cluster/slurm-cluster.sh
cluster_up() {
  step "starting a local Slurm cluster"
  local env_lines
  env_lines=$("$cluster_script" start --owner-pid $$ "$@")
  eval "$env_lines"
  trap cluster_down EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  sinfo
}
cluster_down() {
  step "stopping the local Slurm cluster"
  "$cluster_script" stop --id "$STRUN_CLUSTER_ID" || true
}

# --- the default payload: a real two-node PyTorch launch ---------------------------------------
two_node_launch() {
  local out=$STRUN_CLUSTER_SHARED/main-job
  mkdir -p "$out"
  chmod 1777 "$out"
  step "srun -N2 --ntasks-per-node=1 strun --nproc-per-node=2 tests/integration/torch_check.py"
  local start end rc=0
  start=$(date +%s.%N)
  # Debian's python3 has torch; a python3 earlier in PATH may not.
  (cd "$out" && unset OMP_NUM_THREADS && STRUN_PYTHON=/usr/bin/python3 CHECK_DIR=$out CHECK_SLURM_MODE=node CHECK_WORLD_SIZE=4 \
    srun -N2 --ntasks-per-node=1 "$STRUN" --nproc-per-node=2 "$root/tests/integration/torch_check.py") || rc=$?
  end=$(date +%s.%N)
  step "what happened"
  awk -v rc="$rc" -v s="$start" -v e="$end" 'BEGIN { printf "exit status %d after %.1f s (most of it is importing torch in 4 workers)\n", rc, e - s }'
  /usr/bin/python3 - "$out" <<'EOF'
import glob, json, sys
records = sorted((json.load(open(f)) for f in glob.glob(sys.argv[1] + "/attempt*-rank*.json")), key=lambda r: r["rank"])
for r in records:
    print(f"rank {r['rank']} of {r['world_size']}: node {r['node']} (GROUP_RANK {r['group_rank']}), "
          f"LOCAL_RANK {r['local_rank']} of {r['local_world_size']}, MASTER_ADDR {r['master_addr']}:{r['master_port']}, "
          f"job {r['slurm_job_id']}, all_reduce {r['all_reduce']:g} (expected {r['world_size'] * (r['world_size'] + 1) // 2})")
nodes = sorted({r["node"] for r in records})
print(f"{len(records)} ranks on {len(nodes)} nodes ({', '.join(nodes)}) initialised gloo over env:// and all-reduced")
sys.exit(0 if len(records) == 4 and len(nodes) == 2 else 1)
EOF
  return "$rc"
}

# --- the default payload: train on two nodes, then resume -------------------------------------
train_two_nodes() {
  local train=$root/build/release/trainer/train/strun-train
  [ -x "$train" ] || { echo "main-job: $train was not built" >&2; return 1; }
  local ckpt=checkpoints/main-job-$(date +%Y%m%d-%H%M%S)
  local launch="srun -N2 --ntasks-per-node=1 $STRUN --nproc-per-node=1"
  step "training run 1: steps 1-100 on nid001+nid002 ($launch --no-python strun-train ...)"
  STRUN_LAUNCH=$launch STRUN_TRAIN_STEPS=100 STRUN_CHECKPOINTS_PATH=$ckpt \
    ./etc/examples/train-cpu.sh build/release
  step "training run 2: resumes from $ckpt/$(cat "$ckpt/latest.txt") and continues to step 200"
  STRUN_LAUNCH=$launch STRUN_TRAIN_STEPS=200 STRUN_CHECKPOINTS_PATH=$ckpt \
    ./etc/examples/train-cpu.sh build/release
  step "checkpoints in $ckpt"
  ls "$ckpt"
  echo "latest.txt: $(cat "$ckpt/latest.txt")"
}

cluster_up --nodes 4
if ((${#payload[@]})); then
  step "payload: ${payload[*]}"
  "${payload[@]}"
else
  train_two_nodes
fi

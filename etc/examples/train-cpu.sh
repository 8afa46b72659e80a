#!/usr/bin/env bash
# Trains etc/examples/cpu_tiny_llama.yaml on CPU with 2 data-parallel ranks, from the repository
# root: prepares the dataset once (the Debian package `fortunes`, tokenized with GPT-2's BPE), then
# runs strun-train under `strun --standalone --nproc-per-node=2`. Run it twice: the second run
# resumes from the checkpoint the first one wrote (and a finished run says so and exits 0).
#
#   etc/examples/train-cpu.sh [BUILD_DIR]          (default: build/default, then build)
# Environment: STRUN_TRAIN_STEPS overrides tokens.train_steps (e.g. 300 to continue a finished run);
# STRUN_CHECKPOINTS_PATH overrides checkpoints.checkpoints_path and resume_checkpoint_path;
# STRUN_LAUNCH replaces the launcher command (e.g. "srun -N2 --ntasks-per-node=1 strun
# --nproc-per-node=1" on a Slurm cluster; strun-train is appended with --no-python);
# STRUN_NO_LAUNCHER=1 starts the two ranks by hand instead of through strun.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${1:-}
if [ -z "$build" ]; then
  for b in build/default build; do [ -x "$b/trainer/train/strun-train" ] && build=$b && break; done
fi
train=${build:+$build/trainer/train/strun-train}
launcher=${build:+$build/launcher/strun}
[ -n "$train" ] && [ -x "$train" ] || { echo "train-cpu.sh: build strun-train first (cmake --preset default && cmake --build --preset default), or pass the build directory" >&2; exit 1; }

config=etc/examples/cpu_tiny_llama.yaml
if [ -n "${STRUN_TRAIN_STEPS:-}${STRUN_CHECKPOINTS_PATH:-}" ]; then
  ckpt=${STRUN_CHECKPOINTS_PATH:-checkpoints/cpu_tiny_llama}
  mkdir -p "$ckpt"
  steps=${STRUN_TRAIN_STEPS:-$(sed -n 's/^  train_steps: //p' "$config")}
  sed -e "s/^  train_steps: .*/  train_steps: $steps/" \
      -e "s#^  checkpoints_path: .*#  checkpoints_path: $ckpt#" \
      -e "s#^  resume_checkpoint_path: .*#  resume_checkpoint_path: $ckpt#" "$config" >"$ckpt/config-$steps.yaml"
  config=$ckpt/config-$steps.yaml
fi

# The dataset "fortunes": the fortune cookies of Debian's `fortunes` package (English text).
store=${STRUN_DATA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/strun/datasets}
if [ ! -f "$store/fortunes/default/train.idx" ]; then
  src=/usr/share/games/fortunes
  [ -d "$src" ] || { echo "train-cpu.sh: $src missing: apt-get install fortunes" >&2; exit 1; }
  # The cookie files are the ones without an extension (.dat/.u8 are fortune's indexes).
  mapfile -t inputs < <(find "$src" -maxdepth 1 -type f ! -name '*.*' | sort)
  "$train" prepare --input "${inputs[@]}" --output fortunes --format text --sample-by document
fi

# One intra-op thread per rank: two ranks share the cores (torchrun sets the same).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ -n "${STRUN_LAUNCH:-}" ]; then
  # shellcheck disable=SC2086
  exec $STRUN_LAUNCH --no-python "$train" --config-file "$config"
fi
if [ -x "$launcher" ] && [ -z "${STRUN_NO_LAUNCHER:-}" ]; then
  exec "$launcher" --standalone --nproc-per-node=2 --no-python "$train" --config-file "$config"
fi
# Without the launcher: two ranks started by hand with the torchrun environment.
port=$((29500 + RANDOM % 1000))
pids=()
for r in 0 1; do
  RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$train" --config-file "$config" &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc

# Helpers for the strun-train integration tests (sourced): a work folder, the prepared dataset
# "tiny", a small config (tiny_config.yaml.in) and a launcher of N ranks. Needs BIN (path to
# strun-train).
set -euo pipefail
TINY_CONFIG=$(dirname "$(realpath "${BASH_SOURCE[0]}")")/tiny_config.py
BIN=$(realpath "${BIN:?BIN must name strun-train}")
W=$(mktemp -d /tmp/strun-train-test.XXXXXX)
PIDS=()
EXTRA_CLEANUP=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for c in "${EXTRA_CLEANUP[@]}"; do eval "$c" || true; done
  if [ -z "${STRUN_TEST_KEEP:-}" ]; then rm -rf "$W"; else echo "kept $W" >&2; fi
}
trap cleanup EXIT
cd "$W"
export STRUN_DATA_HOME=$W/store
fail() { echo "FAIL: $*" >&2; exit 1; }

prepare_tiny() {
  local corpus=/usr/share/common-licenses/GPL-3
  [ -f "$corpus" ] || fail "corpus $corpus missing (Debian's base-files ships it)"
  "$BIN" prepare --input "$corpus" --output tiny --quiet --num-workers 1 >prepare.log 2>&1 ||
    { cat prepare.log; fail "prepare failed (is the GPT-2 tokenizer fetched? etc/setup/fetch-tokenizer.sh)"; }
}

# tiny_config FILE KEY=VALUE...: the tiny training config (tiny_config.yaml.in) with these values
# (a later KEY=VALUE wins; KEY= leaves the key out, to strun-train's default).
tiny_config() { /usr/bin/python3 "$TINY_CONFIG" "$@"; }

# tiny_config values of the tests of parallel layouts (tensor_parallel, pipeline_parallel, reshard).
# PARALLEL_VOCAB: a vocabulary (50260) that divides by 4, so that every tp up to 4 pads it alike.
# PP_SPLIT_MODEL: 4 decoder layers whose wide MLPs outweigh the lm_head in nanotron's compute
# costs, so that pp 2 splits them (stage 0: embedding, layers 0-2; stage 1: layer 3, final norm,
# the tied lm_head). Narrow (hidden 16): a dp run's gradient norm is one fp32 norm of all
# gradients, whose rounding error grows with their number (~3e-3 relative at 10M parameters on
# libtorch 1.13's CPU), and the comparisons allow 1e-5.
PARALLEL_VOCAB=vocab_size=50260
PP_SPLIT_MODEL=(hidden_size=16 intermediate_size=8448 num_hidden_layers=4)

# config NAME DP STEPS INTERVAL CKPT_DIR [LEARNING_RATE]: ZeRO-1, clip_grad 1.0, debug log lines.
config() {
  tiny_config "$1.yaml" run="$1" dp="$2" train_steps="$3" checkpoint_interval="$4" checkpoints_path="$5" \
    learning_rate="${6:-0.003}"
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NPROC CONFIG LOGPREFIX: starts NPROC ranks (as torchrun would), returns rank 0's status.
run() {
  local n=$1 cfg=$2 out=$3 port rc=0 r
  port=$(free_port)
  local pids=()
  for ((r = 0; r < n; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$BIN" --config-file "$cfg" >"$out.$r.log" 2>&1 &
    pids+=($!)
    PIDS+=($!)
  done
  wait "${pids[0]}" || rc=$?
  for ((r = 1; r < n; r++)); do
    # A rank whose peer died may wait for it until gloo notices: stop it.
    if [ "$rc" -ne 0 ]; then sleep 2; kill -9 "${pids[$r]}" 2>/dev/null || true; fi
    wait "${pids[$r]}" || true
  done
  return $rc
}

losses() { grep -o 'step [0-9]* lm_loss [^ ]*' "$1" | awk '{print $2, $4}'; }

# poke FILE OFFSET_FROM_END VALUE: overwrites the float32 that ends OFFSET_FROM_END bytes before the
# end of FILE (the payload of a safetensors file ends there) with VALUE (nan, 1e30, ...).
poke() {
  /usr/bin/python3 - "$@" <<'PY'
import os, struct, sys
path, off, value = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) - off)
    f.write(struct.pack("<f", value))
PY
}

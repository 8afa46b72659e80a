# Helpers for the strun-train integration tests (sourced): a work folder, the prepared dataset
# "tiny", a small config and a launcher of N ranks. Needs BIN (path to strun-train).
set -euo pipefail
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

# config NAME DP STEPS INTERVAL CKPT_DIR [LEARNING_RATE]: ZeRO-1, clip_grad 1.0, debug log lines.
config() {
  cat >"$1.yaml" <<YAML
general:
  project: test
  run: $1
  seed: 7
model:
  dtype: float32
  init_method:
    std: 0.025
  make_vocab_size_divisible_by: 1
  model_config:
    hidden_size: 32
    intermediate_size: 64
    num_attention_heads: 4
    num_key_value_heads: 2
    num_hidden_layers: 2
    max_position_embeddings: 32
    rms_norm_eps: 1.0e-05
    tie_word_embeddings: true
    vocab_size: 50257
optimizer:
  accumulate_grad_in_fp32: true
  clip_grad: 1.0
  learning_rate_scheduler:
    learning_rate: ${6:-0.003}
    lr_warmup_steps: 2
    lr_warmup_style: linear
    lr_decay_style: cosine
    min_decay_lr: 0.0001
  optimizer_factory:
    name: adamW
    adam_beta1: 0.9
    adam_beta2: 0.95
    adam_eps: 1.0e-08
    torch_adam_is_fused: true
  weight_decay: 0.01
  zero_stage: 1
parallelism:
  dp: $2
  pp: 1
  tp: 1
data_stages:
  - name: stable
    start_training_step: 1
    data:
      dataset:
        hf_dataset_or_datasets: tiny
        hf_dataset_splits: train
        text_column_name: text
      seed: 5
tokenizer:
  tokenizer_name_or_path: gpt2
tokens:
  batch_accumulation_per_replica: 1
  micro_batch_size: 2
  sequence_length: 32
  train_steps: $3
checkpoints:
  checkpoint_interval: $4
  checkpoints_path: $5
  resume_checkpoint_path: $5
logging:
  iteration_step_info_interval: 1
  log_level: debug
  log_level_replica: warning
YAML
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

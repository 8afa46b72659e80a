#!/usr/bin/env bash
# strun-train with tensor parallelism against data parallelism (see CMakeLists.txt).
# Usage: tp_train_test.sh STRUN_TRAIN TUTORIAL_CONFIG
set -euo pipefail
BIN=$1
TUTORIAL=$(realpath "$2")
# The work folder, cleanup, fail, prepare_tiny, tiny_config, free_port and run (ranks as torchrun
# starts them).
source "$(dirname "$(realpath "$0")")/../train/train_test_lib.sh"
export OMP_NUM_THREADS=1  # up to four ranks on a 2-core machine

# 4. --check of the tutorial's config (dp 2, tp 4): the grid and nanotron's parameter count.
"$BIN" --config-file "$TUTORIAL" --check >check.out 2>&1 || { cat check.out; fail "--check"; }
grep -q '^# process grid: 8 ranks = dp 2 x tp 4 x pp 1' check.out || { cat check.out; fail "no grid"; }
grep -q '^# tp groups: \[0 1 2 3\] \[4 5 6 7\]' check.out || { cat check.out; fail "tp groups"; }
grep -q '^# padded vocab size: 50260 (tp=4)' check.out || { cat check.out; fail "padded vocab"; }
grep -q '^# parameters: 109397760$' check.out || { cat check.out; fail "parameter count"; }
echo "ok: --check prints the 8-rank grid and 109397760 parameters"

prepare_tiny

# config NAME DP TP MODE ASYNC ACCUM STEPS INTERVAL CKPT_DIR INITIAL [KV_HEADS]: the tiny config
# (tiny_config.yaml.in), wider (hidden 64, 8 heads, 4 kv heads) and with PARALLEL_VOCAB, so every
# layout pads it alike; global batch dp*2*ACCUM; save_final_state left to strun-train's default.
config() {
  tiny_config "$1.yaml" run="$1" dp="$2" tp="$3" tp_mode="$4" tp_linear_async_communication="$5" \
    batch_accumulation_per_replica="$6" train_steps="$7" checkpoint_interval="$8" \
    checkpoints_path="$9" save_initial_state="${10}" save_final_state= hidden_size=64 \
    intermediate_size=128 num_attention_heads=8 num_key_value_heads="${11:-4}" "$PARALLEL_VOCAB"
}

losses() { grep -o 'step [0-9]* lm_loss [^ ]* grad_norm [^ ]*' "$1" | awk '{print $2, $4, $6}'; }

# compare NAME: NAME's losses and gradient norms within 1e-5 relative of dp4's, at every step.
# (The issue asks 1e-3; fp32 layouts agree to ~1e-7, and a resume without its optimizer state is
# only ~5e-4 off, so 1e-3 would let real bugs pass.)
compare() {
  /usr/bin/python3 - "$1" <(losses dp4.0.log) <(losses "$1.0.log") <<'PY'
import sys
name, a, b = sys.argv[1], open(sys.argv[2]).read().split("\n"), open(sys.argv[3]).read().split("\n")
a = [l.split() for l in a if l]; b = [l.split() for l in b if l]
if len(a) < 8 or len(a) != len(b):
    sys.exit(f"FAIL: {name}: {len(b)} steps logged, dp4 {len(a)}")
worst = 0.0
for (s1, l1, g1), (s2, l2, g2) in zip(a, b):
    assert s1 == s2, (s1, s2)
    for x, y in ((float(l1), float(l2)), (float(g1), float(g2))):
        worst = max(worst, abs(x - y) / abs(x))
print(f"{name}: max relative difference from dp4 over {len(a)} steps (loss, grad norm): {worst:.3g}")
print(f"  {name} losses: " + " ".join(l for _, l, _ in b))
if worst > 1e-5:
    sys.exit(f"FAIL: {name} differs from dp4 by {worst}")
PY
}

# 2. Every layout trains the same global batch (8 sequences) as dp4, to the same losses.
config dp4 4 1 all_reduce false 1 8 100 ck_dp4 true
run 4 dp4.yaml dp4 || { cat dp4.0.log; fail "dp4 run"; }
echo "  dp4 losses: $(losses dp4.0.log | awk '{printf "%s ", $2}')"
for layout in "dp2_tp2_ar 2 2 all_reduce false 2" "dp2_tp2_ar_async 2 2 all_reduce true 2" \
              "dp2_tp2_rs 2 2 reduce_scatter false 2" "dp2_tp2_rs_async 2 2 reduce_scatter true 2" \
              "dp1_tp4_rs_async 1 4 reduce_scatter true 4"; do
  set -- $layout
  config "$1" "$2" "$3" "$4" "$5" "$6" 8 100 "ck_$1" false
  run 4 "$1.yaml" "$1" || { cat "$1".*.log; fail "$1 run"; }
  compare "$1"
done

# 3. Checkpoints at tp 2: nanotron's file names per TP rank; resume continues on the same losses.
# (The whole run is 8 steps, so that the learning-rate schedule is the same; step 4 resumed.)
config ck_a 2 2 reduce_scatter true 2 8 4 ck_tp2 true
run 4 ck_a.yaml ck_a || { cat ck_a.*.log; fail "tp2 run with checkpoints"; }
for f in model/model/decoder/0/pp_block/attn/qkv_proj/model_weight_pp-rank-0-of-1_tp-rank-1-of-2.safetensors \
         model/model/token_position_embeddings/pp_block/token_embedding/model_weight_pp-rank-0-of-1_tp-rank-0-of-2.safetensors \
         model/model/decoder/1/pp_block/mlp/down_proj/model_weight_pp-rank-0-of-1_tp-rank-1-of-2.safetensors \
         model/model/final_layer_norm/pp_block/model_weight.safetensors \
         optimizer/optimizer_pp-0-of-1_dp-1-of-2_tp-1-of-2_exp-0-of-1.safetensors \
         random/tp-1-of-2_dp-1-of-2_pp-0-of-1.safetensors checksums/rank-3-of-4.json; do
  [ -f "ck_tp2/4/$f" ] || { find ck_tp2/4 | sort; fail "ck_tp2/4/$f missing"; }
done
grep -q '"tp": 2' ck_tp2/4/checkpoint_metadata.json || fail "checkpoint_metadata.json: tp"
cmp <(losses ck_a.0.log) <(losses dp2_tp2_rs_async.0.log) || fail "checkpoints changed the losses"
echo 4 >ck_tp2/latest.txt
run 4 ck_a.yaml ck_b || { cat ck_b.*.log; fail "tp2 resume"; }
diff <(losses ck_a.0.log | tail -n 4) <(losses ck_b.0.log) ||
  fail "resumed tp2 run differs from the uninterrupted one"
echo "ok: tp2 checkpoint at step 4 resumed to step 8 on the same losses"

# Another layout resumes (tests/trainer/reshard/); another model (8 kv heads) is refused, naming
# the field.
config ck_c 4 1 all_reduce false 1 12 4 ck_tp2 true 8
if run 4 ck_c.yaml ck_c; then fail "resuming a checkpoint of 4 kv heads with 8 was accepted"; fi
grep -q "holds another model: its model_config.json has num_key_value_heads 4 but this run's model has 8" ck_c.0.log ||
  { cat ck_c.0.log; fail "no model config error"; }
echo "ok: resuming with another model config is refused"

# export-hf merges the shards: the tp2 and the tp1 initial models are the same model.
"$BIN" export-hf --checkpoint ck_tp2/0 --output hf_tp2 >export.log 2>&1 || { cat export.log; fail "export tp2"; }
"$BIN" export-hf --checkpoint ck_dp4/0 --output hf_dp4 >export.log 2>&1 || { cat export.log; fail "export dp4"; }
cmp hf_tp2/model.safetensors hf_dp4/model.safetensors || fail "tp2 and tp1 initial models differ"
echo "ok: export-hf of the tp2 checkpoint equals the tp1 one (same seed, same full model)"

# Heads that do not divide by tp: a config error before any rendezvous.
config bad 1 8 all_reduce false 1 8 4 ck_bad false 4
rc=0
RANK=0 LOCAL_RANK=0 WORLD_SIZE=8 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$BIN" --config-file bad.yaml \
  >bad.log 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { cat bad.log; fail "tp 8 with 4 kv heads: exit $rc"; }
grep -q 'model.model_config.num_key_value_heads is 4 but parallelism.tp is 8' bad.log ||
  { cat bad.log; fail "no divisibility error"; }
echo "ok: all passed"

#!/usr/bin/env bash
# strun-train with pipeline parallelism against data parallelism (see CMakeLists.txt).
# Usage: pp_train_test.sh STRUN_TRAIN
set -euo pipefail
BIN=$1
# The work folder, cleanup, fail, prepare_tiny, tiny_config, free_port and run (ranks as torchrun
# starts them).
source "$(dirname "$(realpath "$0")")/../train/train_test_lib.sh"
export OMP_NUM_THREADS=1  # up to eight ranks on a 2-core machine

prepare_tiny

# config NAME DP TP PP ENGINE ACCUM [TP_MODE] [LAYERS] [INTERMEDIATE]: the tiny config
# (tiny_config.yaml.in) with PP_SPLIT_MODEL (pp 2 splits its layers 3 + 1) and PARALLEL_VOCAB, 8
# steps. Global batch dp*2*ACCUM. Checkpoints under ck_NAME every $INTERVAL (100) steps, the
# initial one if $INITIAL (false), not the final one.
config() {
  tiny_config "$1.yaml" run="$1" dp="$2" tp="$3" pp="$4" pp_engine="$5" \
    batch_accumulation_per_replica="$6" tp_mode="${7:-all_reduce}" \
    tp_linear_async_communication=false "${PP_SPLIT_MODEL[@]}" ${8:+num_hidden_layers=$8} \
    ${9:+intermediate_size=$9} "$PARALLEL_VOCAB" \
    train_steps=8 checkpoint_interval="${INTERVAL:-100}" checkpoints_path="ck_$1" \
    save_initial_state="${INITIAL:-false}" save_final_state=false
}

losses() { grep -o 'step [0-9]* lm_loss [^ ]* grad_norm [^ ]*' "$1" | awk '{print $2, $4, $6}'; }

# compare NAME [REF]: NAME's losses and gradient norms within 1e-5 relative of REF's (dp4), at
# every step.
# (The issue asks 1e-3; fp32 layouts agree to ~1e-7, and a resume without its optimizer state is
# only ~5e-4 off, so 1e-3 would let real bugs pass.)
compare() {
  /usr/bin/python3 - "$1" "${2:-dp4}" <(losses "${2:-dp4}.0.log") <(losses "$1.0.log") <<'PY'
import sys
name, ref = sys.argv[1], sys.argv[2]
a, b = open(sys.argv[3]).read().split("\n"), open(sys.argv[4]).read().split("\n")
a = [l.split() for l in a if l]; b = [l.split() for l in b if l]
if len(a) < 8 or len(a) != len(b):
    sys.exit(f"FAIL: {name}: {len(b)} steps logged, {ref} {len(a)}")
worst = [0.0, 0.0]  # loss, grad norm
for (s1, l1, g1), (s2, l2, g2) in zip(a, b):
    assert s1 == s2, (s1, s2)
    for k, (x, y) in enumerate(((float(l1), float(l2)), (float(g1), float(g2)))):
        worst[k] = max(worst[k], abs(x - y) / abs(x))
print(f"{name}: max relative difference from {ref} over {len(a)} steps: loss {worst[0]:.3g}, "
      f"grad norm {worst[1]:.3g}")
print(f"  {name} losses: " + " ".join(l for _, l, _ in b))
if max(worst) > 1e-5:
    sys.exit(f"FAIL: {name} differs from {ref} by {max(worst)}")
PY
}

# 1. Every layout trains the same global batch (8 sequences) as dp4, to the same losses.
INITIAL=true config dp4 4 1 1 afab 1
run 4 dp4.yaml dp4 || { cat dp4.0.log; fail "dp4 run"; }
echo "  dp4 losses: $(losses dp4.0.log | awk '{printf "%s ", $2}')"
for layout in "dp2_pp2_1f1b 2 1 2 1f1b 2" "dp1_tp2_pp2_afab 1 2 2 afab 4" \
              "dp1_tp2_pp2_1f1b_rs 1 2 2 1f1b 4 reduce_scatter"; do
  set -- $layout
  # dp1_tp2_pp2_afab also writes checkpoints (section 3).
  INTERVAL=$([ "$1" = dp1_tp2_pp2_afab ] && echo 4 || echo 100) config "$@"
  run 4 "$1.yaml" "$1" || { cat "$1".*.log; fail "$1 run"; }
  compare "$1"
done
grep -q 'Pipeline stages: stage 0: token embedding, decoder layers 0-2; stage 1: decoder layer 3, final norm, lm_head, loss' \
  dp2_pp2_1f1b.0.log || { grep -i pipeline dp2_pp2_1f1b.0.log; fail "stage split not logged"; }
echo "ok: the stages split the decoder layers as nanotron"
if [ -z "${STRUN_PP_TEST_SKIP_8:-}" ]; then
  INITIAL=true config dp2_tp2_pp2_1f1b 2 2 2 1f1b 2
  run 8 dp2_tp2_pp2_1f1b.yaml dp2_tp2_pp2_1f1b || { cat dp2_tp2_pp2_1f1b.*.log; fail "dp2_tp2_pp2 run"; }
  compare dp2_tp2_pp2_1f1b
  # The same seed, the same full model: export-hf merges the stages' (and tp ranks') files of the
  # initial checkpoint into dp4's.
  "$BIN" export-hf --checkpoint ck_dp2_tp2_pp2_1f1b/0 --output hf_pp >export.log 2>&1 ||
    { cat export.log; fail "export dp2_tp2_pp2"; }
  "$BIN" export-hf --checkpoint ck_dp4/0 --output hf_dp4 >export.log 2>&1 || { cat export.log; fail "export dp4"; }
  cmp hf_pp/model.safetensors hf_dp4/model.safetensors || fail "dp2 tp2 pp2 and dp4 initial models differ"
  echo "ok: the initial dp2 tp2 pp2 model (exported) is dp4's"
fi

# 3. Checkpoints at pp 2 (tp 2): every stage's files under nanotron's pp-rank names; resuming step 4
# continues on the same losses (both stages' tied embedding copies come from stage 0's file).
for f in model/model/decoder/0/pp_block/attn/qkv_proj/model_weight_pp-rank-0-of-2_tp-rank-1-of-2.safetensors \
         model/model/decoder/3/pp_block/mlp/down_proj/model_weight_pp-rank-1-of-2_tp-rank-0-of-2.safetensors \
         model/model/token_position_embeddings/pp_block/token_embedding/model_weight_pp-rank-0-of-2_tp-rank-1-of-2.safetensors \
         optimizer/optimizer_pp-1-of-2_dp-0-of-1_tp-1-of-2_exp-0-of-1.safetensors random/tp-1-of-2_dp-0-of-1_pp-1-of-2.safetensors; do
  [ -f "ck_dp1_tp2_pp2_afab/4/$f" ] || { find ck_dp1_tp2_pp2_afab/4 | sort; fail "ck_dp1_tp2_pp2_afab/4/$f missing"; }
done
echo 4 >ck_dp1_tp2_pp2_afab/latest.txt
run 4 dp1_tp2_pp2_afab.yaml resumed || { cat resumed.*.log; fail "pp2 resume"; }
diff <(losses dp1_tp2_pp2_afab.0.log | tail -n 4) <(losses resumed.0.log) ||
  fail "resumed pp2 run differs from the uninterrupted one"
echo "ok: pp2 checkpoint at step 4 resumed to step 8 on the same losses"

# 4. Four stages against one, both dp1, eight layers, 4 micro-batches: the middle stages hold only
# decoder layers, the last one only the final norm and the tied lm_head, whose gradient is summed
# with the first stage's over the pp group (the middle stages adding zeros).
config pp1_8l 1 1 1 afab 4 all_reduce 8 6400
run 1 pp1_8l.yaml pp1_8l || { cat pp1_8l.0.log; fail "pp1 8-layer run"; }
config pp4_8l 1 1 4 1f1b 4 all_reduce 8 6400
run 4 pp4_8l.yaml pp4_8l || { cat pp4_8l.*.log; fail "pp4 run"; }
grep -q 'Pipeline stages: stage 0: token embedding, decoder layers 0-2; stage 1: decoder layers 3-5; stage 2: decoder layers 6-7; stage 3: final norm, lm_head, loss' \
  pp4_8l.0.log || { grep -i pipeline pp4_8l.0.log; fail "4-stage split not logged"; }
compare pp4_8l pp1_8l

# 5. Config errors before any rendezvous (exit 2): too few micro-batches for 1f1b, and a split that
# leaves the last stage no weights (the lm_head outweighs two small layers); --check prints the
# split.
# refused NAME WORLD_SIZE MESSAGE: rank 0 of NAME.yaml exits 2 naming MESSAGE.
refused() {
  local rc=0
  RANK=0 LOCAL_RANK=0 WORLD_SIZE=$2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$BIN" --config-file "$1.yaml" \
    >"$1.log" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || { cat "$1.log"; fail "$1: exit $rc"; }
  grep -q "$3" "$1.log" || { cat "$1.log"; fail "$1: no error '$3'"; }
}
config few 1 1 4 1f1b 2 all_reduce 8 6400
refused few 4 'needs at least pp - 1 = 3 micro-batches'
config heavy_head 1 1 2 afab 2 all_reduce 2 128
refused heavy_head 2 'puts the lm_head .* on stage 0'
"$BIN" --config-file pp4_8l.yaml --check >check.out 2>&1 || { cat check.out; fail "--check"; }
grep -q '^# pipeline stages: stage 0: token embedding, decoder layers 0-2; stage 1' check.out ||
  { cat check.out; fail "--check: no pipeline stages"; }
grep -q '^# pp groups: \[0 1 2 3\]' check.out || { cat check.out; fail "--check: pp groups"; }
echo "ok: config errors and --check"
echo "ok: all passed"

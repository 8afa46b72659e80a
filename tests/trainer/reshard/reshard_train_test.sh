#!/usr/bin/env bash
# Resuming a strun-train checkpoint at another parallel layout (see CMakeLists.txt): a checkpoint
# written at dp2 tp2 (ZeRO-1) at step 4 of 8 resumes at dp4 tp1, dp1 tp4, dp1 tp2, dp1 tp2 pp2
# (and ZeRO-1 -> 0 -> 1, pp2 -> dp4) with its weights and optimizer states resharded, the same
# global batch (8 sequences) and data position, and continues on the uninterrupted run's losses.
# Usage: reshard_train_test.sh STRUN_TRAIN
set -euo pipefail
BIN=$1
# The work folder, cleanup, fail, prepare_tiny, tiny_config, PARALLEL_VOCAB, PP_SPLIT_MODEL, run
# (ranks as torchrun starts them).
source "$(dirname "$(realpath "$0")")/../train/train_test_lib.sh"
export OMP_NUM_THREADS=1  # up to four ranks on a 2-core machine

prepare_tiny

# layout NAME DP TP PP ZERO STEPS INTERVAL CKPT_DIR [KEY=VALUE...]: the tiny config with 4 kv heads
# and PARALLEL_VOCAB, so that every tp pads it alike; global batch 8 sequences (micro-batch 2,
# accumulation 4/dp); the KEY=VALUEs are more tiny_config values.
layout() {
  tiny_config "$1.yaml" run="$1" dp="$2" tp="$3" pp="$4" zero_stage="$5" train_steps="$6" \
    checkpoint_interval="$7" checkpoints_path="$8" batch_accumulation_per_replica=$((4 / $2)) \
    num_key_value_heads=4 "$PARALLEL_VOCAB" "${@:9}"
}

# compare NAME FIRST_STEP [BASE] [TOLERANCE]: NAME's losses at steps FIRST_STEP..8 within
# TOLERANCE relative of the uninterrupted run's (BASE, default base); prints the largest relative
# difference. The tolerance, 1e-5, is far below the 1e-3 the issue allows: the runs differ by
# ~1e-7 (fp32 sums in another order), while a resume that lost the optimizer states differs by
# ~5e-4 here (checked below).
compare() {
  /usr/bin/python3 - "$1" "$2" "${4:-1e-5}" <(losses "${3:-base}.0.log") <(losses "$1.0.log") <<'PY'
import sys
name, first, tol = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
base = dict(l.split() for l in open(sys.argv[4]) if l.strip())
run = dict(l.split() for l in open(sys.argv[5]) if l.strip())
want = [str(s) for s in range(first, 9)]
if sorted(run, key=int) != want:
    sys.exit(f"FAIL: {name} logged steps {sorted(run, key=int)}, expected {want}")
worst = max(abs(float(run[s]) - float(base[s])) / abs(float(base[s])) for s in want)
print(f"{name}: steps {first}..8, max relative loss difference from the uninterrupted dp2 tp2 run: {worst:.3g}")
print(f"  losses: {' '.join(run[s] for s in want)}")
if worst > tol:
    sys.exit(f"FAIL: {name} differs from the uninterrupted run by {worst} (tolerance {tol})")
PY
}

# from_step NAME STEP SOURCE_DIR: a checkpoint folder ck_NAME holding SOURCE_DIR/STEP as its latest.
from_step() {
  mkdir -p "ck_$1"
  cp -r "$3/$2" "ck_$1/$2"
  echo "$2" >"ck_$1/latest.txt"
}

# The uninterrupted run: dp2 tp2, ZeRO-1, checkpoints at steps 4 and 8.
layout base 2 2 1 1 8 4 ck_base
run 4 base.yaml base || { cat base.*.log; fail "dp2 tp2 run"; }
echo "  uninterrupted dp2 tp2 losses: $(losses base.0.log | awk '{printf "%s ", $2}')"
grep -q '"pp": 1' ck_base/4/checkpoint_metadata.json || fail "checkpoint_metadata.json: pp"
/usr/bin/python3 - ck_base/4/optimizer/optimizer_pp-0-of-1_dp-1-of-2_tp-1-of-2_exp-0-of-1.safetensors <<'PY' ||
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    layout = json.loads(json.loads(f.read(n))["__metadata__"]["flat_layout"])
assert (layout["dp_rank"], layout["dp"], layout["tp_rank"], layout["tp"], layout["zero"]) == (1, 2, 1, 2, True), layout
assert layout["end"] - layout["begin"] == layout["numel"] // 2 and layout["segments"], layout
PY
  fail "the optimizer file does not describe its flat layout"
echo "ok: optimizer files describe their flat layout"

# Step 4 of it resumed at other layouts (4, 4 and 2 ranks).
for l in "dp4_tp1 4 1 4" "dp1_tp4 1 4 4" "dp1_tp2 1 2 2"; do
  set -- $l
  from_step "$1" 4 ck_base
  layout "$1" "$2" "$3" 1 1 8 4 "ck_$1"
  run "$4" "$1.yaml" "$1" || { cat "$1".*.log; fail "$1 resume"; }
  grep -q "Loading weights from ck_$1/4" "$1.0.log" || { cat "$1.0.log"; fail "$1 did not resume"; }
  compare "$1" 5
done

# The check can fail: the same resume without the optimizer states drifts beyond the tolerance.
from_step no_optimizer 4 ck_base
layout no_optimizer 4 1 1 1 8 4 ck_no_optimizer load_optimizer=false
run 4 no_optimizer.yaml no_optimizer || { cat no_optimizer.*.log; fail "resume without optimizer"; }
if compare no_optimizer 5 >no_optimizer.compare 2>&1; then
  cat no_optimizer.compare; fail "a resume without the optimizer states passed the comparison"
fi
echo "ok: a resume without the optimizer states differs: $(head -n 1 no_optimizer.compare)"

# ZeRO-1 -> 0 (dp4 tp1, checkpoints at 6 and 8), then its step 6 -> ZeRO-1 at dp2 tp2 again.
from_step zero0 4 ck_base
layout zero0 4 1 1 0 8 2 ck_zero0
run 4 zero0.yaml zero0 || { cat zero0.*.log; fail "zero 1 -> 0 resume"; }
compare zero0 5
[ -f ck_zero0/6/optimizer/optimizer_pp-0-of-1_tp-0-of-1_exp-0-of-1.safetensors ] ||
  { find ck_zero0/6 | sort; fail "zero 0 checkpoint: no unsharded optimizer file"; }
from_step zero1 6 ck_zero0
layout zero1 2 2 1 1 8 4 ck_zero1
run 4 zero1.yaml zero1 || { cat zero1.*.log; fail "zero 0 -> 1 resume"; }
compare zero1 7

# Pipeline parallelism: PP_SPLIT_MODEL, whose decoder layers outweigh the lm_head in nanotron's
# compute costs, so that pp 2 splits them (stage 0: embedding, layers 0-2; stage 1: layer 3, final
# norm, tied lm_head). dp2 tp2 -> dp1 tp2 pp2 (checkpoints at 6 and 8, written per stage) -> its
# step 6 at dp4 tp1.
wide() { layout "$@" "${PP_SPLIT_MODEL[@]}"; }
wide wbase 2 2 1 1 8 4 ck_wbase
run 4 wbase.yaml wbase || { cat wbase.*.log; fail "wide dp2 tp2 run"; }
from_step wpp 4 ck_wbase
wide wpp 1 2 2 1 8 2 ck_wpp
run 4 wpp.yaml wpp || { cat wpp.*.log; fail "dp2 tp2 -> dp1 tp2 pp2 resume"; }
compare wpp 5 wbase
for f in model/model/decoder/3/pp_block/attn/qkv_proj/model_weight_pp-rank-1-of-2_tp-rank-1-of-2.safetensors \
         model/model/token_position_embeddings/pp_block/token_embedding/model_weight_pp-rank-0-of-2_tp-rank-1-of-2.safetensors \
         optimizer/optimizer_pp-1-of-2_dp-0-of-1_tp-1-of-2_exp-0-of-1.safetensors \
         random/tp-1-of-2_dp-0-of-1_pp-1-of-2.safetensors; do
  [ -f "ck_wpp/6/$f" ] || { find ck_wpp/6 | sort; fail "ck_wpp/6/$f missing"; }
done
# The tied embedding is written once, by the first stage.
[ "$(find ck_wpp/6/model/model/token_position_embeddings -name '*.safetensors' | wc -l)" -eq 2 ] ||
  { find ck_wpp/6/model | sort; fail "the tied embedding is not written once per TP rank"; }
grep -q '"pp": 2' ck_wpp/6/checkpoint_metadata.json || fail "checkpoint_metadata.json: pp 2"
from_step wback 6 ck_wpp
wide wback 4 1 1 1 8 4 ck_wback
run 4 wback.yaml wback || { cat wback.*.log; fail "dp1 tp2 pp2 -> dp4 tp1 resume"; }
compare wback 7 wbase
echo "ok: resharded across pipeline stages both ways"

# A checkpoint written before the optimizer files described their layout (their "flat_layout"
# removed, and its checksums/ with it, as an older strun-train wrote them): refused at another
# layout naming its own, resumed at its own.
mkdir -p ck_old
cp -r ck_base/4 ck_old/4
echo 4 >ck_old/latest.txt
rm -r ck_old/4/checksums
/usr/bin/python3 - ck_old/4/optimizer/*.safetensors <<'PY'
import json, struct, sys
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    del header["__metadata__"]["flat_layout"]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
PY
layout old_other 4 1 1 1 8 4 ck_old
if run 4 old_other.yaml old_other; then fail "an old checkpoint's optimizer was resharded"; fi
grep -q 'written by an older strun-train.*resume it at its own layout (dp=2 tp=2 pp=1 zero_stage=1)' old_other.0.log ||
  { cat old_other.0.log; fail "no clear error for an old checkpoint at another layout"; }
layout old_same 2 2 1 1 8 4 ck_old
run 4 old_same.yaml old_same || { cat old_same.*.log; fail "old checkpoint at its own layout"; }
compare old_same 5
echo "ok: a checkpoint without layout metadata resumes at its own layout only, with a clear error"

# A model that does not match the checkpoint's (hidden size 64) is refused, naming the parameter.
from_step bad 4 ck_base
layout bad 4 1 1 1 8 4 ck_bad hidden_size=64
if run 4 bad.yaml bad; then fail "a checkpoint of another model shape was accepted"; fi
grep -q 'checkpoint ck_bad/4 holds another model: its model_config.json has hidden_size 32 but this run.s model has 64' bad.0.log ||
  { cat bad.0.log; fail "no clear error for another model shape"; }
echo "ok: a checkpoint of another model shape is refused, naming the field"
echo "ok: all passed"

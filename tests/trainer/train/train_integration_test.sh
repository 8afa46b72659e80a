#!/usr/bin/env bash
# Integration test of strun-train on CPU with real processes (2 DP ranks over gloo):
#   1. DP=2 (ZeRO-0 and ZeRO-1) gives the losses of DP=1 with the same global batch (1e-5);
#   2. kill -9 during a checkpoint write leaves the previous checkpoint and latest.txt intact;
#   3. resuming from it finishes bitwise identical to an uninterrupted run;
#   4. re-running a finished run exits 0 saying so;
#   5. export-hf writes a Hugging Face checkpoint;
#   6. tp > 1 and a dp that does not match WORLD_SIZE are clear errors.
set -euo pipefail
BIN=${1:?usage: train_integration_test.sh path/to/strun-train}
source "$(dirname "$0")/train_test_lib.sh"
prepare_tiny

# config NAME DP ACCUM STEPS INTERVAL ZERO CKPT_DIR [TP]
config() {
  tiny_config "$1.yaml" run="$1" dp="$2" batch_accumulation_per_replica="$3" train_steps="$4" \
    checkpoint_interval="$5" zero_stage="$6" checkpoints_path="$7" tp="${8:-1}"
}

# ---- 1. DP=2 == DP=1 --------------------------------------------------------------------------
config dp1 1 2 4 100 0 ck_dp1
config dp2 2 1 4 100 0 ck_dp2
config dp2z 2 1 4 100 1 ck_dp2z
"$BIN" --config-file dp1.yaml --check >check.out 2>&1 || { cat check.out; fail "--check failed"; }
grep -q '^# parameters: 1626816$' check.out || { cat check.out; fail "--check parameter count"; }
run 1 dp1.yaml dp1 || { cat dp1.0.log; fail "dp1 run failed"; }
run 2 dp2.yaml dp2 || { cat dp2.0.log dp2.1.log; fail "dp2 run failed"; }
run 2 dp2z.yaml dp2z || { cat dp2z.0.log dp2z.1.log; fail "dp2 zero-1 run failed"; }
grep -q 'iteration: 4 / 4 | consumed_tokens: 512 | elapsed_time_per_iteration_ms: ' dp1.0.log ||
  { cat dp1.0.log; fail "no nanotron iteration line"; }
grep -q '| global_batch_size: 4 | lm_loss: ' dp2.0.log || fail "no global_batch_size/lm_loss in the iteration line"
[ "$(losses dp1.0.log | wc -l)" = 4 ] || { cat dp1.0.log; fail "expected 4 loss lines"; }
for other in dp2 dp2z; do
  paste <(losses dp1.0.log) <(losses $other.0.log) | awk -v o=$other '
    { d = $2 - $4; if (d < 0) d = -d; if ($1 != $3 || d > 1e-5) { print "step " $1 ": dp1 " $2 " vs " o " " $4; bad = 1 } }
    END { exit bad }' || fail "$other losses differ from dp1"
done
losses dp1.0.log | awk '{ if (!($2 > 5 && $2 < 12)) { print "implausible loss " $2; bad = 1 } } END { exit bad }' ||
  fail "losses are not those of a fresh model on a 50257-token vocabulary (ln 50257 = 10.8)"
[ -f ck_dp1/4/model/model/decoder/0/pp_block/attn/qkv_proj/model_weight_pp-rank-0-of-1_tp-rank-0-of-1.safetensors ] ||
  fail "final checkpoint lacks nanotron's qkv_proj file"
[ -f ck_dp1/4/model/model/decoder/0/pp_block/input_layernorm/model_weight.safetensors ] || fail "no layernorm file"
[ "$(cat ck_dp1/latest.txt)" = 4 ] || fail "latest.txt is not 4"
[ -f ck_dp2z/4/optimizer/optimizer_pp-0-of-1_dp-1-of-2_tp-0-of-1_exp-0-of-1.safetensors ] ||
  fail "ZeRO-1 checkpoint lacks rank 1's optimizer shard"
echo "ok 1 - DP=2 (ZeRO-0 and ZeRO-1) matches DP=1"

# ---- 2. kill -9 during a checkpoint write ----------------------------------------------------
config full 2 1 6 3 1 ck_full
config part 2 1 6 3 1 ck_part
run 2 full.yaml full || { cat full.0.log full.1.log; fail "uninterrupted run failed"; }
if STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT=6 run 2 part.yaml part; then fail "the killed run exited 0"; fi
grep -q 'fault injection: SIGKILL during checkpoint 6' part.0.log || { cat part.0.log; fail "fault not injected"; }
[ "$(cat ck_part/latest.txt)" = 3 ] || fail "latest.txt moved: $(cat ck_part/latest.txt)"
[ -f ck_part/3/checkpoint_metadata.json ] || fail "checkpoint 3 damaged"
[ ! -e ck_part/6 ] || fail "a half-written checkpoint 6 was renamed into place"
ls -d ck_part/6.tmp-* >/dev/null 2>&1 || fail "expected the killed write's temporary directory"
echo "ok 2 - kill -9 during checkpoint 6 left checkpoint 3 and latest.txt intact"

# ---- 3. bitwise resume ---------------------------------------------------------------------------
run 2 part.yaml resumed || { cat resumed.0.log resumed.1.log; fail "resume failed"; }
grep -q 'Loading weights from ck_part/3' resumed.0.log || { cat resumed.0.log; fail "did not resume from step 3"; }
[ "$(cat ck_part/latest.txt)" = 6 ] || fail "latest.txt not 6 after resume"
! ls -d ck_part/6.tmp-* >/dev/null 2>&1 || fail "stale temporary directory not removed"
diff <(losses full.0.log | tail -3) <(losses resumed.0.log) || fail "resumed losses differ from the uninterrupted run"
(cd ck_full/6 && find . -type f ! -name config.yaml | sort) >files_full
(cd ck_part/6 && find . -type f ! -name config.yaml | sort) >files_part
diff files_full files_part || fail "checkpoint file lists differ"
while read -r f; do cmp -s "ck_full/6/$f" "ck_part/6/$f" || fail "$f differs after resume"; done <files_full
echo "ok 3 - resumed run is bitwise identical ($(wc -l <files_full) files)"

# ---- 4. re-running a finished run ----------------------------------------------------------------
run 2 full.yaml again || { cat again.0.log; fail "re-running a finished run did not exit 0"; }
grep -q 'Training already finished' again.0.log || fail "no 'already finished' message"
echo "ok 4 - re-running a finished run exits 0"

# ---- 5. export-hf ------------------------------------------------------------------------------
"$BIN" export-hf --checkpoint ck_full --output hf >export.log 2>&1 || { cat export.log; fail "export-hf failed"; }
/usr/bin/python3 - <<'PY' || fail "export-hf output is not a Hugging Face Llama"
import json, struct
cfg = json.load(open("hf/config.json"))
assert cfg["model_type"] == "llama" and cfg["num_hidden_layers"] == 2, cfg
with open("hf/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
for k in ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
          "model.layers.1.mlp.down_proj.weight", "model.norm.weight"]:
    assert k in h, k
assert h["model.layers.0.self_attn.k_proj.weight"]["shape"] == [16, 32], h["model.layers.0.self_attn.k_proj.weight"]
PY
echo "ok 5 - export-hf"

# ---- 6. clear errors ---------------------------------------------------------------------------
config tp2 1 1 2 100 0 ck_tp2 2
if run 1 tp2.yaml tp2; then fail "tp=2 accepted"; fi
grep -q 'parallelism.tp' tp2.0.log || { cat tp2.0.log; fail "tp error does not name parallelism.tp"; }
if run 1 dp2.yaml dpbad; then fail "dp=2 with WORLD_SIZE=1 accepted"; fi
grep -q 'parallelism.dp is 2 but this job has WORLD_SIZE=1' dpbad.0.log || { cat dpbad.0.log; fail "dp error unclear"; }
echo "ok 6 - clear parallelism errors"

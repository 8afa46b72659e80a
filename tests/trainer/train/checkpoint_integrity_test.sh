#!/usr/bin/env bash
# Corrupted checkpoints must not spread (2 DP ranks, ZeRO-1, on CPU):
#   1. checkpoints carry checksums/rank-R-of-D.json listing every file but config.yaml, identical
#      between two runs of the same config;
#   2. NaN in a weight file or 1e30 in an optimizer file: resuming fails naming the file and the
#      earlier checkpoint; nothing is trained, latest.txt stays;
#   3. a checkpoint without checksums/ (older strun-train) loads with a warning; NaN in its
#      optimizer state is refused naming the file;
#   4. 1e30 in one of its weights makes the loss non-finite: training stops at that step with an
#      error naming step and rank, exit != 0, no checkpoint written, latest.txt stays;
#   5. a run that diverges by itself (learning rate 1e30) stops the same way;
#   6. --check refuses learning_rate .nan / -.inf and vocab_size 2^63-1 naming the key.
BIN=${1:?usage: checkpoint_integrity_test.sh path/to/strun-train}
source "$(dirname "$0")/train_test_lib.sh"
prepare_tiny

WEIGHT=model/model/decoder/0/pp_block/mlp/down_proj/model_weight_pp-rank-0-of-1_tp-rank-0-of-1.safetensors
# 1e30 here overflows the attention scores (q.k ~ 1e56): the loss is NaN. (In down_proj it would
# not: the next RMSNorm scales the huge activations to 0 and the loss stays finite.)
NORM=model/model/decoder/0/pp_block/input_layernorm/model_weight.safetensors
OPT1=optimizer/optimizer_pp-0-of-1_dp-1-of-2_tp-0-of-1_exp-0-of-1.safetensors

# ---- 1. checksums written, deterministic -------------------------------------------------------
config base 2 4 2 ck
config again 2 4 2 ck_again
run 2 base.yaml base || { cat base.0.log base.1.log; fail "base run failed"; }
run 2 again.yaml again || { cat again.0.log again.1.log; fail "second base run failed"; }
for s in 2 4; do
  for m in rank-0-of-2.json rank-1-of-2.json; do
    [ -f "ck/$s/checksums/$m" ] || fail "checkpoint $s has no checksums/$m"
    cmp -s "ck/$s/checksums/$m" "ck_again/$s/checksums/$m" ||
      fail "checksums/$m of checkpoint $s differs between two runs of one config"
  done
done
/usr/bin/python3 - ck/4 <<'PY' || fail "checksums/ do not list exactly the checkpoint's files"
import json, os, sys, glob
step = sys.argv[1]
listed = {}
for m in glob.glob(os.path.join(step, "checksums", "*.json")):
    listed.update(json.load(open(m))["files"])
files = {os.path.relpath(os.path.join(d, f), step) for d, _, fs in os.walk(step) for f in fs}
files = {f for f in files if not f.startswith("checksums/") and f != "config.yaml"}
assert set(listed) == files, (sorted(set(listed) ^ files))
assert all(len(v["crc32c"]) == 8 for v in listed.values())
PY
echo "ok 1 - checksums listed for every file, identical between runs"

# resume_from NAME SOURCE_CKPT: copies a checkpoints folder to ck_NAME and writes NAME.yaml
# resuming it up to step 6.
resume_from() {
  rm -rf "ck_$1" && cp -a "$2" "ck_$1"
  config "$1" 2 6 2 "ck_$1"
}
# expect_refused NAME PATTERN...: the resumed run failed, the log has every pattern, and the
# checkpoints folder did not move.
expect_refused() {
  local name=$1
  shift
  if run 2 "$name.yaml" "$name"; then cat "$name.0.log"; fail "$name: the run exited 0"; fi
  for p in "$@"; do
    grep -qF -- "$p" "$name.0.log" || { cat "$name.0.log"; fail "$name: no '$p' in rank 0's log"; }
  done
  [ "$(cat "ck_$name/latest.txt")" = 4 ] || fail "$name: latest.txt moved to $(cat "ck_$name/latest.txt")"
  [ ! -e "ck_$name/5" ] && [ ! -e "ck_$name/6" ] || fail "$name: a checkpoint after step 4 was written"
  ! ls -d "ck_$name"/*.tmp-* >/dev/null 2>&1 || fail "$name: a temporary checkpoint folder was left"
}

# ---- 2. damaged files are refused by their checksum --------------------------------------------
resume_from nanw ck
poke "ck_nanw/4/$WEIGHT" 4 nan
expect_refused nanw "checkpoint file ck_nanw/4/$WEIGHT is corrupt" \
  "resume from an earlier checkpoint: set checkpoints.resume_checkpoint_path to ck_nanw/2"
resume_from bigopt ck
poke "ck_bigopt/4/$OPT1" 4 1e30
if run 2 bigopt.yaml bigopt; then fail "bigopt: the run exited 0"; fi
grep -qF "checkpoint file ck_bigopt/4/$OPT1 is corrupt" bigopt.1.log ||
  { cat bigopt.1.log; fail "bigopt: rank 1 does not name its damaged optimizer file"; }
[ "$(cat ck_bigopt/latest.txt)" = 4 ] || fail "bigopt: latest.txt moved"
echo "ok 2 - NaN in a weight and 1e30 in an optimizer shard are refused naming the file"

# ---- 3. checkpoints without checksums ------------------------------------------------------------
cp -a ck ck_legacy
rm -rf ck_legacy/2/checksums ck_legacy/4/checksums
resume_from legacyok ck_legacy
run 2 legacyok.yaml legacyok || { cat legacyok.0.log; fail "a checkpoint without checksums did not load"; }
grep -qF "has no checksums/ (written by an older strun-train)" legacyok.0.log ||
  { cat legacyok.0.log; fail "no warning about the missing checksums"; }
[ -f ck_legacyok/6/checksums/rank-0-of-2.json ] || fail "the resumed run's checkpoint has no checksums"
resume_from legacynan ck_legacy
poke "ck_legacynan/4/$OPT1" 4 nan
if run 2 legacynan.yaml legacynan; then fail "legacynan: the run exited 0"; fi
grep -qF "checkpoint file ck_legacynan/4/$OPT1: tensor" legacynan.1.log &&
  grep -qF "holds NaN or infinite values" legacynan.1.log ||
  { cat legacynan.1.log; fail "legacynan: NaN in the optimizer state not refused by name"; }
[ "$(cat ck_legacynan/latest.txt)" = 4 ] || fail "legacynan: latest.txt moved"
echo "ok 3 - a checkpoint without checksums loads with a warning; NaN in it is refused"

# ---- 4. 1e30 in a weight: the loss turns non-finite and training stops -------------------------
resume_from huge ck_legacy
poke "ck_huge/4/$NORM" 4 1e30
expect_refused huge "rank 0: step 5: lm_loss is nan" "training stops without writing a checkpoint" \
  "(the last one is ck_huge/4)"
grep -qF "rank 1: step 5: lm_loss is " huge.1.log || { cat huge.1.log; fail "huge: rank 1 did not stop at step 5"; }
echo "ok 4 - 1e30 in a weight stops training at step 5 (exit != 0, latest.txt stays 4)"

# ---- 5. a run that diverges by itself ------------------------------------------------------------
config diverge 2 4 1 ck_diverge 1e30
if run 2 diverge.yaml diverge; then cat diverge.0.log; fail "diverge: the run exited 0"; fi
grep -q "rank 0: step [0-9]*: lm_loss is .*training stops without writing a checkpoint" diverge.0.log || { cat diverge.0.log; fail "diverge: no non-finite stop"; }
bad=$(grep -o "rank 0: step [0-9]*" diverge.0.log | head -1 | awk '{print $4}')
[ "$(cat ck_diverge/latest.txt)" = $((bad - 1)) ] || fail "diverge: latest.txt is not step $((bad - 1))"
[ ! -e "ck_diverge/$bad" ] || fail "diverge: checkpoint $bad of the non-finite step was written"
echo "ok 5 - a diverging run stops at step $bad; latest.txt names step $((bad - 1))"

# ---- 6. --check ----------------------------------------------------------------------------------
check_refuses() {  # SED_EXPRESSION EXPECTED
  sed "$1" base.yaml >bad.yaml
  local rc=0
  "$BIN" --config-file bad.yaml --check >check.out 2>&1 || rc=$?
  [ "$rc" = 2 ] || { cat check.out; fail "--check with '$1' exited $rc, not 2"; }
  grep -qF -- "$2" check.out || { cat check.out; fail "--check with '$1' does not say '$2'"; }
}
check_refuses 's/learning_rate: 0.003/learning_rate: .nan/' "optimizer.learning_rate_scheduler.learning_rate is nan"
check_refuses 's/learning_rate: 0.003/learning_rate: -.inf/' "optimizer.learning_rate_scheduler.learning_rate is -inf"
check_refuses 's/vocab_size: 50257/vocab_size: 9223372036854775807/' "model.model_config.vocab_size"
check_refuses 's/micro_batch_size: 2/micro_batch_size: 4611686018427387904/' "tokens.micro_batch_size x sequence_length"
echo "ok 6 - --check refuses non-finite learning rates and overflowing sizes"

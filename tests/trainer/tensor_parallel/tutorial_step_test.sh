#!/usr/bin/env bash
# The tutorial's config file, unchanged but for tokens.micro_batch_size (64 -> 1) and
# tokens.train_steps (1500 -> 1), trained for one step on 8 processes as its grid asks
# (dp 2 x tp 4, reduce_scatter, async, bfloat16, ZeRO-1) on CPU with gloo. Its loss and gradient
# norm must match one process training the same global batch (dp 1, tp 1, accumulation 2) with the
# same padded vocabulary (50260), within bf16 noise; the final checkpoint holds every tp-R-of-4
# file. The dataset name (wikitext, wikitext-103-v1) is prepared from Debian's fortunes.
# Usage: tutorial_step_test.sh STRUN_TRAIN TUTORIAL_CONFIG
set -euo pipefail
BIN=$1
TUTORIAL=$(realpath "$2")
source "$(dirname "$(realpath "$0")")/../train/train_test_lib.sh"
export OMP_NUM_THREADS=1  # eight ranks on a 2-core machine

corpus=/usr/share/games/fortunes
[ -d "$corpus" ] || fail "corpus $corpus missing (etc/setup/install-deps.sh installs Debian's fortunes)"
"$BIN" prepare --input "$corpus" --output wikitext --config wikitext-103-v1 --quiet --num-workers 2 \
  >prepare.log 2>&1 || { cat prepare.log; fail "prepare"; }

# The 8-rank run: only the two keys change (the sed must hit each exactly once).
sed -e 's/^  micro_batch_size: 64$/  micro_batch_size: 1/' \
  -e 's/^  train_steps: 1500$/  train_steps: 1/' "$TUTORIAL" >tutorial.yaml
[ "$(diff "$TUTORIAL" tutorial.yaml | grep -c '^>')" = 2 ] || fail "tutorial.yaml: expected 2 changed lines"
run 8 tutorial.yaml tut || { tail -n 5 tut.*.log; fail "8-rank tutorial step"; }

# The reference: one process, the same global batch and the same padded vocabulary.
sed -e 's/^  dp: 2$/  dp: 1/' -e 's/^  tp: 4$/  tp: 1/' \
  -e 's/^  batch_accumulation_per_replica: 1$/  batch_accumulation_per_replica: 2/' \
  -e 's/^  make_vocab_size_divisible_by: 1$/  make_vocab_size_divisible_by: 4/' \
  -e 's/^  checkpoints_path: checkpoints$/  checkpoints_path: ref_checkpoints/' \
  -e 's/^  resume_checkpoint_path: checkpoints$/  resume_checkpoint_path: ref_checkpoints/' \
  tutorial.yaml >reference.yaml
[ "$(diff tutorial.yaml reference.yaml | grep -c '^>')" = 6 ] || fail "reference.yaml: expected 6 changed lines"
OMP_NUM_THREADS=2 run 1 reference.yaml ref || { tail -n 5 ref.0.log; fail "reference run"; }

# iteration line: "... lm_loss: 11 | ... | grad_norm: 26.7 | ..." (nanotron's 3 significant digits)
value() { grep 'iteration: 1 / 1' "$1" | grep -o "$2: [^ |]*" | awk '{print $2}'; }
/usr/bin/python3 - "$(value tut.0.log lm_loss)" "$(value ref.0.log lm_loss)" \
  "$(value tut.0.log grad_norm)" "$(value ref.0.log grad_norm)" <<'PY'
import sys
loss, ref_loss, gn, ref_gn = map(float, sys.argv[1:])
dl, dg = abs(loss - ref_loss) / ref_loss, abs(gn - ref_gn) / ref_gn
print(f"dp2 tp4 step 1: lm_loss {loss} grad_norm {gn}; dp1 tp1 acc 2: lm_loss {ref_loss} grad_norm {ref_gn}; "
      f"relative differences {dl:.3g}, {dg:.3g}")
if dl > 0.01 or dg > 0.03:
    sys.exit("FAIL: the 8-rank step differs from the one-process step beyond bf16 noise (1%, 3%)")
PY
for r in 0 1 2 3; do
  f=checkpoints/1/model/model/decoder/11/pp_block/mlp/gate_up_proj/model_weight_pp-rank-0-of-1_tp-rank-$r-of-4.safetensors
  [ -f "$f" ] || { find checkpoints | sort | head -40; fail "$f missing"; }
done
for r in 0 1; do
  [ -f "checkpoints/1/optimizer/optimizer_pp-0-of-1_dp-$r-of-2_tp-3-of-4_exp-0-of-1.safetensors" ] ||
    { find checkpoints/1/optimizer; fail "ZeRO-1 optimizer shard of dp rank $r missing"; }
done
echo "ok: the tutorial's config trained a step on 8 ranks (dp 2 x tp 4) like one process does"

# Shared by recovery_test.sh and bench/recovery: the tiny training job, its uninterrupted baseline,
# submitting it under strund, finding its processes, checking the result. Sourced; expects STRUND,
# STRUN, TRAIN, CLUSTER, CACHE, W and the cluster's environment (SLURM_CONF, STRUN_CLUSTER_*).
TRAIN_STEPS=${TRAIN_STEPS:-60}
CKPT_INTERVAL=${CKPT_INTERVAL:-10}
FAULT_STEP=${FAULT_STEP:-23}
CKPT_FAULT_STEP=${CKPT_FAULT_STEP:-20}
STEP_SLEEP_MS=${STEP_SLEEP_MS:-0}
TINY_CONFIG=$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../trainer/train/tiny_config.py

fail() {
  echo "FAIL: $*" >&2
  [ -f "${W:-/nonexistent}/job.out" ] && { echo "--- job.out (last 60 lines)" >&2; tail -n 60 "$W/job.out" >&2; }
  [ -f "${W:-/nonexistent}/events.jsonl" ] && { echo "--- events.jsonl" >&2; cut -c1-400 "$W/events.jsonl" >&2; }
  [ -n "${SLURM_CONF:-}" ] && { echo "--- squeue/sinfo" >&2; squeue >&2 || true; sinfo -N >&2 || true; }
  exit 1
}
now() { date +%s.%N; }

# write_config FILE CHECKPOINTS_PATH: the training tests' tiny config (tests/trainer/train/
# tiny_config.yaml.in) on the dataset "recovery", 2 DP ranks, saving the final state; CONFIG_EXTRA
# adds tiny_config.py KEY=VALUEs (e.g. zero_stage=0).
write_config() {
  # shellcheck disable=SC2086
  /usr/bin/python3 "$TINY_CONFIG" "$1" project=recovery run=recovery seed=11 dataset=recovery \
    lr_warmup_steps=5 dp=2 train_steps="$TRAIN_STEPS" checkpoint_interval="$CKPT_INTERVAL" \
    checkpoints_path="$2" save_final_state=true ${CONFIG_EXTRA:-}
}

prepare_data() {  # STORE: the licence texts of Debian's base-files (~50k GPT-2 tokens, ~370 steps)
  local d=/usr/share/common-licenses f
  mkdir -p "$1"
  : >"$1.corpus.txt"
  for f in GPL-3 GPL-2 LGPL-2.1 LGPL-3 Apache-2.0 MPL-2.0 GFDL-1.3 Artistic; do
    [ -f "$d/$f" ] || fail "corpus file $d/$f missing (Debian's base-files ships it)"
    cat "$d/$f" >>"$1.corpus.txt"
  done
  STRUN_DATA_HOME=$1 "$TRAIN" prepare --input "$1.corpus.txt" --output recovery --quiet --num-workers 1 \
    >"$1.prepare.log" 2>&1 || { cat "$1.prepare.log"; fail "prepare failed"; }
}

# "step lm_loss" for the last occurrence of every step in a log (a restarted run repeats steps).
final_losses() { grep -o 'step [0-9]* lm_loss [^ ]*' "$1" | awk '{ v[$2] = $4 } END { for (s in v) print s, v[s] }' | sort -n; }

# The uninterrupted run, once per binary and config (cached under CACHE, shared between scenarios).
baseline() {
  mkdir -p "$CACHE"
  local key
  key=$( (stat -c '%s %Y' "$TRAIN"; write_config /dev/stdout ck; echo "$TRAIN_STEPS $CKPT_INTERVAL") | sha256sum | cut -c1-16)
  BASE=$CACHE/baseline-$key
  exec 8>"$CACHE/lock"
  flock 8
  if [ ! -f "$BASE/done" ]; then
    rm -rf "$BASE"
    mkdir -p "$BASE"
    prepare_data "$BASE/store"
    write_config "$BASE/run.yaml" "$BASE/ck"
    (cd "$BASE" && STRUN_DATA_HOME=$BASE/store "$STRUN" --standalone --nproc-per-node=2 --no-python "$TRAIN" \
      --config-file "$BASE/run.yaml" >"$BASE/run.log" 2>&1) || { tail -n 40 "$BASE/run.log"; fail "baseline run failed"; }
    final_losses "$BASE/run.log" >"$BASE/losses"
    [ "$(wc -l <"$BASE/losses")" = "$TRAIN_STEPS" ] || { cat "$BASE/run.log"; fail "baseline: expected $TRAIN_STEPS loss lines"; }
    touch "$BASE/done"
  fi
  exec 8>&-
}

# submit NODES "VAR=value ..." : sbatch the job under strund (its node options STRUND_NODES,
# default --nodes 2); sets JOB.
submit() {
  local nodes=$1 extra=$2
  prepare_data "$W/store"
  write_config "$W/run.yaml" "$W/ck"
  cat >"$W/job.sbatch" <<SH
#!/bin/bash
export STRUN_DATA_HOME=$W/store $extra
exec "$STRUND" ${STRUND_NODES:---nodes 2} --max-restarts 3 --event-log "$W/events.jsonl" -- \\
  srun --ntasks-per-node=1 "$STRUN" --nproc-per-node=1 --hang-timeout-floor=3 --no-python \\
  "$TRAIN" --config-file "$W/run.yaml"
SH
  JOB=$(sbatch --parsable -N "$nodes" --requeue --no-kill --open-mode=append -o "$W/job.out" -J recovery \
    "$W/job.sbatch") || fail "sbatch failed"
  echo "submitted job $JOB on $nodes nodes"
}

job_state() { scontrol show job "$JOB" -o 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }

wait_step() {  # STEP: until rank 0 logged it (the job must still run)
  local deadline=$((SECONDS + 180))
  until grep -q "step $1 lm_loss" "$W/job.out" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "step $1 not reached in 180 s"
    case $(job_state) in COMPLETED | FAILED | CANCELLED | TIMEOUT) fail "job ended before step $1" ;; esac
    sleep 0.1
  done
}

# Processes of this job (SLURM_CONF and SLURM_JOB_ID in their environment).
job_pids() {  # COMM
  local p
  for p in $(pgrep -x "$1"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$JOB" || continue
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF" || continue
    echo "$p"
  done
}
env_of() { tr '\0' '\n' <"/proc/$1/environ" | sed -n "s/^$2=//p"; }
worker_pid() {  # RANK
  local p
  for p in $(job_pids strun-train); do [ "$(env_of "$p" RANK)" = "$1" ] && { echo "$p"; return; }; done
  fail "no strun-train process with RANK=$1"
}
worker_node() { env_of "$(worker_pid "$1")" SLURMD_NODENAME; }
agent_pid() {  # NODE RANK OF THE STEP: the strun whose parent is slurmstepd (not its guardian)
  local p
  for p in $(job_pids strun); do
    [ "$(env_of "$p" SLURM_NODEID)" = "$1" ] || continue
    [ "$(cat "/proc/$(awk '{print $4}' "/proc/$p/stat")/comm" 2>/dev/null)" = slurmstepd ] && { echo "$p"; return; }
  done
  fail "no strun agent with SLURM_NODEID=$1"
}

record_fault() { T_FAULT=$(now); echo "fault at $T_FAULT: $*"; }

wait_job() {  # TIMEOUT_S: until the job is finished for good (not requeued)
  local deadline=$((SECONDS + $1)) s
  while :; do
    s=$(job_state)
    # Slurm holds a requeued job for about two minutes (Reason=BeginTime); the test does not wait.
    if [ "$s" = PENDING ] && scontrol show job "$JOB" -o | grep -q 'Reason=BeginTime'; then
      scontrol update JobId="$JOB" StartTime=now >/dev/null 2>&1 && echo "requeued job $JOB: begin time moved to now"
    fi
    case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
    ((SECONDS < deadline)) || fail "job $JOB not finished after $1 s (state $s)"
    sleep 0.5
  done
  [ "$s" = COMPLETED ] || fail "job $JOB ended $s ($(scontrol show job "$JOB" -o | grep -o 'ExitCode=[^ ]*'))"
}

check_same_as_baseline() {
  [ "$(cat "$W/ck/latest.txt" 2>/dev/null)" = "$TRAIN_STEPS" ] || fail "latest.txt is not $TRAIN_STEPS"
  final_losses "$W/job.out" >"$W/losses"
  diff "$BASE/losses" "$W/losses" >/dev/null ||
    { diff "$BASE/losses" "$W/losses" | head -20; fail "losses differ from the uninterrupted run"; }
  local a=$BASE/ck/$TRAIN_STEPS b=$W/ck/$TRAIN_STEPS f n=0
  (cd "$a" && find . -type f ! -name config.yaml | sort) >"$W/files.base"
  (cd "$b" && find . -type f ! -name config.yaml | sort) >"$W/files.run"
  diff "$W/files.base" "$W/files.run" || fail "final checkpoint file lists differ"
  while read -r f; do
    cmp -s "$a/$f" "$b/$f" || fail "final checkpoint file $f differs from the uninterrupted run's"
    n=$((n + 1))
  done <"$W/files.base"
  echo "final loss $(tail -n 1 "$W/losses" | cut -d' ' -f2) and all $n files of checkpoint $TRAIN_STEPS equal the uninterrupted run's"
}

# A run at another layout (dp, accumulation) sums gradients in another order: its losses equal
# the uninterrupted run's within fp32 tolerance, not bitwise. Prints the largest difference.
check_close_to_baseline() {  # RELATIVE_TOLERANCE
  [ "$(cat "$W/ck/latest.txt" 2>/dev/null)" = "$TRAIN_STEPS" ] || fail "latest.txt is not $TRAIN_STEPS"
  final_losses "$W/job.out" >"$W/losses"
  /usr/bin/python3 - "$BASE/losses" "$W/losses" "$1" <<'PY' || fail "losses differ from the uninterrupted run beyond the tolerance"
import sys
base = dict(l.split() for l in open(sys.argv[1]))
run = dict(l.split() for l in open(sys.argv[2]))
tol = float(sys.argv[3])
if sorted(base, key=int) != sorted(run, key=int):
    sys.exit("steps differ: %d in the uninterrupted run, %d here" % (len(base), len(run)))
worst = max(base, key=lambda s: abs(float(run[s]) - float(base[s])))
diff = abs(float(run[worst]) - float(base[worst]))
last = max(base, key=int)
print("largest loss difference to the uninterrupted run: %.3g at step %s (%s vs %s); final loss %s vs %s (difference %.3g), tolerance %g relative"
      % (diff, worst, run[worst], base[worst], run[last], base[last], abs(float(run[last]) - float(base[last])), tol))
bad = [s for s in base if abs(float(run[s]) - float(base[s])) > tol * max(1.0, abs(float(base[s])))]
if bad:
    sys.exit("%d steps beyond the tolerance, first %s" % (len(bad), min(bad, key=int)))
PY
}

expect_event() {  # NAME [SUBSTRING]
  grep "\"event\":\"$1\"" "$W/events.jsonl" 2>/dev/null | grep -qF "${2:-}" ||
    fail "strund's event log has no '$1' event${2:+ with $2}"
}

# Times from the fault to detection, to workers running again and to training progressing again
# (strund's event log; 'started'/'launch' and 'resumed' come from the coordination service).
report_recovery() {
  /usr/bin/python3 - "$W/events.jsonl" "${T_FAULT:-0}" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t0 = float(sys.argv[2])
if t0 == 0:  # injected by the trainer: the failure event is the first thing seen
    t0 = next((e["time"] for e in events if e.get("event") in ("failure", "agent_lost")), 0)
after = [e for e in events if e.get("time", 0) >= t0]
def first(*names):
    return next((e["time"] - t0 for e in after if e.get("event") in names), None)
fmt = lambda v: "n/a" if v is None else "%.2f s" % v
started = first("started")
progress = None
if started is not None:  # the first step after the group started again (restart, relaunch or requeue)
    progress = next((e["time"] - t0 for e in after if e["time"] - t0 >= started and e.get("event") in ("resumed", "progress")), None)
print("recovery: detected %s, workers running again %s, training progressing again %s" % (
    fmt(first("failure", "agent_lost", "node_excluded", "requeue")), fmt(started), fmt(progress)))
PY
}

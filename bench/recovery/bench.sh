#!/usr/bin/env bash
# Recovery benchmark (issue: strund), run by hand: `cmake --build <dir> --target bench_recovery`.
#
# Part 1, per fault, on the local Slurm cluster (tests/recovery/recovery_test.sh, which also
#   checks that the job finishes bitwise identical to an uninterrupted run): the time from the
#   fault to its detection, to all workers running again, and to training progressing again.
# Part 2, goodput with a fault every N steps, strun against its peer in the same run: the same
#   strun-train job (2 ranks, dp=2, CPU) under `strun --max-restarts` and under Debian's torchrun
#   (PyTorch 1.13, bench/launcher/torchrun_py311.py) with --max_restarts; rank 1 is SIGKILLed
#   whenever training passes a multiple of N steps.
#   with faults. Printed per launcher: the time each fault cost (wall with faults - wall without,
#   per fault) and the goodput (the trainer's own time of the steps that count / wall time with
#   faults), and the ratios torchrun/strun (time lost) and strun/torchrun (goodput).
#
#   bench.sh STRUND STRUN STRUN_TRAIN [--steps S] [--every N] [--skip-cluster]
# Absolute times hold for the machine they were taken on only.
set -euo pipefail
STRUND=$(readlink -f "$1") STRUN=$(readlink -f "$2") TRAIN=$(readlink -f "$3")
shift 3
STEPS=150 EVERY=30 SKIP_CLUSTER=0
while (($#)); do
  case $1 in
    --steps) STEPS=$2; shift 2 ;;
    --every) EVERY=$2; shift 2 ;;
    --skip-cluster) SKIP_CLUSTER=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TORCHRUN="/usr/bin/python3 $REPO/bench/launcher/torchrun_py311.py"
OUT=$(mktemp -d /tmp/strun-bench-recovery.XXXXXX)
echo "bench/recovery: work files in $OUT; $(nproc) CPUs; $(uptime | sed 's/.*load/load/')"

if [ "$SKIP_CLUSTER" = 0 ]; then
  echo
  echo "== Part 1: time from each fault to recovery (local Slurm cluster, strund + strun + strun-train)"
  for fault in sigkill watchdog hang agent node_spare node_requeue checkpoint_kill preempt; do
    start=$SECONDS
    if "$REPO/tests/recovery/recovery_test.sh" "$fault" "$STRUND" "$STRUN" "$TRAIN" \
      "$REPO/tests/cluster/slurm-cluster.sh" "$OUT/cache" >"$OUT/$fault.log" 2>&1; then
      printf '%-16s %s (job %ds, result identical to the uninterrupted run)\n' "$fault" \
        "$(grep '^recovery:' "$OUT/$fault.log" | sed 's/^recovery: //')" $((SECONDS - start))
    else
      printf '%-16s FAILED (see %s)\n' "$fault" "$OUT/$fault.log"
    fi
  done
fi

echo
echo "== Part 2: goodput, $STEPS steps, rank 1 SIGKILLed every $EVERY steps; strun vs torchrun"
W=$OUT/goodput
mkdir -p "$W"
CACHE=$OUT/cache W=$W TRAIN=$TRAIN
TRAIN_STEPS=$STEPS CKPT_INTERVAL=10
# shellcheck source=../../tests/recovery/recovery_lib.sh
. "$REPO/tests/recovery/recovery_lib.sh"
prepare_data "$W/store"
export STRUN_DATA_HOME=$W/store

# run LAUNCHER NAME FAULTS: wall seconds on stdout; log in $W/NAME.log
run() {
  local launcher=$1 name=$2 faults=$3 cmd
  rm -rf "$W/ck-$name"
  write_config "$W/$name.yaml" "$W/ck-$name"
  if [ "$launcher" = strun ]; then
    cmd=("$STRUN" --standalone --nproc-per-node=2 --max-restarts=20 --no-python "$TRAIN" --config-file "$W/$name.yaml")
  else
    # shellcheck disable=SC2206
    cmd=($TORCHRUN --standalone --nproc_per_node=2 --max_restarts=20 --no_python "$TRAIN" --config-file "$W/$name.yaml")
  fi
  local t0 t1
  t0=$(now)
  BENCH_TAG=$name "${cmd[@]}" >"$W/$name.log" 2>&1 &
  local pid=$! next=$EVERY
  if [ "$faults" = 1 ]; then
    while kill -0 "$pid" 2>/dev/null; do
      # The highest step logged so far; kill rank 1 once per multiple of EVERY.
      local hw
      hw=$(grep -o 'step [0-9]* lm_loss' "$W/$name.log" 2>/dev/null | awk '{ if ($2 > m) m = $2 } END { print m + 0 }')
      if ((hw >= next && next < STEPS)); then
        local p
        for p in $(pgrep -x strun-train); do
          tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "BENCH_TAG=$name" || continue
          tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "RANK=1" || continue
          echo "$(now) kill $hw" >>"$W/$name.faults"
          kill -KILL "$p" 2>/dev/null || true
        done
        next=$((next + EVERY))
      fi
      sleep 0.05
    done
  fi
  wait "$pid" || { tail -n 30 "$W/$name.log" >&2; echo "run $name failed" >&2; return 1; }
  t1=$(now)
  [ "$(cat "$W/ck-$name/latest.txt")" = "$STEPS" ] || { echo "run $name did not finish" >&2; return 1; }
  awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }'
}

# Productive time: the trainer's own time of every step that counts (the last run of each step).
productive() {
  grep -o 'iteration: [0-9]* / [0-9]* | consumed_tokens: [^|]*| elapsed_time_per_iteration_ms: [0-9.]*K\{0,1\}' "$1" |
    awk -F'|' '{ split($1, a, " "); split($3, b, ": "); v = b[2]; if (v ~ /K$/) { sub(/K$/, "", v); v *= 1000 }
                 t[a[2]] = v } END { for (s in t) sum += t[s]; print sum / 1000 }'
}

declare -A r
for launcher in strun torchrun; do
  r[$launcher.clean]=$(run "$launcher" "$launcher-clean" 0)
  r[$launcher.faults]=$(run "$launcher" "$launcher-faults" 1)
  final_losses "$W/$launcher-clean.log" >"$W/$launcher-clean.losses"
  final_losses "$W/$launcher-faults.log" >"$W/$launcher-faults.losses"
  if cmp -s "$W/$launcher-clean.losses" "$W/$launcher-faults.losses"; then same="identical"; else same="DIFFERENT"; fi
  kills=$(wc -l <"$W/$launcher-faults.faults" 2>/dev/null || echo 0)
  r[$launcher.kills]=$kills
  r[$launcher.lost]=$(awk -v a="${r[$launcher.faults]}" -v b="${r[$launcher.clean]}" -v k="$kills" \
    'BEGIN { print (k > 0 ? (a - b) / k : 0) }')
  r[$launcher.goodput]=$(awk -v p="$(productive "$W/$launcher-faults.log")" -v w="${r[$launcher.faults]}" \
    'BEGIN { print p / w }')
  printf '%-9s uninterrupted %7.2f s | with %d faults %7.2f s | time lost per fault %6.2f s | goodput %.3f | final losses %s\n' \
    "$launcher" "${r[$launcher.clean]}" "$kills" "${r[$launcher.faults]}" "${r[$launcher.lost]}" "${r[$launcher.goodput]}" "$same"
done
echo "(goodput = the trainer's own time of the steps kept / wall time of the run with faults)"
printf 'time lost per fault, torchrun/strun: %.2f; goodput, strun/torchrun: %.2f\n' \
  "$(awk -v a="${r[torchrun.lost]}" -v b="${r[strun.lost]}" 'BEGIN { print a / b }')" \
  "$(awk -v a="${r[strun.goodput]}" -v b="${r[torchrun.goodput]}" 'BEGIN { print a / b }')"

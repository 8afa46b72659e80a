#!/bin/bash
# A training stand-in for strund's cluster tests: strund_worker.sh DIR STEPS
# Resumes after the step in DIR/checkpoint, reports each step on STRUN_PROGRESS_FD (0.1 s apart),
# rank 0 checkpoints every 5 steps. At step 8, marker files in DIR inject faults (each once):
#   kill-agent-NODE   SIGKILL this worker's strun agent on NODE (a lost agent)
#   fail-RANK         exit 3 (a worker failure)
#   drain-NODE        drain NODE in Slurm (scontrol), then hang
# On SIGUSR1 the worker checkpoints at the next step boundary, reports "preempted" and exits 0.
dir=$1
steps=$2
start=0
[ -f "$dir/checkpoint" ] && start=$(($(cat "$dir/checkpoint") + 1))
echo "rank $RANK on $SLURMD_NODENAME starts at step $start"
preempt=0
trap 'preempt=1' USR1
report() { printf '{"phase": "%s", "step": %d}\n' "$1" "$2" >&"$STRUN_PROGRESS_FD"; }
for ((i = start; i < steps; i++)); do
  sleep 0.1
  report training "$i"
  if [ "$RANK" = 0 ] && ((i % 5 == 4)); then echo "$i" >"$dir/checkpoint"; fi
  if [ "$preempt" = 1 ]; then
    [ "$RANK" = 0 ] && echo "$i" >"$dir/checkpoint"
    report preempted "$i"
    echo "rank $RANK pre-empted at step $i"
    exit 0
  fi
  if [ "$i" = 8 ]; then
    if rm "$dir/kill-agent-$SLURMD_NODENAME" 2>/dev/null; then
      echo "rank $RANK kills its agent on $SLURMD_NODENAME"
      kill -9 "$PPID"
      sleep 30
    fi
    if rm "$dir/fail-$RANK" 2>/dev/null; then
      echo "rank $RANK fails"
      exit 3
    fi
    if rm "$dir/drain-$SLURMD_NODENAME" 2>/dev/null; then
      scontrol update nodename="$SLURMD_NODENAME" state=drain reason="strund test drain"
      sleep 30 # a failing node: no more progress until strund replaces it
    fi
  fi
done
echo "rank $RANK done"

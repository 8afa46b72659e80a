#!/usr/bin/env bash
# Fault-injection test of self-healing training (issue: strund): a 2-node CPU training job under
#   sbatch -> strund -> srun -> strun (one agent per node) -> strun-train (dp=2 over gloo)
# on a real local Slurm cluster (3 nodes), with one fault injected mid-training. The job must run
# to completion with a final loss and final weights bitwise identical to an uninterrupted run of
# the same config, and strund's event log must name the fault. node_shrink (strund --nodes 1:2, a
# node killed, no spare) continues on 1 node at dp 1 with twice the gradient accumulation: its
# losses must equal the uninterrupted run's within fp32 tolerance (the reduction order changes).
# Its config has SHRINK_ZERO_STAGE (default 1, as the tutorial: the ZeRO-1 optimizer state is
# resharded from dp 2 to dp 1) as optimizer.zero_stage.
#
#   recovery_test.sh SCENARIO STRUND STRUN STRUN_TRAIN CLUSTER_SCRIPT CACHE_DIR
# Scenarios: sigkill watchdog hang agent node_spare node_requeue node_shrink checkpoint_kill preempt
# Exit 77 (skipped) without root.
set -euo pipefail
if [ "${1:-}" != __inner ]; then
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root for the local Slurm cluster"; exit 77; }
  CLUSTER=$5
  # SlurmdTimeout 5: a killed node turns DOWN within ~30 s instead of 300.
  # SchedulerParameters and cred_expire: a requeued job starts again within seconds, not minutes.
  exec "$CLUSTER" run --nodes 3 --conf SlurmdTimeout=5 --conf AuthInfo=cred_expire=5 \
    --conf SchedulerParameters=sched_interval=2,bf_interval=2 -- "$(readlink -f "$0")" __inner "$@"
fi
shift
SCENARIO=$1 STRUND=$(readlink -f "$2") STRUN=$(readlink -f "$3") TRAIN=$(readlink -f "$4") CLUSTER=$(readlink -f "$5") CACHE=$6
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=recovery_lib.sh
. "$HERE/recovery_lib.sh"

W=$STRUN_CLUSTER_SHARED/w
mkdir -p "$W"
chmod 777 "$W"
cd "$W"
# The cluster's files go with it: keep the job's output and strund's event log for a post-mortem.
trap 'mkdir -p "$CACHE/$SCENARIO" && cp -f "$W/job.out" "$W/events.jsonl" "$CACHE/$SCENARIO/" 2>/dev/null || true' EXIT
if [ "$SCENARIO" = node_shrink ]; then
  # dp 2 x accumulation 1 = 2 micro-batches per step; 1 process per node.
  CONFIG_EXTRA="zero_stage=${SHRINK_ZERO_STAGE:-1}"
  STRUND_NODES="--nodes 1:2 --procs-per-node 1 --micro-batches 2"
fi
baseline  # -> $BASE (final losses, checkpoint of the last step)

NODES=2
case $SCENARIO in node_spare | agent) NODES=3 ;; esac
EXTRA_ENV=""
case $SCENARIO in
  watchdog) EXTRA_ENV="STRUN_TRAIN_FAULT_WATCHDOG_AT_STEP=$FAULT_STEP STRUN_TRAIN_FAULT_RANK=1" ;;
  checkpoint_kill) EXTRA_ENV="STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT=$CKPT_FAULT_STEP" ;;
esac
submit "$NODES" "$EXTRA_ENV"  # -> $JOB
t_submit=$(now)

case $SCENARIO in
  sigkill)
    wait_step "$FAULT_STEP"
    pid=$(worker_pid 1)
    record_fault "SIGKILL rank 1 (pid $pid)"
    kill -KILL "$pid"
    ;;
  hang)
    wait_step "$FAULT_STEP"
    pid=$(worker_pid 1)
    record_fault "SIGSTOP rank 1 (pid $pid)"
    kill -STOP "$pid"
    ;;
  agent)
    wait_step "$FAULT_STEP"
    pid=$(agent_pid 1)
    record_fault "SIGKILL the strun agent of node rank 1 (pid $pid)"
    kill -KILL "$pid"
    ;;
  node_spare | node_requeue | node_shrink)
    wait_step "$FAULT_STEP"
    node=$(worker_node 1)
    record_fault "node $node killed"
    "$CLUSTER" kill-node "$node"
    ;;
  preempt)
    wait_step "$FAULT_STEP"
    record_fault "scancel --signal=USR1 $JOB"
    scancel --signal=USR1 "$JOB"
    ;;
  watchdog | checkpoint_kill) ;;  # injected by strun-train itself
  *) fail "unknown scenario $SCENARIO" ;;
esac

wait_job 300
if [ "$SCENARIO" = node_shrink ]; then check_close_to_baseline 1e-4; else check_same_as_baseline; fi
case $SCENARIO in
  sigkill) expect_event failure '"kind":"signal"'; expect_event restart ;;
  watchdog) expect_event failure '"kind":"nccl_watchdog"'; expect_event restart ;;
  hang) expect_event failure '"kind":"hang"'; expect_event restart ;;
  checkpoint_kill) expect_event failure '"kind":"signal"'; expect_event restart
    grep -q "fault injection: SIGKILL during checkpoint $CKPT_FAULT_STEP" job.out || fail "checkpoint fault not injected" ;;
  agent) expect_event agent_lost; expect_event relaunch ;;
  node_spare) expect_event agent_lost; expect_event relaunch ;;
  node_requeue) expect_event requeue ;;
  node_shrink) expect_event agent_lost
    for f in '"from_nodes":2' '"to_nodes":1' '"from_dp":2' '"to_dp":1' '"from_accumulation":1' '"to_accumulation":2'; do
      expect_event shrink "$f"
    done
    grep -q '^strund: continuing on 1 node instead of 2' job.out || fail "strund's stderr does not say it continues on 1 node"
    grep -q 'strun-train: STRUN_ELASTIC_DP=1 .*tokens.batch_accumulation_per_replica 1 -> 2' job.out ||
      fail "strun-train did not log the elastic dp change"
    grep -q '"event":"requeue"' events.jsonl && fail "the job was requeued instead of continuing on 1 node" ;;
  preempt) expect_event requeue
    grep -q "Pre-emption" job.out || fail "no pre-emption checkpoint message" ;;
esac
report_recovery
if [ "$SCENARIO" = node_shrink ]; then
  echo "ok - $SCENARIO: continued on 1 node (dp 1, accumulation 2) with the uninterrupted run's losses"
else
  echo "ok - $SCENARIO: completed with the uninterrupted run's final loss and weights"
fi

// strun/daemon/supervisor.h: strund's job supervision: launch, watch, relaunch, requeue.
//
// Inside a Slurm allocation (the batch script: SLURM_JOB_ID and SLURM_JOB_NODELIST must be set)
// the supervisor repeats:
//   1. Ask slurmctld about the allocation's nodes; exclude those it reports unhealthy. Pick the
//      launch's nodes (node_selection.h). Too few: requeue (below).
//   2. Launch: a fresh secret (32 random bytes) and run key
//      "strund|<SLURM_JOB_ID>|<SLURM_RESTART_COUNT>|<launch>", the coordination service
//      (coord_service.h) on STRUN_COORD_PORT or any free port, MASTER_ADDR the address of the
//      launch's first node; then srun (srun_command.h), in its own process group, with
//      STRUN_JOB_SECRET, STRUN_COORD_HOST (this node's address), STRUN_COORD_PORT and
//      STRUN_COORD_RUN_KEY in its environment (SLURM_NTASKS and SLURM_NPROCS, the batch job's
//      task count, are removed when the command has no -n, so srun derives the task count from
//      the launch's node count).
//   3. Watch the service's events, srun, the launch's nodes (every --node-check-interval s) and
//      strund's signals:
//      - an agent lost (agent_lost) or a node of the launch unhealthy: exclude the node, stop the
//        step (SIGTERM to srun, SIGKILL and slurm_kill_job_step on every step it started after
//        --stop-timeout) and go back to 1 (a relaunch; at most --max-relaunches);
//      - the service's exit 0: the job is done; exit 0;
//      - the service's exit after a worker failure (in-place restarts exhausted, the same-step
//        rule): exit 1 with its root cause; a relaunch would not help;
//      - a pre-emption: the service's exit with "preempted", or SIGUSR1/SIGTERM to strund
//        (forwarded to srun, which forwards it to the agents and they to the workers, which write
//        a checkpoint and exit): requeue;
//      - SIGINT or SIGHUP: stop the step and exit 130 / 129; SIGUSR2 is forwarded to srun.
//   Requeue: when SLURM_RESTART_COUNT < --max-requeues, slurm_requeue (the job must have been
//   submitted with --requeue) and exit 75; else exit 1. After a SIGTERM strund first asks
//   slurmctld for the job's state: scancel sends SIGTERM too, and a CANCELLED job is never
//   requeued (exit 143); when the state cannot be had, it is not requeued either (exit 75).
// Everything goes to the event log (event_log.h); a summary (accounting.h) ends it and stderr.
// Each decision above is a pure function of supervision.h.
#pragma once

#include <map>
#include <string>

#include "strun/daemon/options.h"
#include "strun/environment.h"

namespace strun::daemon {

// strund's exit codes.
inline constexpr int kExitDone = 0;    // training finished
inline constexpr int kExitFailed = 1;  // failed; a requeue would not help (or the limit is reached)
inline constexpr int kExitUsage = 2;   // bad command line or environment
inline constexpr int kExitRequeue = 75;  // EX_TEMPFAIL: a requeue makes sense; strund requested it
                                         // (event "requeue" has requested: true) or could not
                                         // (requested: false and the error; Slurm's
                                         // RequeueExit=75 or a resubmission can do it)

// Runs the job (see above) and returns strund's exit code. `env`: strund's environment.
int RunSupervisor(const DaemonOptions& options, const EnvMap& env);

}  // namespace strun::daemon

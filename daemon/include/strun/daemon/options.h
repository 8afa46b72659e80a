// strun/daemon/options.h: strund's command line.
//
//   strund [options] -- srun [srun options] strun [strun options] program [args]
//
// Everything after `--` is the step strund runs (and reruns): it must start with srun (any path
// whose basename is `srun`) and contain a `strun` program (basename `strun`); srun_command.h
// says how strund changes its node options for each launch.
//
// Options (defaults in brackets):
//   --nodes N                 nodes per launch [srun's -N, else SLURM_JOB_NUM_NODES].
//                             `--nnodes` is the same option.
//   --nodes MIN:MAX           MAX nodes per launch; when a node is lost and no spare is left,
//                             continue on fewer nodes, down to MIN, with the same global batch
//                             (supervision.h, DecideNodeCount). Needs --procs-per-node and
//                             --micro-batches, and --model-parallel when tp * pp > 1.
//   --procs-per-node P        training processes per node (strun's --nproc-per-node)
//   --model-parallel M        processes per model replica: tp * pp of the training config [1]
//   --micro-batches B         micro-batches per optimizer step over all replicas: parallelism.dp *
//                             tokens.batch_accumulation_per_replica of the training config
//   --max-restarts K          in-place restarts of the worker group per launch, done by the
//                             strun agents (RestartPolicy.max_restarts) [3]
//   --max-relaunches K        step relaunches after a lost node or agent [3]
//   --max-requeues K          requeues of the job; compared with SLURM_RESTART_COUNT [3]
//   --event-log PATH          JSON-lines event log, appended to [./strund-<jobid>.events.jsonl]
//   --tensorboard-dir DIR     also write the events as TensorBoard files under DIR/strund_<jobid>
//                             (tensorboard_events.h) [$STRUN_TENSORBOARD_DIR, else none]
//   --node-check-interval S   how often the launch's nodes are checked with slurmctld [5]
//   --backoff-initial S, --backoff-max S, --max-same-step-failures K
//                             RestartPolicy of the in-place restarts (coordination.h) [1, 60, 2]
//   --join-timeout S          how long the agents of a launch have to join [600]
//   --stop-timeout S          grace between SIGTERM and SIGKILL when strund stops a step [10];
//                             at most 3 s after a lost agent or node
//   --preempt-timeout S       after SIGUSR1, how long the step has to write its checkpoint and
//                             exit before strund stops it and requeues [90] (after SIGTERM at
//                             most 20 s: Slurm kills the job KillWait seconds after it)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::daemon {

struct DaemonOptions {
  std::optional<int> nodes;  // --nodes N, or MAX of --nodes MIN:MAX
  int min_nodes = 0;         // MIN of --nodes MIN:MAX when MIN < MAX; 0: a fixed count
  int procs_per_node = 0;    // --procs-per-node, 0 when not given
  int model_parallel = 1;    // --model-parallel
  int micro_batches = 0;     // --micro-batches, 0 when not given
  int max_restarts = 3;
  int max_relaunches = 3;
  int max_requeues = 3;
  std::string event_log;        // "" = ./strund-<jobid>.events.jsonl
  std::string tensorboard_dir;  // "" = $STRUN_TENSORBOARD_DIR, else no TensorBoard files
  double node_check_interval_s = 5;
  double backoff_initial_s = 1;
  double backoff_max_s = 60;
  int max_same_step_failures = 2;
  double join_timeout_s = 600;
  double stop_timeout_s = 10;
  double preempt_timeout_s = 90;
  std::vector<std::string> command;  // srun ... strun ...
  bool help = false;
};

// Parses strund's arguments (without argv[0]). Errors name the option or argument and say what
// to do; the command after `--` is checked with ParseSrunCommand (srun_command.h). With
// --nodes MIN:MAX the layout options must be given and fit MAX nodes (ElasticLayoutFor,
// supervision.h).
Result<DaemonOptions> ParseDaemonCommandLine(const std::vector<std::string>& args);

std::string DaemonUsage();

}  // namespace strun::daemon

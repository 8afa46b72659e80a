// strun/daemon/supervision.h: strund's decisions as pure functions (inputs -> decision), so that
// each rule of supervisor.h is tested alone; supervisor.cc gathers the inputs (environment,
// slurmctld, srun, the coordination service's events) and carries the decisions out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "strun/daemon/options.h"
#include "strun/daemon/srun_command.h"
#include "strun/environment.h"
#include "strun/launcher/coord_protocol.h"
#include "strun/result.h"

namespace strun::daemon {

// Continuing on fewer nodes (--nodes MIN:MAX, options.h): the training layout strund keeps.
struct ElasticBatch {
  int min_nodes = 0;       // MIN
  int procs_per_node = 0;  // training processes per node
  int model_parallel = 1;  // tp * pp: processes per model replica
  int micro_batches = 0;   // per optimizer step over all replicas: dp * accumulation
};
// The data-parallel layout of a launch on `nodes` nodes.
struct ElasticLayout {
  int nodes = 0;
  int dp = 0;            // nodes * procs_per_node / model_parallel
  int accumulation = 0;  // micro_batches / dp
};
// The layout, or why `nodes` nodes cannot train the same global batch ("6 processes do not hold
// whole model replicas of 4 (--model-parallel)", "8 micro-batches per step (--micro-batches) do
// not split over 3 data-parallel replicas").
Result<ElasticLayout> ElasticLayoutFor(const ElasticBatch& batch, int nodes);

// The variables that ask strun-train for a data-parallel size with the same micro-batches per
// step (trainer/config/elastic_dp.h); set on every launch of an elastic job, so that a layout
// strund and the config disagree about is refused at the first launch, not after a fault.
inline constexpr char kElasticDpVariable[] = "STRUN_ELASTIC_DP";
inline constexpr char kElasticMicroBatchesVariable[] = "STRUN_ELASTIC_MICRO_BATCHES";

// How many nodes the next launch gets: `current` (the previous launch's count, or the first
// launch's) when that many are usable; else, with `elastic`, the largest count from
// min(current, usable) down to min_nodes whose layout holds the global batch (kShrink); else
// kRequeue. The count never grows back within one strund (a requeued job starts at MAX).
struct NodeCountDecision {
  enum Action { kLaunch, kShrink, kRequeue } action = kLaunch;
  int nodes = 0;                          // kLaunch, kShrink
  std::optional<ElasticLayout> from, to;  // kShrink
  // kRequeue with `elastic`: why no smaller count fits ("not continuing on fewer nodes: 1 node:
  // ..."); "" without (SelectNodes says which nodes are unusable).
  std::string reason;
};
NodeCountDecision DecideNodeCount(int current, int usable,
                                  const std::optional<ElasticBatch>& elastic);

// What strund reads from its environment and command once, at start-up.
struct JobSetup {
  std::string job_id;  // SLURM_JOB_ID
  uint32_t job_id_num = 0;
  std::vector<std::string> allocation;  // SLURM_JOB_NODELIST (or SLURM_NODELIST), expanded
  int restart_count = 0;                // SLURM_RESTART_COUNT, 0 when unset
  std::optional<int> tasks_per_node;    // SLURM_NTASKS_PER_NODE when a sane number
  int coord_port = 0;                   // STRUN_COORD_PORT, 0: any free port
  SrunCommand srun;
  int nodes_needed = 0;  // --nodes, else srun's -N, else SLURM_JOB_NUM_NODES, else all
  std::optional<ElasticBatch> elastic;  // --nodes MIN:MAX with MIN < MAX
};
// Errors name the variable or option and say what to do.
Result<JobSetup> ReadJobSetup(const DaemonOptions& options, const EnvMap& env);

// The run key of a launch: "strund|<job>|<restart count>|<launch>" (agents of an old launch
// cannot join a new one).
std::string LaunchRunKey(const std::string& job_id, int restart_count, int launch);

// srun's environment for a launch: strund's, plus the service's coordinates; without the batch
// job's task count (SLURM_NTASKS, SLURM_NPROCS) when the command has no -n; for an elastic
// job's launch STRUN_ELASTIC_DP and STRUN_ELASTIC_MICRO_BATCHES.
EnvMap LaunchEnvironment(const EnvMap& env, const std::string& secret,
                         const std::string& coord_host, int coord_port, const std::string& run_key,
                         bool command_has_ntasks,
                         const std::optional<ElasticLayout>& elastic = std::nullopt,
                         int micro_batches = 0);

// While a launch runs: stop it, let it end, or keep watching (before the periodic node check).
struct WatchFacts {
  int stop_signal = 0;  // SIGINT/SIGHUP to strund
  std::optional<std::string>
      lost_agent_node;  // set once the service lost an agent ("" : unknown node)
  bool srun_running = true;
  double now = 0;               // monotonic
  double outcome_deadline = 0;  // the service finished: srun must end by then; 0: not yet
  double preempt_deadline = 0;  // 0: no pre-emption
};
struct WatchDecision {
  enum Action { kWatch, kSrunEnded, kStop } action = kWatch;
  std::string reason;  // why the step is stopped (kStop)
};
WatchDecision DecideWatch(const WatchFacts& facts);

enum class LaunchEnd { kDone, kPreempted, kFailed, kNodeFault, kStopped, kError };

// A node to exclude from later launches, and why.
struct Exclusion {
  std::string node;
  std::string kind;  // node_down, lost_agent
  std::string evidence;
};

struct LaunchVerdict {
  LaunchEnd end = LaunchEnd::kError;
  std::string reason;
  std::optional<Exclusion> exclude;
  bool fault = false;  // counts as a fault in the accounting (accounting.h)
};

// How a launch ended, once its step is stopped and the service has finished.
struct LaunchFacts {
  int stop_signal = 0;
  std::string stop_reason;
  std::optional<std::pair<std::string, std::string>>
      node_fault;  // node, evidence (seen while watching)
  std::optional<std::pair<std::string, std::string>>
      agent_lost;                      // node, evidence (agent_lost event)
  std::optional<coord::Exit> outcome;  // the service's exit message
  bool preempt_requested = false;      // SIGUSR1/SIGTERM to strund
};
// nullopt: srun ended without an outcome and for no known cause; then DecideWithoutOutcome.
std::optional<LaunchVerdict> DecideLaunchEnd(const LaunchFacts& facts);
// `unhealthy`: the launch's nodes slurmctld reports unhealthy now (node -> evidence); `joined`:
// agents that joined the service; `srun_status`: srun's wait status.
LaunchVerdict DecideWithoutOutcome(
    const std::vector<std::pair<std::string, std::string>>& unhealthy, int joined, int srun_status);

// After a launch: exit (code, result and message for the summary), requeue, or relaunch.
struct JobVerdict {
  enum Action { kExit, kRequeue, kRelaunch } action = kExit;
  int code = 0;
  std::string result;   // done, failed, stopped (kExit)
  std::string message;  // the summary's message (kExit), the requeue's or relaunch's reason
};
JobVerdict DecideAfterLaunch(const LaunchVerdict& launch, const std::optional<coord::Exit>& outcome,
                             int launch_number, int stop_signal, int relaunches,
                             int max_relaunches);

// Whether to ask Slurm to requeue. `job_state`: slurmctld's answer, asked only after a SIGTERM
// (scancel sends one too); nullptr when not asked.
struct RequeueDecision {
  bool request = false;  // call slurm_requeue; otherwise exit with the fields below
  int code = 0;
  std::string result;
  std::string message;
  std::string error;  // the requeue event's error (not requested)
};
RequeueDecision DecideRequeue(const std::string& reason, bool term_received,
                              const Result<std::string>* job_state, int restart_count,
                              int max_requeues);

// "exit code 1", "signal 9 (Killed)".
std::string DescribeWaitStatus(int status);

}  // namespace strun::daemon

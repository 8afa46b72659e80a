// strun/daemon/accounting.h: restarts, time lost and goodput of a job, across its launches and
// requeues.
//
// Time lost to a fault runs from the last progress report before it to the first report of a step
// beyond the high-water step at the fault: it covers stopping, restarting, waiting in the queue
// after a requeue and redoing the steps since the last checkpoint. A fault that happens while
// an earlier one is still being recovered from adds no time of its own. A fault before the first
// progress report of the job counts from the fault itself. Until recovery a fault's time is lost
// up to "now".
//
//   goodput = 1 - time lost / wall time
// where the wall time runs from the job's first progress report (or an earlier fault) to now.
//
// The state survives a requeue through the event log: the summary line strund writes at exit
// carries it (ToJson), and the next strund of the job restores it (Restore) from the last
// summary with its job id.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace strun::daemon {

struct AccountingSummary {
  int launches = 0;
  int restarts = 0;    // in place, by the strun agents
  int relaunches = 0;  // of the step, by strund
  int requeues = 0;    // of the job, by strund
  int nodes_excluded = 0;
  int faults = 0;
  double wall_s = 0;  // since the first progress report or fault (0 before either)
  double lost_s = 0;
  double goodput = 1;  // 1 - lost/wall, 1 while wall is 0
  long long high_water_step = -1;
};

class RecoveryAccounting {
 public:
  // A progress report of `step` at `time` (epoch s). When it resolves a fault, returns the time
  // that fault (and any fault during its recovery) lost.
  std::optional<double> OnProgress(long long step, double time);
  // The job stopped making progress at `time` (a failure, a lost agent or node, a pre-emption).
  void OnFault(double time);

  void CountLaunch() { ++launches_; }
  void CountRestart() { ++restarts_; }
  void CountRelaunch() { ++relaunches_; }
  void CountRequeue() { ++requeues_; }
  void CountExcludedNode() { ++nodes_excluded_; }

  AccountingSummary Summarize(double now) const;

  // Everything, for the summary line (the AccountingSummary fields plus the state Restore needs).
  nlohmann::json ToJson(double now) const;
  // From a previous strund's summary line of the same job. That strund ended before the job was
  // done (else there would be no new strund), so an unresolved stop since its last progress
  // report is reopened: the requeue's time counts as lost.
  // A damaged line (wrong types) restores nothing.
  void Restore(const nlohmann::json& summary);

 private:
  void RestoreFrom(const nlohmann::json& summary);
  int launches_ = 0, restarts_ = 0, relaunches_ = 0, requeues_ = 0, nodes_excluded_ = 0,
      faults_ = 0;
  double first_progress_ = -1;  // epoch s, -1 before any
  double wall_start_ = -1;      // the first progress report or fault
  double last_progress_ = -1;
  long long high_water_ = -1;
  double closed_lost_s_ = 0;     // of resolved faults
  double pending_since_ = -1;    // start of the unresolved fault's lost time, -1 when none
  long long pending_step_ = -1;  // high-water step when it happened
};

}  // namespace strun::daemon

// strun/daemon/event_log.h: strund's JSON-lines event log.
//
// One JSON object per line. Every line has
//   time (epoch s), event, job_id, restart_count (SLURM_RESTART_COUNT, 0 when unset),
//   launch (strund's launch number of this run, 0 before the first)
// and the event's own fields:
//   strund_start       {nodes, elastic, allocation, excluded, command, coord_host, max_restarts,
//                       max_relaunches, max_requeues}   elastic: null, or {min_nodes,
//                       procs_per_node, model_parallel, micro_batches} (--nodes MIN:MAX)
//   node_check_failed  {error}   slurmctld could not be asked; the nodes count as healthy
//   shrink             {from_nodes, to_nodes, from_dp, to_dp, from_accumulation,
//                       to_accumulation, micro_batches, reason, message}   too few usable nodes
//                      and no spare: the next launches run on to_nodes (supervision.h,
//                      DecideNodeCount); reason: the fault that cost the node
//   launch             {nodes, elastic_dp, num_agents, port, master_addr, command}   elastic_dp:
//                      the STRUN_ELASTIC_DP the launch asks strun-train for, null when not elastic
//   agent_joined, started, progress, failure, restart, agent_lost, exit: the coordination
//                      service's events (coordination.h), unchanged except that their
//                      restart_count (in-place restarts) is renamed group_restart_count;
//                      progress only for the first report of a launch, the first after a
//                      failure or restart, and then at most every 30 s (ProgressLogFilter)
//   recovered      {step, time_lost_s}   the first step beyond the high-water mark after a fault
//   signal         {signal, number, action}
//   node_excluded  {node, kind, evidence}   kind: lost_agent or node_down (failure.h)
//   step_stopped   {reason, forced, srun, lingering_steps}
//   relaunch       {nodes, reason}
//   requeue        {reason, requested, error}   reason also says why an elastic job could not
//                  continue on fewer nodes
//   summary        accounting.h's fields (ToJson), and {exit_code, result, message, excluded,
//                  strund_wall_s}
// The file is opened with O_APPEND and each line is one write(2), so lines of strunds of earlier
// runs of the job (requeues) and of other jobs sharing the file never interleave; lines that end
// a phase (launch, failures, exit, requeue, summary) are fsync'ed.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::daemon {

using Json = nlohmann::json;

struct EventContext {
  std::string job_id;
  int restart_count = 0;
  int launch = 0;
};

// The line for an event: `fields` (an object, may be null) plus event, time, job_id,
// restart_count and launch. A "time" already in `fields` (the service's own) is kept.
Json MakeEventLine(const std::string& event, const Json& fields, const EventContext& context,
                   double now);

class EventLog {
 public:
  // Creates the file (0644) or appends to it. The error names the path.
  static Result<std::unique_ptr<EventLog>> Open(const std::string& path);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends `line` and a newline in one write; `sync` fsyncs the file afterwards.
  Status Append(const Json& line, bool sync);
  const std::string& path() const { return path_; }

 private:
  EventLog(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// The lines of an event log file that parse as JSON objects (others are skipped); empty when the
// file does not exist.
std::vector<Json> ReadEventLog(const std::string& path);

// Which of the service's progress events go into the log (see above).
class ProgressLogFilter {
 public:
  explicit ProgressLogFilter(double interval_s = 30) : interval_s_(interval_s) {}
  // For a progress event at `now`: whether to log it.
  bool ShouldLog(double now);
  // After a launch, failure or restart: the next progress report is logged.
  void Reset() { last_ = -1; }

 private:
  double interval_s_;
  double last_ = -1;
};

}  // namespace strun::daemon

// strund's decisions (supervision.h): no I/O, no clocks, no Slurm.
#include "strun/daemon/supervision.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "strun/launcher/failure.h"
#include "strun/slurm/hostlist.h"

namespace strun::daemon {
namespace {

std::optional<long long> ToNumber(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(s);
}

std::optional<std::string> Get(const EnvMap& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "status " + std::to_string(status);
}

Result<JobSetup> ReadJobSetup(const DaemonOptions& o, const EnvMap& env) {
  JobSetup s;
  auto job = Get(env, "SLURM_JOB_ID");
  if (!job || job->empty())
    return MakeError(
        "SLURM_JOB_ID is not set: strund runs inside a Slurm allocation, from the job's batch "
        "script "
        "(sbatch), or under salloc");
  auto job_num = ToNumber(*job);
  if (!job_num || *job_num > 0xffffffffLL)
    return MakeError("SLURM_JOB_ID=" + *job + ": expected a job number");
  s.job_id = *job;
  s.job_id_num = uint32_t(*job_num);
  auto nodelist = Get(env, "SLURM_JOB_NODELIST");
  if (!nodelist) nodelist = Get(env, "SLURM_NODELIST");
  if (!nodelist || nodelist->empty())
    return MakeError(
        "SLURM_JOB_NODELIST is not set: strund runs inside a Slurm allocation, from the job's "
        "batch "
        "script (sbatch), or under salloc");
  auto nodes = slurm::ExpandHostlist(*nodelist);
  if (!nodes) return MakeError("SLURM_JOB_NODELIST=" + *nodelist + ": " + nodes.error().message);
  s.allocation = std::move(*nodes);
  if (auto rc = Get(env, "SLURM_RESTART_COUNT"); rc && !rc->empty()) {
    auto v = ToNumber(*rc);
    if (!v || *v > 1000000) return MakeError("SLURM_RESTART_COUNT=" + *rc + ": expected a number");
    s.restart_count = int(*v);
  }
  if (auto tpn = Get(env, "SLURM_NTASKS_PER_NODE"); tpn && !tpn->empty()) {
    auto v = ToNumber(*tpn);
    if (v && *v > 0 && *v < 100000) s.tasks_per_node = int(*v);
  }
  if (auto port = Get(env, "STRUN_COORD_PORT"); port && !port->empty()) {
    auto v = ToNumber(*port);
    if (!v || *v < 1 || *v > 65535)
      return MakeError("STRUN_COORD_PORT=" + *port +
                       ": expected a TCP port (1-65535) for the coordination service");
    s.coord_port = int(*v);
  }
  auto srun = ParseSrunCommand(o.command);
  if (!srun) return srun.error();
  s.srun = std::move(*srun);

  if (o.nodes) {
    s.nodes_needed = *o.nodes;
  } else if (s.srun.nodes) {
    s.nodes_needed = *s.srun.nodes;
  } else if (auto n = Get(env, "SLURM_JOB_NUM_NODES"); n && ToNumber(*n) && *ToNumber(*n) > 0) {
    s.nodes_needed = int(*ToNumber(*n));
  } else {
    s.nodes_needed = int(s.allocation.size());
  }
  if (o.min_nodes > 0)
    s.elastic = ElasticBatch{o.min_nodes, o.procs_per_node, o.model_parallel, o.micro_batches};
  if (s.nodes_needed > int(s.allocation.size()))
    return MakeError("--nodes " + std::to_string(s.nodes_needed) + ": the allocation has only " +
                     std::to_string(s.allocation.size()) + " node" +
                     (s.allocation.size() == 1 ? "" : "s") + " (" + *nodelist +
                     "); allocate more (sbatch --nodes) or ask for fewer");
  return s;
}

Result<ElasticLayout> ElasticLayoutFor(const ElasticBatch& b, int nodes) {
  const long long procs = (long long)nodes * b.procs_per_node;
  if (nodes < 1 || b.procs_per_node < 1 || b.model_parallel < 1 || b.micro_batches < 1)
    return MakeError("no layout for " + std::to_string(nodes) + " nodes");
  if (procs % b.model_parallel != 0)
    return MakeError(std::to_string(procs) + " processes do not hold whole model replicas of " +
                     std::to_string(b.model_parallel) + " (--model-parallel, tp * pp)");
  const long long dp = procs / b.model_parallel;
  if (b.micro_batches % dp != 0)
    return MakeError(std::to_string(b.micro_batches) +
                     " micro-batches per step (--micro-batches) do not split over " +
                     std::to_string(dp) + " data-parallel replica" + (dp == 1 ? "" : "s"));
  return ElasticLayout{nodes, int(dp), int(b.micro_batches / dp)};
}

NodeCountDecision DecideNodeCount(int current, int usable,
                                  const std::optional<ElasticBatch>& elastic) {
  NodeCountDecision d;
  if (usable >= current) {
    d.nodes = current;
    return d;
  }
  d.action = NodeCountDecision::kRequeue;
  if (!elastic) return d;
  std::string why;
  if (usable < elastic->min_nodes)
    why = std::to_string(usable) + " usable node" + (usable == 1 ? " is" : "s are") +
          " below the minimum of " + std::to_string(elastic->min_nodes) + " (--nodes MIN:MAX)";
  for (int k = usable; k >= elastic->min_nodes && k >= 1; --k) {
    auto layout = ElasticLayoutFor(*elastic, k);
    if (!layout) {
      why += (why.empty() ? "" : "; ") + std::to_string(k) + " node" + (k == 1 ? "" : "s") + ": " +
             layout.error().message;
      continue;
    }
    auto from = ElasticLayoutFor(*elastic, current);
    d.action = NodeCountDecision::kShrink;
    d.nodes = k;
    d.to = *layout;
    if (from) d.from = *from;
    return d;
  }
  d.reason = "not continuing on fewer nodes: " + why;
  return d;
}

std::string LaunchRunKey(const std::string& job_id, int restart_count, int launch) {
  return "strund|" + job_id + "|" + std::to_string(restart_count) + "|" + std::to_string(launch);
}

EnvMap LaunchEnvironment(const EnvMap& base, const std::string& secret,
                         const std::string& coord_host, int coord_port, const std::string& run_key,
                         bool command_has_ntasks, const std::optional<ElasticLayout>& elastic,
                         int micro_batches) {
  EnvMap env = base;
  if (elastic) {
    env[kElasticDpVariable] = std::to_string(elastic->dp);
    env[kElasticMicroBatchesVariable] = std::to_string(micro_batches);
  }
  env["STRUN_JOB_SECRET"] = secret;
  env["STRUN_COORD_HOST"] = coord_host;
  env["STRUN_COORD_PORT"] = std::to_string(coord_port);
  env["STRUN_COORD_RUN_KEY"] = run_key;
  if (!command_has_ntasks) {
    // The batch job's task count would make srun start that many tasks on the launch's nodes.
    env.erase("SLURM_NTASKS");
    env.erase("SLURM_NPROCS");
  }
  return env;
}

WatchDecision DecideWatch(const WatchFacts& f) {
  if (f.stop_signal)
    return {WatchDecision::kStop, std::string("strund received ") + strsignal(f.stop_signal)};
  if (f.lost_agent_node)
    return {WatchDecision::kStop,
            "lost strun agent" + (f.lost_agent_node->empty() ? "" : " on " + *f.lost_agent_node)};
  if (!f.srun_running) return {WatchDecision::kSrunEnded, ""};
  if (f.outcome_deadline > 0 && f.now >= f.outcome_deadline)
    return {WatchDecision::kStop, "the coordination service finished but srun still runs"};
  if (f.preempt_deadline > 0 && f.now >= f.preempt_deadline)
    return {WatchDecision::kStop, "pre-emption: the step did not exit in time"};
  return {};
}

std::optional<LaunchVerdict> DecideLaunchEnd(const LaunchFacts& f) {
  const bool have_outcome = f.outcome.has_value();
  const int code = have_outcome ? f.outcome->code : -1;
  const bool preempted = have_outcome && f.outcome->preempted;
  if (f.stop_signal) return LaunchVerdict{LaunchEnd::kStopped, f.stop_reason, std::nullopt, false};
  if (f.node_fault)
    return LaunchVerdict{LaunchEnd::kNodeFault, f.node_fault->second,
                         Exclusion{f.node_fault->first, "node_down", f.node_fault->second}, false};
  if (have_outcome && code == 0 && !preempted && !f.agent_lost)
    return LaunchVerdict{LaunchEnd::kDone, f.outcome->reason, std::nullopt, false};
  if (preempted || f.preempt_requested)
    return LaunchVerdict{
        LaunchEnd::kPreempted,
        preempted ? f.outcome->reason : "strund received a pre-emption or time-limit signal",
        std::nullopt, false};
  std::optional<std::pair<std::string, std::string>> lost = f.agent_lost;
  if (!lost && have_outcome && !f.outcome->lost_agents.empty()) {
    const coord::LostAgent& a = f.outcome->lost_agents[0];
    lost = std::make_pair(a.node,
                          "the connection to strun agent " + std::to_string(a.agent) + " was lost");
  }
  if (lost)
    return LaunchVerdict{LaunchEnd::kNodeFault,
                         lost->second + (lost->first.empty() ? "" : " (node " + lost->first + ")"),
                         Exclusion{lost->first, "lost_agent", lost->second}, false};
  if (have_outcome)
    return LaunchVerdict{LaunchEnd::kFailed, f.outcome->reason, std::nullopt, false};
  return std::nullopt;
}

LaunchVerdict DecideWithoutOutcome(
    const std::vector<std::pair<std::string, std::string>>& unhealthy, int joined,
    int srun_status) {
  if (!unhealthy.empty())
    return {LaunchEnd::kNodeFault, unhealthy.front().second,
            Exclusion{unhealthy.front().first, "node_down", unhealthy.front().second}, true};
  if (joined == 0)
    return {
        LaunchEnd::kError,
        "srun ended (" + DescribeWaitStatus(srun_status) +
            ") before any strun agent joined the coordination service; its output above says why",
        std::nullopt, false};
  return {LaunchEnd::kNodeFault,
          "srun ended (" + DescribeWaitStatus(srun_status) +
              ") before the coordination service reported how the job went",
          std::nullopt, true};
}

JobVerdict DecideAfterLaunch(const LaunchVerdict& r, const std::optional<coord::Exit>& outcome,
                             int launch_number, int stop_signal, int relaunches,
                             int max_relaunches) {
  switch (r.end) {
    case LaunchEnd::kDone:
      return {JobVerdict::kExit, 0, "done", "the job finished: " + r.reason};
    case LaunchEnd::kPreempted:
      return {JobVerdict::kRequeue, 0, "", r.reason};
    case LaunchEnd::kStopped:
      return {JobVerdict::kExit, 128 + stop_signal, "stopped", r.reason};
    case LaunchEnd::kError:
      return {JobVerdict::kExit, 1, "failed",
              "launch " + std::to_string(launch_number) + " failed: " + r.reason};
    case LaunchEnd::kFailed: {
      std::string message = "the job failed: " + r.reason;
      if (outcome && outcome->root_cause) {
        const launcher::WorkerFailure& f = *outcome->root_cause;
        message +=
            "\nstrund: root cause: " + launcher::DescribeFailure(f) +
            (f.kind.empty() ? ""
                            : " [" + f.kind + (f.evidence.empty() ? "" : ": " + f.evidence) + "]") +
            "\nstrund: not relaunching: the strun agents restarted the workers in place "
            "as often as "
            "allowed (--max-restarts, --max-same-step-failures), and a new launch would "
            "fail the same way";
      }
      return {JobVerdict::kExit, 1, "failed", message};
    }
    case LaunchEnd::kNodeFault:
      if (relaunches >= max_relaunches)
        return {JobVerdict::kExit, 1, "failed",
                r.reason + "; not relaunching: all " + std::to_string(max_relaunches) +
                    " relaunches (--max-relaunches) are used"};
      return {JobVerdict::kRelaunch, 0, "", r.reason};
  }
  return {JobVerdict::kExit, 1, "failed", r.reason};
}

RequeueDecision DecideRequeue(const std::string& reason, bool term_received,
                              const Result<std::string>* job_state, int restart_count,
                              int max_requeues) {
  if (term_received && job_state) {
    // scancel sends SIGTERM too: a cancelled job must stay cancelled.
    if (job_state->ok() && job_state->value() == "CANCELLED")
      return {false, 128 + SIGTERM, "cancelled",
              "the job was cancelled (scancel): not requeueing it", "the job was cancelled"};
    if (!job_state->ok())
      return {
          false, 75, "requeue_failed",
          reason + "; not requeueing: SIGTERM may mean scancel, and " + job_state->error().message,
          job_state->error().message};
  }
  if (restart_count >= max_requeues) {
    const std::string why = "SLURM_RESTART_COUNT=" + std::to_string(restart_count) +
                            " has reached --max-requeues=" + std::to_string(max_requeues);
    return {false, 1, "failed", reason + "; not requeueing: " + why, why};
  }
  return {true, 75, "", "", ""};
}

}  // namespace strun::daemon

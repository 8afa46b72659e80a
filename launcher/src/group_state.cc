// The coordination state machine (see coordination.h). No I/O: the server and the single-agent
// path both drive it.
#include <time.h>

#include <algorithm>
#include <cmath>

#include "strun/clock.h"
#include "strun/launcher/coordination.h"
#include "strun/launcher/crypto.h"

namespace strun::launcher {
namespace {

// Whether each field OnMessage and WorkerFailure::FromJson read has the type they expect.
// nlohmann's value() throws on a mismatch (which would end the service's thread) and converts a
// float to int with undefined behaviour when out of range; a message from another strun version
// or a buggy agent is ignored like one of an unknown type instead (found by tests/fuzz).
bool FieldsHave(const Json& m, std::initializer_list<const char*> keys,
                bool (Json::*is_type)() const) {
  for (const char* key : keys) {
    auto it = m.find(key);
    if (it != m.end() && !((*it).*is_type)()) return false;
  }
  return true;
}

bool WellTyped(const Json& m) {
  if (!FieldsHave(m, {"type", "node", "reason"}, &Json::is_string) ||
      !FieldsHave(m, {"attempt", "step", "code"}, &Json::is_number_integer) ||
      !FieldsHave(m, {"preempted"}, &Json::is_boolean))
    return false;
  auto failures = m.find("failures");
  if (failures == m.end() || !failures->is_array()) return true;
  for (const auto& f : *failures) {
    if (!f.is_object() ||
        !FieldsHave(f, {"node", "error_file", "error_data", "message", "kind", "evidence"},
                    &Json::is_string) ||
        !FieldsHave(f, {"rank", "local_rank", "pid", "exitcode", "step"},
                    &Json::is_number_integer) ||
        !FieldsHave(f, {"timestamp"}, &Json::is_number))
      return false;
  }
  return true;
}
}  // namespace

GroupState::GroupState(int num_agents, RestartPolicy policy, std::string master_addr, std::function<int()> pick_port)
    : num_agents_(num_agents),
      policy_(policy),
      master_addr_(std::move(master_addr)),
      pick_port_(std::move(pick_port)),
      ready_(size_t(num_agents), false),
      succeeded_(size_t(num_agents), false),
      stopped_(size_t(num_agents), false),
      seen_(size_t(num_agents), false),
      preempted_(size_t(num_agents), false),
      nodes_(size_t(num_agents)) {}

void GroupState::Emit(Json event) {
  event["time"] = WallSeconds();
  events_.push_back(std::move(event));
}

std::vector<Json> GroupState::TakeEvents() {
  std::vector<Json> out;
  out.swap(events_);
  return out;
}

std::vector<Outgoing> GroupState::Start() {
  phase_ = Phase::kRunning;
  std::fill(succeeded_.begin(), succeeded_.end(), false);
  std::fill(ready_.begin(), ready_.end(), false);
  std::fill(preempted_.begin(), preempted_.end(), false);
  failures_.clear();
  int port = pick_port_();
  const double delay = next_delay_s_;
  next_delay_s_ = 0;
  Emit({{"event", "started"}, {"attempt", attempt_}, {"restart_count", restarts_used_}, {"delay_s", delay}});
  return {{-1,
           {{"type", "start"},
            {"attempt", attempt_},
            {"restart_count", restarts_used_},
            {"master_addr", master_addr_},
            {"master_port", port},
            {"delay_s", delay}}}};
}

std::vector<Outgoing> GroupState::Exit(int code, const std::string& reason, const std::optional<WorkerFailure>& root) {
  phase_ = Phase::kFinished;
  Json failures = Json::array();
  for (const auto& f : failures_) failures.push_back(f.ToJson());
  const bool preempted = code == 0 && std::count(preempted_.begin(), preempted_.end(), true) > 0;
  outcome_ = {{"type", "exit"},
              {"code", code},
              {"reason", reason},
              {"attempt", attempt_},
              {"restart_count", restarts_used_},
              {"preempted", preempted},
              {"high_water_step", high_water_},
              {"lost_agents", lost_agents_},
              {"root_cause", root ? root->ToJson() : Json()},
              {"failures", failures}};
  Json event = outcome_;
  event.erase("type");
  event["event"] = "exit";
  Emit(std::move(event));
  return {{-1, outcome_}};
}

std::vector<Outgoing> GroupState::MaybeFinishStop() {
  if (std::count(stopped_.begin(), stopped_.end(), true) != num_agents_) return {};
  const bool repeated = progress_seen_ && same_step_failures_ >= policy_.max_same_step_failures;
  if (restarts_used_ < policy_.max_restarts && !repeated) {
    ++restarts_used_;
    ++attempt_;
    // Back-off: the first failure after progress restarts at once; each further one without a
    // new step waits longer, so a broken node or file system is not hammered.
    if (failures_without_progress_ > 1)
      next_delay_s_ = std::min(policy_.backoff_max_s,
                               policy_.backoff_initial_s * std::pow(2.0, failures_without_progress_ - 2));
    Emit({{"event", "restart"}, {"restart_count", restarts_used_}, {"delay_s", next_delay_s_}, {"reason", stop_reason_}});
    return Start();
  }
  if (failures_.empty()) return Exit(1, "the worker group stopped without a failure report", std::nullopt);
  const WorkerFailure root = RootCause(failures_);
  std::string reason = DescribeFailure(root);
  if (repeated)
    reason += "; the job failed " + std::to_string(same_step_failures_) + " times at step " +
              std::to_string(failure_step_) + " without getting past it, so it is not restarted again (" +
              "--max-same-step-failures=" + std::to_string(policy_.max_same_step_failures) + ")";
  else if (policy_.max_restarts > 0)
    reason += "; all " + std::to_string(policy_.max_restarts) + " restarts used";
  return Exit(root.ShellExitCode(), reason, root);
}

std::vector<Outgoing> GroupState::OnMessage(int agent, const Json& m) {
  if (agent < 0 || agent >= num_agents_ || !m.is_object() || !WellTyped(m)) return {};
  const std::string type = m.value("type", "");
  const int attempt = m.value("attempt", -1);
  if (!seen_[size_t(agent)]) {
    seen_[size_t(agent)] = true;
    ++joined_;
  }
  if (phase_ == Phase::kFinished) return {};
  if (type == "ready") {
    if (phase_ != Phase::kWaiting || attempt != attempt_) return {};
    if (!ready_[size_t(agent)]) {
      nodes_[size_t(agent)] = m.value("node", std::string());
      Emit({{"event", "agent_joined"}, {"agent", agent}, {"node", nodes_[size_t(agent)]}});
    }
    ready_[size_t(agent)] = true;
    if (std::count(ready_.begin(), ready_.end(), true) == num_agents_) return Start();
    return {};
  }
  if (type == "progress") {
    const long long step = m.value("step", -1LL);
    const bool preempted = m.value("preempted", false);
    if (attempt == attempt_ && attempt_ > 0 && resumed_attempt_ != attempt_ && phase_ == Phase::kRunning) {
      // Training runs again after a restart: the end of the time a failure cost (strund, bench).
      resumed_attempt_ = attempt_;
      Emit({{"event", "resumed"}, {"attempt", attempt_}, {"step", step}});
    }
    if (step > high_water_ || preempted) {
      progress_seen_ = true;
      if (step > high_water_) high_water_ = step;
      if (high_water_ > failure_step_) failures_without_progress_ = 0;
      Emit({{"event", "progress"}, {"step", step}, {"agent", agent}, {"preempted", preempted}});
    }
    return {};
  }
  if (type == "failed" || type == "stopped") {
    if (attempt != attempt_) return {};
    if (m.contains("failures") && m["failures"].is_array())
      for (const auto& f : m["failures"]) {
        WorkerFailure w = WorkerFailure::FromJson(f);
        ClassifyFailure(w);
        failures_.push_back(std::move(w));
      }
    if (type == "failed" && phase_ == Phase::kRunning) {
      phase_ = Phase::kStopping;
      std::fill(stopped_.begin(), stopped_.end(), false);
      const WorkerFailure first = failures_.empty() ? WorkerFailure{} : RootCause(failures_);
      stop_reason_ = failures_.empty() ? "a worker failed" : DescribeFailure(first);
      // The same-step rule and back-off count failures, not failed workers: one per attempt.
      ++failures_without_progress_;
      if (progress_seen_) {
        if (high_water_ == failure_step_) {
          ++same_step_failures_;
        } else {
          failure_step_ = high_water_;
          same_step_failures_ = 1;
        }
      }
      Json fs = Json::array();
      for (const auto& f : failures_) fs.push_back(f.ToJson());
      Emit({{"event", "failure"},
            {"attempt", attempt_},
            {"kind", failures_.empty() ? "exit_code" : first.kind},
            {"evidence", failures_.empty() ? "" : first.evidence},
            {"reason", stop_reason_},
            {"step", high_water_},
            {"root_cause", failures_.empty() ? Json() : first.ToJson()},
            {"failures", fs}});
      return {{-1, {{"type", "stop"}, {"attempt", attempt_}, {"reason", stop_reason_}}}};
    }
    if (type == "stopped" && phase_ == Phase::kStopping) {
      stopped_[size_t(agent)] = true;
      return MaybeFinishStop();
    }
    return {};
  }
  if (type == "succeeded") {
    if (attempt != attempt_ || phase_ != Phase::kRunning) return {};
    succeeded_[size_t(agent)] = true;
    if (m.value("preempted", false)) preempted_[size_t(agent)] = true;
    if (std::count(succeeded_.begin(), succeeded_.end(), true) == num_agents_) {
      if (std::count(preempted_.begin(), preempted_.end(), true) > 0)
        return Exit(0,
                    "the workers wrote a pre-emption checkpoint at step " + std::to_string(high_water_) +
                        " and stopped; requeue the job to continue",
                    std::nullopt);
      return Exit(0, "every worker succeeded", std::nullopt);
    }
    return {};
  }
  if (type == "aborted") {
    std::optional<WorkerFailure> root;
    if (!failures_.empty()) root = RootCause(failures_);
    return Exit(m.value("code", 1), m.value("reason", std::string("an agent was stopped")), root);
  }
  return {};
}

std::vector<Outgoing> GroupState::OnAgentLost(int agent) {
  if (phase_ == Phase::kFinished) return {};
  const std::string node = agent >= 0 && agent < num_agents_ ? nodes_[size_t(agent)] : "";
  lost_agents_.push_back({{"agent", agent}, {"node", node}});
  Emit({{"event", "agent_lost"},
        {"agent", agent},
        {"node", node},
        {"kind", "lost_agent"},
        {"evidence", "the connection to strun agent " + std::to_string(agent) + (node.empty() ? "" : " on " + node) +
                         " closed or timed out"}});
  std::optional<WorkerFailure> root;
  if (!failures_.empty()) root = RootCause(failures_);
  return Exit(1,
              "lost the connection to strun agent " + std::to_string(agent) + (node.empty() ? "" : " on " + node) +
                  " (it was killed or its node failed); stopping every node",
              root);
}

std::vector<Outgoing> GroupState::OnJoinTimeout() {
  if (phase_ != Phase::kWaiting || attempt_ != 0) return {};
  int ready = int(std::count(ready_.begin(), ready_.end(), true));
  std::string missing;
  for (int i = 0; i < num_agents_ && missing.size() < 200; ++i) {
    if (ready_[size_t(i)]) continue;
    if (!missing.empty()) missing += ',';
    missing += std::to_string(i);
  }
  return Exit(1,
              "only " + std::to_string(ready) + " of " + std::to_string(num_agents_) +
                  " strun agents joined in time (missing agents: " + missing +
                  "); raise the limit with --rdzv-conf join_timeout=SECONDS",
              std::nullopt);
}

std::string DeriveCoordinationKey(const std::string& secret, const std::string& run_key) {
  return DigestBytes(HmacSha256(secret, "strun-coordination-v1|" + run_key));
}

}  // namespace strun::launcher

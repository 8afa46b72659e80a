// The coordination state machine (see coordination.h). No I/O: the server and the single-agent
// path both drive it.
#include <algorithm>

#include "strun/launcher/coordination.h"

namespace strun::launcher {

GroupState::GroupState(int num_agents, int max_restarts, std::string master_addr, std::function<int()> pick_port)
    : num_agents_(num_agents),
      max_restarts_(max_restarts),
      master_addr_(std::move(master_addr)),
      pick_port_(std::move(pick_port)),
      ready_(size_t(num_agents), false),
      succeeded_(size_t(num_agents), false),
      stopped_(size_t(num_agents), false),
      seen_(size_t(num_agents), false) {}

std::vector<Outgoing> GroupState::Start() {
  phase_ = Phase::kRunning;
  std::fill(succeeded_.begin(), succeeded_.end(), false);
  std::fill(ready_.begin(), ready_.end(), false);
  failures_.clear();
  int port = pick_port_();
  return {{-1,
           {{"type", "start"},
            {"attempt", attempt_},
            {"restart_count", restarts_used_},
            {"master_addr", master_addr_},
            {"master_port", port}}}};
}

std::vector<Outgoing> GroupState::Exit(int code, const std::string& reason, const std::optional<WorkerFailure>& root) {
  phase_ = Phase::kFinished;
  Json failures = Json::array();
  for (const auto& f : failures_) failures.push_back(f.ToJson());
  return {{-1,
           {{"type", "exit"},
            {"code", code},
            {"reason", reason},
            {"attempt", attempt_},
            {"root_cause", root ? root->ToJson() : Json()},
            {"failures", failures}}}};
}

std::vector<Outgoing> GroupState::MaybeFinishStop() {
  if (std::count(stopped_.begin(), stopped_.end(), true) != num_agents_) return {};
  if (restarts_used_ < max_restarts_) {
    ++restarts_used_;
    ++attempt_;
    return Start();
  }
  if (failures_.empty()) return Exit(1, "the worker group stopped without a failure report", std::nullopt);
  const WorkerFailure root = RootCause(failures_);
  std::string reason = DescribeFailure(root);
  if (max_restarts_ > 0) reason += "; all " + std::to_string(max_restarts_) + " restarts used";
  return Exit(root.ShellExitCode(), reason, root);
}

std::vector<Outgoing> GroupState::OnMessage(int agent, const Json& m) {
  if (agent < 0 || agent >= num_agents_ || !m.is_object()) return {};
  const std::string type = m.value("type", "");
  const int attempt = m.value("attempt", -1);
  if (!seen_[size_t(agent)]) {
    seen_[size_t(agent)] = true;
    ++joined_;
  }
  if (phase_ == Phase::kFinished) return {};
  if (type == "ready") {
    if (phase_ != Phase::kWaiting || attempt != attempt_) return {};
    ready_[size_t(agent)] = true;
    if (std::count(ready_.begin(), ready_.end(), true) == num_agents_) return Start();
    return {};
  }
  if (type == "failed" || type == "stopped") {
    if (attempt != attempt_) return {};
    if (m.contains("failures") && m["failures"].is_array())
      for (const auto& f : m["failures"]) failures_.push_back(WorkerFailure::FromJson(f));
    if (type == "failed" && phase_ == Phase::kRunning) {
      phase_ = Phase::kStopping;
      std::fill(stopped_.begin(), stopped_.end(), false);
      const WorkerFailure& first = failures_.empty() ? WorkerFailure{} : RootCause(failures_);
      stop_reason_ = failures_.empty() ? "a worker failed" : DescribeFailure(first);
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
    if (std::count(succeeded_.begin(), succeeded_.end(), true) == num_agents_)
      return Exit(0, "every worker succeeded", std::nullopt);
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
  std::optional<WorkerFailure> root;
  if (!failures_.empty()) root = RootCause(failures_);
  return Exit(1,
              "lost the connection to strun agent " + std::to_string(agent) +
                  " (it was killed or its node failed); stopping every node",
              root);
}

std::vector<Outgoing> GroupState::OnJoinTimeout() {
  if (phase_ != Phase::kWaiting || attempt_ != 0) return {};
  int ready = int(std::count(ready_.begin(), ready_.end(), true));
  std::string missing;
  for (int i = 0; i < num_agents_ && missing.size() < 200; ++i)
    if (!ready_[size_t(i)]) missing += (missing.empty() ? "" : ",") + std::to_string(i);
  return Exit(1,
              "only " + std::to_string(ready) + " of " + std::to_string(num_agents_) +
                  " strun agents joined in time (missing agents: " + missing +
                  "); raise the limit with --rdzv-conf join_timeout=SECONDS",
              std::nullopt);
}

}  // namespace strun::launcher

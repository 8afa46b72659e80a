// The coordination state machine (coord_service.h). No I/O: the server and the single-agent path
// both drive it.
#include <algorithm>
#include <cmath>

#include "strun/clock.h"
#include "strun/launcher/coord_service.h"

namespace strun::launcher {

GroupState::GroupState(int num_agents, RestartPolicy policy, std::string master_addr,
                       std::function<int()> pick_port)
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

void GroupState::Emit(coord::EventBody event) {
  events_.push_back({WallSeconds(), std::move(event)});
}

std::vector<coord::Event> GroupState::TakeTypedEvents() {
  std::vector<coord::Event> out;
  out.swap(events_);
  return out;
}

std::vector<Json> GroupState::TakeEvents() {
  std::vector<Json> out;
  for (const auto& e : TakeTypedEvents()) out.push_back(coord::ToJson(e));
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
  Emit(coord::Started{attempt_, restarts_used_, delay});
  return {{-1, coord::Start{attempt_, restarts_used_, master_addr_, port, delay}}};
}

std::vector<Outgoing> GroupState::Exit(int code, const std::string& reason,
                                       const std::optional<WorkerFailure>& root) {
  phase_ = Phase::kFinished;
  coord::Exit exit;
  exit.code = code;
  exit.reason = reason;
  exit.attempt = attempt_;
  exit.restart_count = restarts_used_;
  exit.preempted = code == 0 && std::count(preempted_.begin(), preempted_.end(), true) > 0;
  exit.high_water_step = high_water_;
  exit.lost_agents = lost_agents_;
  exit.root_cause = root;
  exit.failures = failures_;
  outcome_ = exit;
  Emit(exit);
  return {{-1, std::move(exit)}};
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
      next_delay_s_ =
          std::min(policy_.backoff_max_s,
                   policy_.backoff_initial_s * std::pow(2.0, failures_without_progress_ - 2));
    Emit(coord::RestartEvent{restarts_used_, next_delay_s_, stop_reason_});
    return Start();
  }
  if (failures_.empty())
    return Exit(1, "the worker group stopped without a failure report", std::nullopt);
  const WorkerFailure root = RootCause(failures_);
  std::string reason = DescribeFailure(root);
  if (repeated)
    reason += "; the job failed " + std::to_string(same_step_failures_) + " times at step " +
              std::to_string(failure_step_) +
              " without getting past it, so it is not restarted again (" +
              "--max-same-step-failures=" + std::to_string(policy_.max_same_step_failures) + ")";
  else if (policy_.max_restarts > 0)
    reason += "; all " + std::to_string(policy_.max_restarts) + " restarts used";
  return Exit(root.ShellExitCode(), reason, root);
}

std::vector<Outgoing> GroupState::OnMessage(int agent, const Json& message) {
  // A message from another strun version or a buggy agent is ignored (found by tests/fuzz).
  auto parsed = coord::ParseAgentMessage(message);
  if (!parsed) return {};
  return OnMessage(agent, *parsed);
}

std::vector<Outgoing> GroupState::OnMessage(int agent, const coord::AgentMessage& m) {
  if (agent < 0 || agent >= num_agents_) return {};
  if (!seen_[size_t(agent)]) {
    seen_[size_t(agent)] = true;
    ++joined_;
  }
  if (phase_ == Phase::kFinished) return {};
  if (auto* r = std::get_if<coord::Ready>(&m)) return OnReady(agent, *r);
  if (auto* p = std::get_if<coord::Progress>(&m)) return OnProgress(agent, *p);
  if (auto* f = std::get_if<coord::Failed>(&m))
    return OnFailedOrStopped(agent, f->attempt, f->failures, true);
  if (auto* s = std::get_if<coord::Stopped>(&m))
    return OnFailedOrStopped(agent, s->attempt, s->failures, false);
  if (auto* s = std::get_if<coord::Succeeded>(&m)) return OnSucceeded(agent, *s);
  if (auto* a = std::get_if<coord::Aborted>(&m)) {
    std::optional<WorkerFailure> root;
    if (!failures_.empty()) root = RootCause(failures_);
    return Exit(a->code, a->reason, root);
  }
  return {};  // UnknownMessage
}

std::vector<Outgoing> GroupState::OnReady(int agent, const coord::Ready& m) {
  if (phase_ != Phase::kWaiting || m.attempt != attempt_) return {};
  if (!ready_[size_t(agent)]) {
    nodes_[size_t(agent)] = m.node;
    Emit(coord::AgentJoined{agent, m.node});
  }
  ready_[size_t(agent)] = true;
  if (std::count(ready_.begin(), ready_.end(), true) == num_agents_) return Start();
  return {};
}

std::vector<Outgoing> GroupState::OnProgress(int agent, const coord::Progress& m) {
  if (m.attempt == attempt_ && attempt_ > 0 && resumed_attempt_ != attempt_ &&
      phase_ == Phase::kRunning) {
    // Training runs again after a restart: the end of the time a failure cost (strund, bench).
    resumed_attempt_ = attempt_;
    Emit(coord::Resumed{attempt_, m.step});
  }
  if (m.step > high_water_ || m.preempted) {
    progress_seen_ = true;
    if (m.step > high_water_) high_water_ = m.step;
    if (high_water_ > failure_step_) failures_without_progress_ = 0;
    Emit(coord::ProgressEvent{m.step, agent, m.preempted});
  }
  return {};
}

std::vector<Outgoing> GroupState::OnFailedOrStopped(int agent, int attempt,
                                                    const std::vector<WorkerFailure>& failures,
                                                    bool failed) {
  if (attempt != attempt_) return {};
  for (WorkerFailure w : failures) {
    ClassifyFailure(w);
    failures_.push_back(std::move(w));
  }
  if (failed && phase_ == Phase::kRunning) {
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
    coord::FailureEvent event;
    event.attempt = attempt_;
    event.kind = failures_.empty() ? "exit_code" : first.kind;
    event.evidence = failures_.empty() ? "" : first.evidence;
    event.reason = stop_reason_;
    event.step = high_water_;
    if (!failures_.empty()) event.root_cause = first;
    event.failures = failures_;
    Emit(std::move(event));
    return {{-1, coord::Stop{attempt_, stop_reason_}}};
  }
  if (!failed && phase_ == Phase::kStopping) {
    stopped_[size_t(agent)] = true;
    return MaybeFinishStop();
  }
  return {};
}

std::vector<Outgoing> GroupState::OnSucceeded(int agent, const coord::Succeeded& m) {
  if (m.attempt != attempt_ || phase_ != Phase::kRunning) return {};
  succeeded_[size_t(agent)] = true;
  if (m.preempted) preempted_[size_t(agent)] = true;
  if (std::count(succeeded_.begin(), succeeded_.end(), true) != num_agents_) return {};
  if (std::count(preempted_.begin(), preempted_.end(), true) > 0)
    return Exit(0,
                "the workers wrote a pre-emption checkpoint at step " +
                    std::to_string(high_water_) + " and stopped; requeue the job to continue",
                std::nullopt);
  return Exit(0, "every worker succeeded", std::nullopt);
}

std::vector<Outgoing> GroupState::OnAgentLost(int agent) {
  if (phase_ == Phase::kFinished) return {};
  const std::string node = agent >= 0 && agent < num_agents_ ? nodes_[size_t(agent)] : "";
  lost_agents_.push_back({agent, node});
  const std::string on_node = node.empty() ? "" : " on " + node;
  Emit(coord::AgentLost{
      agent, node, "lost_agent",
      "the connection to strun agent " + std::to_string(agent) + on_node + " closed or timed out"});
  std::optional<WorkerFailure> root;
  if (!failures_.empty()) root = RootCause(failures_);
  return Exit(1,
              "lost the connection to strun agent " + std::to_string(agent) + on_node +
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

}  // namespace strun::launcher

// strund's supervision loop (supervisor.h): one poll loop over a signalfd (srun's exit, strund's
// signals) and an eventfd that the coordination service's thread rings for each event.
#include "strun/daemon/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>

#include "strun/clock.h"
#include "strun/daemon/accounting.h"
#include "strun/daemon/event_log.h"
#include "strun/daemon/node_selection.h"
#include "strun/daemon/slurm_broker.h"
#include "strun/daemon/srun_command.h"
#include "strun/daemon/supervision.h"
#include "strun/daemon/tensorboard_events.h"
#include "strun/launcher/coord_service.h"
#include "strun/launcher/process.h"
#include "strun/slurm/hostlist.h"
#include "strun/slurm/node_address.h"
#include "strun/slurm/node_state.h"

namespace strun::daemon {
namespace {

using launcher::CoordinationServer;
using launcher::Json;

// strun's clocks (strun/clock.h).
constexpr auto Now = &WallSeconds;
constexpr auto Mono = &MonoSeconds;

std::string Join(const std::vector<std::string>& v, const std::string& sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

struct LaunchResult {
  LaunchEnd end = LaunchEnd::kError;
  std::string reason;
  std::optional<coord::Exit> outcome;  // the service's exit message, none when there was none
};

class Supervisor {
 public:
  Supervisor(const DaemonOptions& options, EnvMap env) : o_(options), env_(std::move(env)) {}
  ~Supervisor();
  int Run();

 private:
  Status Setup();
  std::optional<std::string> Env(const std::string& name) const {
    auto it = env_.find(name);
    if (it == env_.end()) return std::nullopt;
    return it->second;
  }
  void Log(const std::string& event, const Json& fields, bool sync = false);
  void OnServiceEvent(const coord::Event& e);
  void DrainEvents();
  void HandleSignal(int sig);
  // Waits up to `timeout_s` for a signal or a service event and handles what came.
  void Pump(double timeout_s);
  // The unhealthy nodes among `nodes` (node -> why); logs and returns nothing when slurmctld
  // cannot be asked.
  std::map<std::string, std::string> UnhealthyNodes(const std::vector<std::string>& nodes);
  void Exclude(const std::string& node, const std::string& kind, const std::string& evidence);
  LaunchResult RunLaunch(const std::vector<std::string>& nodes);
  // SIGTERM to srun, SIGKILL after `grace_s`, then slurm_kill_job_step on what is left.
  void StopStep(const std::string& reason, double grace_s);
  int Requeue(const std::string& reason);
  // Continues on fewer nodes (DecideNodeCount's kShrink): logs it and sets nodes_needed_.
  void Shrink(const NodeCountDecision& d);
  int Finish(int code, const std::string& result, const std::string& message);

  DaemonOptions o_;
  EnvMap env_;
  SrunCommand srun_;
  std::string job_id_;
  uint32_t job_id_num_ = 0;
  int restart_count_ = 0;
  std::vector<std::string> allocation_;
  int nodes_needed_ = 0;  // of the next launch: MAX, fewer after a shrink
  std::optional<ElasticBatch> elastic_;
  std::optional<int> env_tasks_per_node_;
  int coord_port_ = 0;
  std::string coord_host_;
  std::unique_ptr<SlurmBroker> broker_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<TensorBoardEvents> tensorboard_;  // tensorboard_events.h; null when off
  EventContext ctx_;
  RecoveryAccounting accounting_;
  ProgressLogFilter progress_filter_;
  std::map<std::string, std::string> excluded_;  // node -> why
  std::vector<std::string> excluded_order_;
  std::vector<std::string> previous_;
  std::string last_fault_;
  int relaunches_ = 0;
  double start_time_ = 0;

  int signal_fd_ = -1;
  int event_fd_ = -1;
  std::mutex events_mu_;
  std::deque<coord::Event> events_;

  // The current launch.
  pid_t srun_pid_ = -1;
  bool srun_running_ = false;
  int srun_status_ = 0;
  std::vector<uint32_t> steps_before_;
  int joined_ = 0;
  bool outcome_seen_ = false;
  bool stopping_ = false;  // strund is stopping the step: lost agents are its own doing
  std::optional<std::pair<std::string, std::string>> agent_lost_;  // node, evidence
  // Signals.
  bool preempt_requested_ = false;
  bool term_received_ = false;
  double preempt_deadline_ = 0;  // monotonic, 0 = none
  int stop_signal_ = 0;
};

Supervisor::~Supervisor() {
  if (srun_running_ && srun_pid_ > 0) {
    kill(-srun_pid_, SIGKILL);
    waitpid(srun_pid_, nullptr, 0);
  }
  if (signal_fd_ >= 0) close(signal_fd_);
  if (event_fd_ >= 0) close(event_fd_);
}

Status Supervisor::Setup() {
  start_time_ = Now();
  auto setup = ReadJobSetup(o_, env_);
  if (!setup) return setup.error();
  job_id_ = setup->job_id;
  job_id_num_ = setup->job_id_num;
  allocation_ = std::move(setup->allocation);
  restart_count_ = setup->restart_count;
  env_tasks_per_node_ = setup->tasks_per_node;
  coord_port_ = setup->coord_port;
  srun_ = std::move(setup->srun);
  nodes_needed_ = setup->nodes_needed;
  elastic_ = setup->elastic;
  for (const auto& n : srun_.exclude) excluded_[n] = "srun --exclude";
  previous_ = srun_.nodelist;

  // Every libslurm call from here on goes through the broker: it must be forked while strund
  // has no thread yet (slurm_broker.h).
  auto broker = SlurmBroker::Start();
  if (!broker) return broker.error();
  broker_ = std::move(*broker);

  // The address the nodes reach this one at.
  if (auto self = Env("SLURMD_NODENAME"); self && !self->empty()) {
    auto addr = broker_->NodeAddress(*self);
    if (!addr) return MakeError("SLURMD_NODENAME=" + *self + ": " + addr.error().message);
    coord_host_ = *addr;
  } else {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    auto addr = slurm::ResolveHost(host);
    if (!addr)
      return MakeError("no address for this host (SLURMD_NODENAME is not set): " +
                       addr.error().message);
    coord_host_ = *addr;
  }

  const std::string log_path =
      o_.event_log.empty() ? "./strund-" + job_id_ + ".events.jsonl" : o_.event_log;
  auto log = EventLog::Open(log_path);
  if (!log) return log.error();
  log_ = std::move(*log);
  // A requeued job continues the accounting of its earlier runs.
  int64_t job_lines = 0;
  for (const Json& line : ReadEventLog(log_path)) {
    const auto event = line.find("event"), job = line.find("job_id");
    if (job != line.end() && *job == job_id_) ++job_lines;
    if (event == line.end() || job == line.end() || *event != "summary" || *job != job_id_)
      continue;
    accounting_.Restore(line);
  }
  const std::string tensorboard_dir =
      !o_.tensorboard_dir.empty() ? o_.tensorboard_dir : Env("STRUN_TENSORBOARD_DIR").value_or("");
  if (!tensorboard_dir.empty()) {
    auto tb = TensorBoardEvents::Open(tensorboard_dir, job_id_, job_lines, Now());
    if (tb) {
      tensorboard_ = std::move(*tb);
    } else {
      std::fprintf(stderr,
                   "strund: warning: --tensorboard-dir / STRUN_TENSORBOARD_DIR: %s; the job runs "
                   "without strund's TensorBoard events\n",
                   tb.error().message.c_str());
    }
  }

  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, s);
  // Blocked before the coordination service's thread exists, so every thread inherits the mask
  // and the signals reach only the signalfd.
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0)
    return MakeError(std::string("sigprocmask: ") + std::strerror(errno));
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) return MakeError(std::string("signalfd: ") + std::strerror(errno));
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) return MakeError(std::string("eventfd: ") + std::strerror(errno));
  ctx_.job_id = job_id_;
  ctx_.restart_count = restart_count_;
  ctx_.launch = 0;
  Json excluded = Json::array();
  for (const auto& [n, why] : excluded_) excluded.push_back({{"node", n}, {"reason", why}});
  Json elastic = nullptr;
  if (elastic_)
    elastic = {{"min_nodes", elastic_->min_nodes},
               {"procs_per_node", elastic_->procs_per_node},
               {"model_parallel", elastic_->model_parallel},
               {"micro_batches", elastic_->micro_batches}};
  Log("strund_start",
      {{"nodes", nodes_needed_},
       {"elastic", elastic},
       {"allocation", allocation_},
       {"excluded", excluded},
       {"command", o_.command},
       {"coord_host", coord_host_},
       {"max_restarts", o_.max_restarts},
       {"max_relaunches", o_.max_relaunches},
       {"max_requeues", o_.max_requeues}},
      true);
  return {};
}

void Supervisor::Log(const std::string& event, const Json& fields, bool sync) {
  if (!log_) return;
  const double now = Now();
  const Json line = MakeEventLine(event, fields, ctx_, now);
  if (auto st = log_->Append(line, sync); !st)
    std::fprintf(stderr, "strund: warning: %s\n", st.error().message.c_str());
  if (!tensorboard_) return;
  if (auto st = tensorboard_->Add(line, accounting_.Summarize(now)); !st) {
    std::fprintf(stderr, "strund: warning: %s; strund's TensorBoard events stop here\n",
                 st.error().message.c_str());
    tensorboard_.reset();
  }
}

void Supervisor::OnServiceEvent(const coord::Event& e) {
  const double t = e.time;
  Json fields = coord::ToJson(e);
  const std::string type = fields["event"];
  fields.erase("event");
  if (const auto* p = std::get_if<coord::ProgressEvent>(&e.body)) {
    auto recovered = accounting_.OnProgress(p->step, t);
    if (recovered) {
      Log("recovered", {{"time", t}, {"step", p->step}, {"time_lost_s", *recovered}}, true);
      progress_filter_.Reset();
    }
    if (progress_filter_.ShouldLog(t) || p->preempted) Log("progress", fields);
    return;
  }
  if (std::holds_alternative<coord::FailureEvent>(e.body)) {
    accounting_.OnFault(t);
    progress_filter_.Reset();
    Log(type, fields, true);
    return;
  }
  if (std::holds_alternative<coord::RestartEvent>(e.body)) {
    accounting_.CountRestart();
    progress_filter_.Reset();
    Log(type, fields, true);
    return;
  }
  if (std::holds_alternative<coord::AgentJoined>(e.body)) ++joined_;
  const auto* lost = std::get_if<coord::AgentLost>(&e.body);
  if (lost && !stopping_) {
    accounting_.OnFault(t);
    if (!agent_lost_) agent_lost_ = std::make_pair(lost->node, lost->evidence);
  }
  const bool exit = std::holds_alternative<coord::Exit>(e.body);
  if (exit) outcome_seen_ = true;
  Log(type, fields, lost || exit || std::holds_alternative<coord::Started>(e.body));
}

void Supervisor::DrainEvents() {
  std::deque<coord::Event> events;
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    events.swap(events_);
  }
  for (const coord::Event& e : events) OnServiceEvent(e);
}

void Supervisor::HandleSignal(int sig) {
  if (sig == SIGCHLD) {
    if (!srun_running_) return;
    int status = 0;
    pid_t r = waitpid(srun_pid_, &status, WNOHANG);
    if (r == srun_pid_) {
      srun_running_ = false;
      srun_status_ = status;
    }
    return;
  }
  std::string action;
  if (sig == SIGTERM) term_received_ = true;
  if (sig == SIGUSR1 || sig == SIGTERM) {
    // Pre-emption or the time limit: the workers checkpoint and exit; then the job is requeued.
    preempt_requested_ = true;
    const double grace =
        sig == SIGTERM ? std::min(o_.preempt_timeout_s, 20.0) : o_.preempt_timeout_s;
    const double deadline = Mono() + grace;
    if (preempt_deadline_ == 0 || deadline < preempt_deadline_) preempt_deadline_ = deadline;
    action = "forwarded to srun; requeue once the step has stopped (at most " +
             std::to_string(int(grace)) + " s)";
  } else if (sig == SIGUSR2) {
    action = "forwarded to srun";
  } else {
    if (stop_signal_ == 0) stop_signal_ = sig;
    action = "stopping the step and exiting";
  }
  if (srun_running_ && sig != SIGINT && sig != SIGHUP) kill(srun_pid_, sig);
  std::fprintf(stderr, "strund: %s: %s\n", strsignal(sig), action.c_str());
  Log("signal", {{"signal", strsignal(sig)}, {"number", sig}, {"action", action}}, true);
}

void Supervisor::Pump(double timeout_s) {
  pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {event_fd_, POLLIN, 0}};
  int ms = int(std::clamp(timeout_s, 0.0, 3600.0) * 1000.0);
  int r = poll(fds, 2, ms);
  if (r < 0 && errno != EINTR)
    std::fprintf(stderr, "strund: warning: poll: %s\n", std::strerror(errno));
  if (fds[0].revents & POLLIN) {
    signalfd_siginfo si;
    while (read(signal_fd_, &si, sizeof si) == ssize_t(sizeof si)) HandleSignal(int(si.ssi_signo));
  }
  // SIGCHLDs merge (srun's with the Slurm broker's): always look at srun; it is one waitpid.
  HandleSignal(SIGCHLD);
  if (fds[1].revents & POLLIN) {
    uint64_t n;
    (void)!read(event_fd_, &n, sizeof n);
  }
  DrainEvents();
}

std::map<std::string, std::string> Supervisor::UnhealthyNodes(
    const std::vector<std::string>& nodes) {
  std::map<std::string, std::string> bad;
  auto states = broker_->NodeStates(nodes);
  if (!states) {
    Log("node_check_failed", {{"error", states.error().message}});
    return bad;
  }
  for (const auto& s : *states)
    if (!s.healthy)
      bad[s.name] =
          "Slurm reports " + s.name + " " + s.state + (s.reason.empty() ? "" : ": " + s.reason);
  return bad;
}

void Supervisor::Exclude(const std::string& node, const std::string& kind,
                         const std::string& evidence) {
  if (node.empty() || excluded_.count(node)) return;
  excluded_[node] = kind;
  excluded_order_.push_back(node);
  accounting_.CountExcludedNode();
  std::fprintf(stderr, "strund: excluding node %s (%s): %s\n", node.c_str(), kind.c_str(),
               evidence.c_str());
  Log("node_excluded", {{"node", node}, {"kind", kind}, {"evidence", evidence}}, true);
}

void Supervisor::StopStep(const std::string& reason, double grace_s) {
  stopping_ = true;
  bool forced = false;
  if (srun_running_) {
    kill(srun_pid_, SIGTERM);
    const double deadline = Mono() + grace_s;
    while (srun_running_ && Mono() < deadline) Pump(std::min(0.2, deadline - Mono()));
    if (srun_running_) {
      forced = true;
      kill(-srun_pid_, SIGKILL);
      int status = 0;
      while (waitpid(srun_pid_, &status, 0) < 0 && errno == EINTR) {
      }
      srun_running_ = false;
      srun_status_ = status;
    }
  }
  // Tasks of a killed srun may still run on their nodes: end the steps this launch started.
  std::vector<uint32_t> lingering;
  auto steps = broker_->JobSteps(job_id_num_);
  if (steps) {
    for (uint32_t id : *steps)
      if (std::find(steps_before_.begin(), steps_before_.end(), id) == steps_before_.end())
        lingering.push_back(id);
    for (uint32_t id : lingering)
      if (auto st = broker_->KillJobStep(job_id_num_, id, SIGKILL); !st)
        std::fprintf(stderr, "strund: warning: %s\n", st.error().message.c_str());
    const double deadline = Mono() + 5.0;  // slurmctld normally confirms within a second
    while (!lingering.empty() && Mono() < deadline) {
      Pump(0.5);
      auto now_steps = broker_->JobSteps(job_id_num_);
      if (!now_steps) break;
      std::vector<uint32_t> still;
      for (uint32_t id : lingering)
        if (std::find(now_steps->begin(), now_steps->end(), id) != now_steps->end())
          still.push_back(id);
      lingering.swap(still);
    }
  } else {
    std::fprintf(stderr, "strund: warning: %s\n", steps.error().message.c_str());
  }
  Json left = Json::array();
  for (uint32_t id : lingering) left.push_back(job_id_ + "." + std::to_string(id));
  Log("step_stopped",
      {{"reason", reason},
       {"forced", forced},
       {"srun", DescribeWaitStatus(srun_status_)},
       {"lingering_steps", left}},
      true);
}

LaunchResult Supervisor::RunLaunch(const std::vector<std::string>& nodes) {
  LaunchResult result;
  ++ctx_.launch;
  accounting_.CountLaunch();
  progress_filter_.Reset();
  joined_ = 0;
  outcome_seen_ = false;
  stopping_ = false;
  agent_lost_.reset();
  const int num_agents = NumAgents(srun_, int(nodes.size()), env_tasks_per_node_);

  auto secret = launcher::NewJobSecret();
  if (!secret) {
    result.reason = secret.error().message;
    return result;
  }
  const std::string run_key = LaunchRunKey(job_id_, restart_count_, ctx_.launch);
  const std::string key = launcher::DeriveCoordinationKey(*secret, run_key);
  auto master = broker_->NodeAddress(nodes.front());
  if (!master) {
    result.reason = "MASTER_ADDR for " + nodes.front() + ": " + master.error().message;
    return result;
  }
  launcher::RestartPolicy policy;
  policy.max_restarts = o_.max_restarts;
  policy.backoff_initial_s = o_.backoff_initial_s;
  policy.backoff_max_s = o_.backoff_max_s;
  policy.max_same_step_failures = o_.max_same_step_failures;
  auto pick_port = [] {
    auto p = launcher::FreePort();
    return p ? *p : 0;
  };
  auto sink = [this](const coord::Event& e) {
    {
      std::lock_guard<std::mutex> lock(events_mu_);
      events_.push_back(e);
    }
    uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof one);
  };
  auto server = CoordinationServer::Start(key, {coord_port_}, num_agents, policy, *master,
                                          pick_port, o_.join_timeout_s, sink);
  if (!server) {
    result.reason = server.error().message;
    return result;
  }
  auto steps = broker_->JobSteps(job_id_num_);
  steps_before_ = steps ? *steps : std::vector<uint32_t>{};
  if (!steps) std::fprintf(stderr, "strund: warning: %s\n", steps.error().message.c_str());

  const std::vector<std::string> argv = RewriteSrunCommand(srun_, nodes);
  std::optional<ElasticLayout> layout;
  if (elastic_) {
    auto l = ElasticLayoutFor(*elastic_, int(nodes.size()));
    if (!l) {  // DecideNodeCount chose a count that fits: a bug if this happens
      result.reason = l.error().message;
      return result;
    }
    layout = *l;
  }
  const EnvMap env =
      LaunchEnvironment(env_, *secret, coord_host_, (*server)->port(), run_key,
                        srun_.ntasks.has_value(), layout, elastic_ ? elastic_->micro_batches : 0);
  auto spawned = launcher::SpawnProcessGroup(argv, env, "strund");
  if (!spawned) {
    result.reason = spawned.error().message;
    return result;
  }
  const pid_t pid = *spawned;
  setpgid(pid, pid);
  srun_pid_ = pid;
  srun_running_ = true;
  srun_status_ = 0;
  std::fprintf(stderr,
               "strund: launch %d on %s (%d strun agent%s, coordination service on %s:%d)\n",
               ctx_.launch, slurm::CompressHostlist(nodes).c_str(), num_agents,
               num_agents == 1 ? "" : "s", coord_host_.c_str(), (*server)->port());
  Log("launch",
      {{"nodes", nodes},
       {"elastic_dp", layout ? Json(layout->dp) : Json(nullptr)},
       {"num_agents", num_agents},
       {"port", (*server)->port()},
       {"master_addr", *master},
       {"command", argv}},
      true);

  // Watch.
  std::optional<std::pair<std::string, std::string>> node_fault;  // node, evidence (node_down)
  double next_check = Mono() + o_.node_check_interval_s;
  double outcome_deadline = 0;
  std::string stop_reason;
  while (true) {
    double wait = next_check - Mono();
    if (preempt_deadline_ > 0) wait = std::min(wait, preempt_deadline_ - Mono());
    if (outcome_deadline > 0) wait = std::min(wait, outcome_deadline - Mono());
    Pump(std::max(0.0, wait));
    if (outcome_seen_ && outcome_deadline == 0 && srun_running_ && !stop_signal_ && !agent_lost_)
      outcome_deadline = Mono() + o_.stop_timeout_s;
    WatchFacts facts;
    facts.stop_signal = stop_signal_;
    if (agent_lost_) facts.lost_agent_node = agent_lost_->first;
    facts.srun_running = srun_running_;
    facts.now = Mono();
    facts.outcome_deadline = outcome_deadline;
    facts.preempt_deadline = preempt_deadline_;
    const WatchDecision watch = DecideWatch(facts);
    if (watch.action == WatchDecision::kSrunEnded) break;
    if (watch.action == WatchDecision::kStop) {
      stop_reason = watch.reason;
      break;
    }
    if (Mono() >= next_check) {
      auto bad = UnhealthyNodes(nodes);
      if (!bad.empty()) {
        node_fault = *bad.begin();
        accounting_.OnFault(Now());
        stop_reason = node_fault->second;
        break;
      }
      next_check = Mono() + o_.node_check_interval_s;
    }
  }
  if (srun_running_ || !stop_reason.empty()) {
    std::fprintf(stderr, "strund: stopping the step: %s\n", stop_reason.c_str());
    // After a lost agent or node the service has already told the other agents to stop, and
    // srun may wait for the dead node's task for minutes: the short grace is enough.
    const bool fault = agent_lost_ || node_fault;
    StopStep(stop_reason, fault ? std::min(o_.stop_timeout_s, 3.0) : o_.stop_timeout_s);
  }
  stopping_ = true;
  // The agents are gone: the service finishes (an outcome, or every agent lost).
  (*server)->WaitFinished(agent_lost_ || node_fault ? 2.0 : 10.0);
  result.outcome = (*server)->exit();
  server->reset();  // joins the service's thread: no event comes after this
  DrainEvents();

  LaunchFacts facts;
  facts.stop_signal = stop_signal_;
  facts.stop_reason = stop_reason;
  facts.node_fault = node_fault;
  facts.agent_lost = agent_lost_;
  facts.outcome = result.outcome;
  facts.preempt_requested = preempt_requested_;
  std::optional<LaunchVerdict> verdict = DecideLaunchEnd(facts);
  if (!verdict) {
    // No outcome: srun ended before the service could tell how the job went.
    const auto bad = UnhealthyNodes(nodes);
    verdict = DecideWithoutOutcome({bad.begin(), bad.end()}, joined_, srun_status_);
  }
  if (verdict->fault) accounting_.OnFault(Now());
  if (verdict->exclude)
    Exclude(verdict->exclude->node, verdict->exclude->kind, verdict->exclude->evidence);
  result.end = verdict->end;
  result.reason = verdict->reason;
  return result;
}

int Supervisor::Finish(int code, const std::string& result, const std::string& message) {
  const double now = Now();
  Json summary = accounting_.ToJson(now);
  summary["exit_code"] = code;
  summary["result"] = result;
  summary["message"] = message;
  summary["excluded"] = excluded_order_;
  summary["strund_wall_s"] = now - start_time_;
  Log("summary", summary, true);
  const AccountingSummary s = accounting_.Summarize(now);
  std::fprintf(stderr, "strund: %s\n", message.c_str());
  std::fprintf(stderr, "strund: summary of job %s (run %d of the job, exit %d: %s)\n",
               job_id_.c_str(), restart_count_ + 1, code, result.c_str());
  std::fprintf(stderr,
               "strund:   launches %d, in-place restarts %d, relaunches %d, requeues %d, nodes "
               "excluded %d%s\n",
               s.launches, s.restarts, s.relaunches, s.requeues, s.nodes_excluded,
               excluded_order_.empty() ? "" : (" (" + Join(excluded_order_) + ")").c_str());
  if (s.wall_s > 0)
    std::fprintf(stderr,
                 "strund:   wall %.1f s since the first step, time lost %.1f s, goodput %.1f%%\n",
                 s.wall_s, s.lost_s, 100.0 * s.goodput);
  else
    std::fprintf(stderr,
                 "strund:   no training progress reported (workers report it on "
                 "STRUN_PROGRESS_FD), no goodput\n");
  if (log_) std::fprintf(stderr, "strund:   event log %s\n", log_->path().c_str());
  return code;
}

int Supervisor::Requeue(const std::string& reason) {
  accounting_.OnFault(Now());
  std::optional<Result<std::string>> state;
  if (term_received_) state = broker_->JobState(job_id_num_);  // scancel sends SIGTERM too
  const RequeueDecision d = DecideRequeue(reason, term_received_, state ? &*state : nullptr,
                                          restart_count_, o_.max_requeues);
  if (!d.request) {
    Log("requeue", {{"reason", reason}, {"requested", false}, {"error", d.error}}, true);
    return Finish(d.code, d.result, d.message);
  }
  Status st = broker_->RequeueJob(job_id_num_);
  if (st) accounting_.CountRequeue();
  Log("requeue",
      {{"reason", reason}, {"requested", bool(st)}, {"error", st ? "" : st.error().message}}, true);
  if (!st)
    return Finish(kExitRequeue, "requeue_failed",
                  reason + "; the job should be requeued but " + st.error().message);
  return Finish(kExitRequeue, "requeued",
                reason + "; requeued job " + job_id_ + " (it resumes from its checkpoint)");
}

void Supervisor::Shrink(const NodeCountDecision& d) {
  const ElasticLayout from = d.from.value_or(ElasticLayout{nodes_needed_, 0, 0});
  const ElasticLayout& to = *d.to;
  const std::string message =
      "continuing on " + std::to_string(to.nodes) + " node" + (to.nodes == 1 ? "" : "s") +
      " instead of " + std::to_string(from.nodes) + " (no spare node left): data parallelism " +
      std::to_string(from.dp) + " -> " + std::to_string(to.dp) + ", gradient accumulation " +
      std::to_string(from.accumulation) + " -> " + std::to_string(to.accumulation) +
      ", same global batch of " + std::to_string(elastic_->micro_batches) + " micro-batches";
  std::fprintf(stderr, "strund: %s\n", message.c_str());
  Log("shrink",
      {{"from_nodes", from.nodes},
       {"to_nodes", to.nodes},
       {"from_dp", from.dp},
       {"to_dp", to.dp},
       {"from_accumulation", from.accumulation},
       {"to_accumulation", to.accumulation},
       {"micro_batches", elastic_->micro_batches},
       {"reason", last_fault_.empty() ? "too few usable nodes at the first launch" : last_fault_},
       {"message", message}},
      true);
  nodes_needed_ = to.nodes;
}

int Supervisor::Run() {
  if (auto st = Setup(); !st) {
    std::fprintf(stderr, "strund: error: %s\n", st.error().message.c_str());
    return kExitUsage;
  }
  while (true) {
    if (stop_signal_)
      return Finish(128 + stop_signal_, "stopped",
                    std::string("stopped by ") + strsignal(stop_signal_));
    if (preempt_requested_) return Requeue("pre-emption or time limit");
    std::map<std::string, std::string> unusable = UnhealthyNodes(allocation_);
    for (const auto& [n, why] : excluded_) unusable[n] = why;
    int usable = 0;
    std::set<std::string> seen;
    for (const auto& n : allocation_)
      if (!unusable.count(n) && seen.insert(n).second) ++usable;
    const NodeCountDecision count = DecideNodeCount(nodes_needed_, usable, elastic_);
    if (count.action == NodeCountDecision::kRequeue) {
      auto short_of = SelectNodes(allocation_, unusable, previous_, nodes_needed_);
      const std::string why = short_of ? "too few usable nodes" : short_of.error().message;
      return Requeue(why + (count.reason.empty() ? "" : "; " + count.reason));
    }
    if (count.action == NodeCountDecision::kShrink) Shrink(count);
    auto selected = SelectNodes(allocation_, unusable, previous_, nodes_needed_);
    if (!selected) return Requeue(selected.error().message);
    if (ctx_.launch > 0) {
      ++relaunches_;
      accounting_.CountRelaunch();
      Log("relaunch", {{"nodes", *selected}, {"reason", last_fault_}}, true);
    }
    previous_ = *selected;
    LaunchResult r = RunLaunch(*selected);
    LaunchVerdict launch;
    launch.end = r.end;
    launch.reason = r.reason;
    const JobVerdict v = DecideAfterLaunch(launch, r.outcome, ctx_.launch, stop_signal_,
                                           relaunches_, o_.max_relaunches);
    if (v.action == JobVerdict::kExit && v.result == "failed" && !term_received_) {
      // scancel signals the step's tasks and strund (the batch step) in no set order: a step
      // that died of the cancellation's SIGTERM before strund's own arrived is still a cancelled
      // job, which slurmctld already reports as CANCELLED.
      auto state = broker_->JobState(job_id_num_);
      if (state && *state == "CANCELLED") {
        term_received_ = true;
        return Requeue(v.message);
      }
    }
    if (v.action == JobVerdict::kExit) return Finish(v.code, v.result, v.message);
    if (v.action == JobVerdict::kRequeue) return Requeue(v.message);
    last_fault_ = r.reason;
    std::fprintf(stderr, "strund: relaunching: %s\n", r.reason.c_str());
  }
}

}  // namespace

int RunSupervisor(const DaemonOptions& options, const EnvMap& env) {
  try {
    Supervisor supervisor(options, env);
    return supervisor.Run();  // the destructor kills a step still running on the way out
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strund: internal error: %s\n", e.what());
    return kExitFailed;
  }
}

}  // namespace strun::daemon

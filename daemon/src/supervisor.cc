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

#include "strun/daemon/accounting.h"
#include "strun/daemon/event_log.h"
#include "strun/daemon/node_selection.h"
#include "strun/daemon/slurm_broker.h"
#include "strun/daemon/srun_command.h"
#include "strun/daemon/tensorboard_events.h"
#include "strun/clock.h"
#include "strun/launcher/coordination.h"
#include "strun/launcher/failure.h"
#include "strun/slurm/hostlist.h"
#include "strun/slurm/node_address.h"
#include "strun/slurm/node_state.h"

namespace strun::daemon {
namespace {

using launcher::CoordinationServer;

// strun's clocks (strun/clock.h).
constexpr auto Now = &WallSeconds;
constexpr auto Mono = &MonoSeconds;

std::optional<long long> ToNumber(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(s);
}

std::string Join(const std::vector<std::string>& v, const std::string& sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "status " + std::to_string(status);
}

enum class LaunchEnd { kDone, kPreempted, kFailed, kNodeFault, kStopped, kError };

struct LaunchResult {
  LaunchEnd end = LaunchEnd::kError;
  std::string reason;
  Json outcome;  // the service's exit message, null when there was none
};

class Supervisor {
 public:
  Supervisor(const DaemonOptions& options, std::map<std::string, std::string> env)
      : o_(options), env_(std::move(env)) {}
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
  void OnServiceEvent(const Json& e);
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
  int Finish(int code, const std::string& result, const std::string& message);

  DaemonOptions o_;
  std::map<std::string, std::string> env_;
  SrunCommand srun_;
  std::string job_id_;
  uint32_t job_id_num_ = 0;
  int restart_count_ = 0;
  std::vector<std::string> allocation_;
  int nodes_needed_ = 0;
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
  std::deque<Json> events_;

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
  auto job = Env("SLURM_JOB_ID");
  if (!job || job->empty())
    return MakeError(
        "SLURM_JOB_ID is not set: strund runs inside a Slurm allocation, from the job's batch "
        "script "
        "(sbatch), or under salloc");
  auto job_num = ToNumber(*job);
  if (!job_num || *job_num > 0xffffffffLL)
    return MakeError("SLURM_JOB_ID=" + *job + ": expected a job number");
  job_id_ = *job;
  job_id_num_ = uint32_t(*job_num);
  auto nodelist = Env("SLURM_JOB_NODELIST");
  if (!nodelist) nodelist = Env("SLURM_NODELIST");
  if (!nodelist || nodelist->empty())
    return MakeError(
        "SLURM_JOB_NODELIST is not set: strund runs inside a Slurm allocation, from the job's "
        "batch "
        "script (sbatch), or under salloc");
  auto nodes = slurm::ExpandHostlist(*nodelist);
  if (!nodes) return MakeError("SLURM_JOB_NODELIST=" + *nodelist + ": " + nodes.error().message);
  allocation_ = std::move(*nodes);
  if (auto rc = Env("SLURM_RESTART_COUNT"); rc && !rc->empty()) {
    auto v = ToNumber(*rc);
    if (!v || *v > 1000000) return MakeError("SLURM_RESTART_COUNT=" + *rc + ": expected a number");
    restart_count_ = int(*v);
  }
  if (auto tpn = Env("SLURM_NTASKS_PER_NODE"); tpn && !tpn->empty()) {
    auto v = ToNumber(*tpn);
    if (v && *v > 0 && *v < 100000) env_tasks_per_node_ = int(*v);
  }
  if (auto port = Env("STRUN_COORD_PORT"); port && !port->empty()) {
    auto v = ToNumber(*port);
    if (!v || *v < 1 || *v > 65535)
      return MakeError("STRUN_COORD_PORT=" + *port +
                       ": expected a TCP port (1-65535) for the coordination service");
    coord_port_ = int(*v);
  }
  auto srun = ParseSrunCommand(o_.command);
  if (!srun) return srun.error();
  srun_ = std::move(*srun);

  if (o_.nodes) {
    nodes_needed_ = *o_.nodes;
  } else if (srun_.nodes) {
    nodes_needed_ = *srun_.nodes;
  } else if (auto n = Env("SLURM_JOB_NUM_NODES"); n && ToNumber(*n) && *ToNumber(*n) > 0) {
    nodes_needed_ = int(*ToNumber(*n));
  } else {
    nodes_needed_ = int(allocation_.size());
  }
  if (nodes_needed_ > int(allocation_.size()))
    return MakeError("--nodes " + std::to_string(nodes_needed_) + ": the allocation has only " +
                     std::to_string(allocation_.size()) + " node" +
                     (allocation_.size() == 1 ? "" : "s") + " (" + *nodelist +
                     "); allocate more (sbatch --nodes) or ask for fewer");
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
  Log("strund_start",
      {{"nodes", nodes_needed_},
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

void Supervisor::OnServiceEvent(const Json& e) {
  const std::string type = e.value("event", "");
  const double t = e.contains("time") && e["time"].is_number() ? e["time"].get<double>() : Now();
  Json fields = e;
  fields.erase("event");
  if (type == "progress") {
    const long long step = e.value("step", -1LL);
    auto recovered = accounting_.OnProgress(step, t);
    if (recovered) {
      Log("recovered", {{"time", t}, {"step", step}, {"time_lost_s", *recovered}}, true);
      progress_filter_.Reset();
    }
    if (progress_filter_.ShouldLog(t) || e.value("preempted", false)) Log("progress", fields);
    return;
  }
  if (type == "failure") {
    accounting_.OnFault(t);
    progress_filter_.Reset();
    Log(type, fields, true);
    return;
  }
  if (type == "restart") {
    accounting_.CountRestart();
    progress_filter_.Reset();
    Log(type, fields, true);
    return;
  }
  if (type == "agent_joined") ++joined_;
  if (type == "agent_lost" && !stopping_) {
    accounting_.OnFault(t);
    if (!agent_lost_)
      agent_lost_ =
          std::make_pair(e.value("node", std::string()), e.value("evidence", std::string()));
  }
  if (type == "exit") outcome_seen_ = true;
  Log(type, fields, type == "agent_lost" || type == "exit" || type == "started");
}

void Supervisor::DrainEvents() {
  std::deque<Json> events;
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    events.swap(events_);
  }
  for (const Json& e : events) OnServiceEvent(e);
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
  const std::string run_key = "strund|" + job_id_ + "|" + std::to_string(restart_count_) + "|" +
                              std::to_string(ctx_.launch);
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
  auto sink = [this](const Json& e) {
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
  std::map<std::string, std::string> env = env_;
  env["STRUN_JOB_SECRET"] = *secret;
  env["STRUN_COORD_HOST"] = coord_host_;
  env["STRUN_COORD_PORT"] = std::to_string((*server)->port());
  env["STRUN_COORD_RUN_KEY"] = run_key;
  if (!srun_.ntasks) {
    // The batch job's task count would make srun start that many tasks on the launch's nodes.
    env.erase("SLURM_NTASKS");
    env.erase("SLURM_NPROCS");
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    result.reason = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvpe(cargv[0], cargv.data(), cenv.data());
    std::fprintf(stderr, "strund: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
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
    if (stop_signal_) {
      stop_reason = std::string("strund received ") + strsignal(stop_signal_);
      break;
    }
    if (agent_lost_) {
      stop_reason =
          "lost strun agent" + (agent_lost_->first.empty() ? "" : " on " + agent_lost_->first);
      break;
    }
    if (!srun_running_) break;
    if (outcome_seen_ && outcome_deadline == 0) outcome_deadline = Mono() + o_.stop_timeout_s;
    if (outcome_deadline > 0 && Mono() >= outcome_deadline) {
      stop_reason = "the coordination service finished but srun still runs";
      break;
    }
    if (preempt_deadline_ > 0 && Mono() >= preempt_deadline_) {
      stop_reason = "pre-emption: the step did not exit in time";
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
  result.outcome = (*server)->outcome();
  server->reset();  // joins the service's thread: no event comes after this
  DrainEvents();

  const Json& out = result.outcome;
  const bool have_outcome = out.is_object();
  const int code = have_outcome ? out.value("code", 1) : -1;
  const bool preempted = have_outcome && out.value("preempted", false);
  auto lost_node = [&]() -> std::optional<std::pair<std::string, std::string>> {
    if (agent_lost_) return agent_lost_;
    if (have_outcome && out.contains("lost_agents") && out["lost_agents"].is_array() &&
        !out["lost_agents"].empty()) {
      const Json& a = out["lost_agents"][0];
      return std::make_pair(
          a.value("node", std::string()),
          "the connection to strun agent " + std::to_string(a.value("agent", -1)) + " was lost");
    }
    return std::nullopt;
  };

  if (stop_signal_) {
    result.end = LaunchEnd::kStopped;
    result.reason = stop_reason;
    return result;
  }
  if (node_fault) {
    Exclude(node_fault->first, "node_down", node_fault->second);
    result.end = LaunchEnd::kNodeFault;
    result.reason = node_fault->second;
    return result;
  }
  if (have_outcome && code == 0 && !preempted && !agent_lost_) {
    result.end = LaunchEnd::kDone;
    result.reason = out.value("reason", std::string("every worker succeeded"));
    return result;
  }
  if (preempted || preempt_requested_) {
    result.end = LaunchEnd::kPreempted;
    result.reason = preempted ? out.value("reason", std::string("pre-empted"))
                              : "strund received a pre-emption or time-limit signal";
    return result;
  }
  if (auto lost = lost_node()) {
    Exclude(lost->first, "lost_agent", lost->second);
    result.end = LaunchEnd::kNodeFault;
    result.reason = lost->second + (lost->first.empty() ? "" : " (node " + lost->first + ")");
    return result;
  }
  if (have_outcome) {
    result.end = LaunchEnd::kFailed;
    result.reason = out.value("reason", std::string("the workers failed"));
    return result;
  }
  // No outcome: srun ended before the service could tell how the job went.
  auto bad = UnhealthyNodes(nodes);
  if (!bad.empty()) {
    accounting_.OnFault(Now());
    Exclude(bad.begin()->first, "node_down", bad.begin()->second);
    result.end = LaunchEnd::kNodeFault;
    result.reason = bad.begin()->second;
    return result;
  }
  if (joined_ == 0) {
    result.end = LaunchEnd::kError;
    result.reason =
        "srun ended (" + DescribeWaitStatus(srun_status_) +
        ") before any strun agent joined the coordination service; its output above says why";
    return result;
  }
  accounting_.OnFault(Now());
  result.end = LaunchEnd::kNodeFault;
  result.reason = "srun ended (" + DescribeWaitStatus(srun_status_) +
                  ") before the coordination service reported how the job went";
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
  if (term_received_) {
    // scancel sends SIGTERM too: a cancelled job must stay cancelled.
    auto state = broker_->JobState(job_id_num_);
    if (state && *state == "CANCELLED") {
      Log("requeue", {{"reason", reason}, {"requested", false}, {"error", "the job was cancelled"}},
          true);
      return Finish(128 + SIGTERM, "cancelled",
                    "the job was cancelled (scancel): not requeueing it");
    }
    if (!state) {
      Log("requeue", {{"reason", reason}, {"requested", false}, {"error", state.error().message}},
          true);
      return Finish(
          kExitRequeue, "requeue_failed",
          reason + "; not requeueing: SIGTERM may mean scancel, and " + state.error().message);
    }
  }
  if (restart_count_ >= o_.max_requeues) {
    const std::string why = "SLURM_RESTART_COUNT=" + std::to_string(restart_count_) +
                            " has reached --max-requeues=" + std::to_string(o_.max_requeues);
    Log("requeue", {{"reason", reason}, {"requested", false}, {"error", why}}, true);
    return Finish(kExitFailed, "failed", reason + "; not requeueing: " + why);
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
    auto selected = SelectNodes(allocation_, unusable, previous_, nodes_needed_);
    if (!selected) return Requeue(selected.error().message);
    if (ctx_.launch > 0) {
      ++relaunches_;
      accounting_.CountRelaunch();
      Log("relaunch", {{"nodes", *selected}, {"reason", last_fault_}}, true);
    }
    previous_ = *selected;
    LaunchResult r = RunLaunch(*selected);
    switch (r.end) {
      case LaunchEnd::kDone:
        return Finish(kExitDone, "done", "the job finished: " + r.reason);
      case LaunchEnd::kPreempted:
        return Requeue(r.reason);
      case LaunchEnd::kStopped:
        return Finish(128 + stop_signal_, "stopped", r.reason);
      case LaunchEnd::kError:
        return Finish(kExitFailed, "failed",
                      "launch " + std::to_string(ctx_.launch) + " failed: " + r.reason);
      case LaunchEnd::kFailed: {
        std::string message = "the job failed: " + r.reason;
        const Json root = r.outcome.is_object() ? r.outcome.value("root_cause", Json()) : Json();
        if (root.is_object()) {
          launcher::WorkerFailure f = launcher::WorkerFailure::FromJson(root);
          message += "\nstrund: root cause: " + launcher::DescribeFailure(f) +
                     (f.kind.empty()
                          ? ""
                          : " [" + f.kind + (f.evidence.empty() ? "" : ": " + f.evidence) + "]") +
                     "\nstrund: not relaunching: the strun agents restarted the workers in place "
                     "as often as "
                     "allowed (--max-restarts, --max-same-step-failures), and a new launch would "
                     "fail the same way";
        }
        return Finish(kExitFailed, "failed", message);
      }
      case LaunchEnd::kNodeFault:
        last_fault_ = r.reason;
        if (relaunches_ >= o_.max_relaunches)
          return Finish(kExitFailed, "failed",
                        r.reason + "; not relaunching: all " + std::to_string(o_.max_relaunches) +
                            " relaunches (--max-relaunches) are used");
        std::fprintf(stderr, "strund: relaunching: %s\n", r.reason.c_str());
        break;
    }
  }
}

}  // namespace

int RunSupervisor(const DaemonOptions& options, const std::map<std::string, std::string>& env) {
  try {
    Supervisor supervisor(options, env);
    return supervisor.Run();  // the destructor kills a step still running on the way out
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strund: internal error: %s\n", e.what());
    return kExitFailed;
  }
}

}  // namespace strun::daemon

// The agent loop (agent.h): one thread, one poll() over the signal fd, the coordination channel
// and the workers' output pipes. Everything is event driven, so a failure is seen the moment the
// kernel reports the exit, and a restart costs a few round trips plus the workers' own start.
#include "strun/launcher/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <set>

#include "strun/clock.h"
#include "strun/launcher/coordination.h"
#include "strun/launcher/failure.h"
#include "strun/launcher/output.h"
#include "strun/launcher/process.h"
#include "strun/launcher/progress.h"
#include "strun/launcher/worker_env.h"

namespace strun::launcher {
namespace {

void Say(const std::string& text) {
  std::string line = "strun: " + text + "\n";
  (void)!write(2, line.data(), line.size());
}

bool IsTerminationSignal(int sig) {
  return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
}

Status MakeDirs(const std::string& path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
        return MakeError("strun: cannot create directory " + cur + ": " + std::strerror(errno));
    }
    if (i < path.size()) cur.push_back(path[i]);
  }
  return {};
}

Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string tmpl = parent + "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    return MakeError("strun: cannot create a log directory under " + parent + ": " +
                     std::strerror(errno) + " (set --log-dir or TMPDIR)");
  return std::string(buf.data());
}

// Talks to the group: the job's coordination service, or GroupState in-process for one agent.
class GroupLink {
 public:
  virtual ~GroupLink() = default;
  virtual void Send(const coord::AgentMessage& m) = 0;
  virtual int fd() const = 0;
  // Reads what arrived; false when the link broke (why set).
  virtual bool Poll(std::string* why) = 0;
  virtual std::optional<coord::ServiceMessage> Next() = 0;
};

class LocalLink : public GroupLink {
 public:
  LocalLink(RestartPolicy policy, std::string addr, std::function<int()> pick)
      : state_(1, policy, std::move(addr), std::move(pick)) {}
  void Send(const coord::AgentMessage& m) override {
    for (auto& o : state_.OnMessage(0, m)) inbox_.push_back(std::move(o.body));
  }
  int fd() const override { return -1; }
  bool Poll(std::string*) override { return true; }
  std::optional<coord::ServiceMessage> Next() override {
    if (inbox_.empty()) return std::nullopt;
    coord::ServiceMessage m = std::move(inbox_.front());
    inbox_.pop_front();
    return m;
  }

 private:
  GroupState state_;
  std::deque<coord::ServiceMessage> inbox_;
};

class RemoteLink : public GroupLink {
 public:
  explicit RemoteLink(std::unique_ptr<Channel> ch) : ch_(std::move(ch)) {}
  void Send(const coord::AgentMessage& m) override {
    if (ch_) (void)ch_->Send(coord::ToJson(m));
  }
  int fd() const override { return ch_ ? ch_->fd() : -1; }
  bool Poll(std::string* why) override { return ch_->ReadAvailable(why); }
  std::optional<coord::ServiceMessage> Next() override {
    while (auto j = ch_->Next()) {
      auto m = coord::ParseServiceMessage(*j);
      if (m) return std::move(*m);
      Say("ignoring a message from the coordination service: " + m.error().message);
    }
    return std::nullopt;
  }
  void Close() { ch_.reset(); }

 private:
  std::unique_ptr<Channel> ch_;
};

struct Worker {
  int local_rank = 0;
  int rank = 0;
  pid_t pid = -1;
  int out_fd = -1, err_fd = -1;
  std::unique_ptr<OutputRelay> out, err;
  bool running = false;
  int status = 0;
  std::string error_file;
  // Progress channel (progress.h).
  int progress_fd = -1;  // strun's end of the socket pair
  std::string progress_partial;
  bool reporting = false;  // sent at least one report: hang detection is armed
  ProgressPhase phase = ProgressPhase::kStartup;
  double last_report = 0;  // monotonic
  long long step = -1;
  double last_step_at = 0;
  std::deque<double> step_times;  // seconds between consecutive training reports, newest last
  bool preempted = false;
  std::string hang_evidence;  // set when strun declared it hung and killed it
};

class Agent {
 public:
  Agent(const LaunchOptions& o, const LaunchPlan& p, const EnvMap& env,
        const WorkerWrapper* wrapper)
      : o_(o), p_(p), env_(env), wrapper_(wrapper) {}
  int Run();

 private:
  Status Setup();
  void HandleMessage(const coord::ServiceMessage& m);
  void StartAttempt(const coord::Start& m);
  void OnWorkerExit(Worker& w, int status);
  // after_failure: the group stops because a worker failed. Workers that report progress resume
  // from their checkpoints, so they get only kFailureStopGrace after SIGTERM before SIGKILL (a
  // trainer waits for a step boundary on SIGTERM, and a peer stuck in a collective never gets
  // there); others get --shutdown-timeout as under torchrun.
  void BeginStop(int sig, bool after_failure = false);
  void MaybeStopped();
  void DrainOutput(Worker& w, bool to_eof);
  void CloseOutput(Worker& w);
  WorkerFailure FailureOf(const Worker& w, double seen_at, int exitcode,
                          const std::string& message = "");
  void HandleSignal(int sig);
  void ReadProgress(Worker& w);
  void OnProgress(Worker& w, const ProgressReport& r);
  double HangDeadline(const Worker& w) const;
  void CheckHangs();
  void CloseProgress(Worker& w);
  int Finish(int code, const std::string& reason, const std::optional<WorkerFailure>& root,
             const std::vector<WorkerFailure>& failures);
  bool AnyRunning() const {
    for (const auto& w : workers_)
      if (w.running) return true;
    return false;
  }

  enum class Phase { kIdle, kRunning, kStopping };
  const LaunchOptions& o_;
  const LaunchPlan& p_;
  EnvMap env_;
  const WorkerWrapper* wrapper_ = nullptr;
  int sigfd_ = -1;
  std::unique_ptr<CoordinationServer> server_;
  std::unique_ptr<GroupLink> link_;
  std::vector<Worker> workers_;
  std::set<pid_t> groups_;  // worker process groups of this attempt (killed when it ends)
  Phase phase_ = Phase::kIdle;
  int attempt_ = -1;
  bool reported_ = false;        // failed/succeeded sent for this attempt
  bool stop_acked_ = true;       // stopped sent for this attempt
  bool stop_requested_ = false;  // the group asked for a stop of this attempt
  double kill_deadline_ = 0;
  bool killed_ = false;
  bool failure_grace_ = false;
  static constexpr double kFailureStopGrace = 1.0;
  std::optional<coord::Exit> pending_exit_;
  std::optional<coord::Start> pending_start_;  // a start that waits for its back-off delay
  double start_at_ = 0;
  long long sent_step_ = -1;  // highest step reported to the group
  bool attempt_progress_sent_ = false;
  int abort_signal_ = 0;
  std::string run_dir_;
  StdSpec redirects_, tee_;
  std::string prefix_template_;
  bool verbose_ = false;
};

Status Agent::Setup() {
  redirects_ = *ParseStdSpec(o_.redirects, "--redirects");
  tee_ = *ParseStdSpec(o_.tee, "--tee");
  if (auto it = env_.find("TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"); it != env_.end())
    prefix_template_ = it->second;
  verbose_ = env_.count("STRUN_VERBOSE") && env_["STRUN_VERBOSE"] != "0";

  // Signals: SIGCHLD and the handled ones arrive through a signalfd; workers get a clean mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (int s : o_.signals) sigaddset(&set, s);
  // Slurm's warning signals (--signal=[B:]USR1@N) are forwarded to the workers, never fatal to
  // strun.
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return MakeError("strun: sigprocmask failed");
  sigfd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd_ < 0) return MakeError(std::string("strun: signalfd: ") + std::strerror(errno));
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  // strun's own cgroup unless STRUN_CGROUP=0 (process.h says what each mechanism covers).
  const bool own_cgroup = !env_.count("STRUN_CGROUP") || env_["STRUN_CGROUP"] != "0";
  std::string no_cgroup;
  if (auto s = Guardian::Start(own_cgroup, &no_cgroup); !s) return s;
  if (verbose_ && own_cgroup && !Guardian::HasCgroup())
    Say("no cgroup of its own (" + no_cgroup +
        "): after kill -9 strun, a worker's descendant that left its "
        "process group (setsid) can survive");

  // Log directory: <log_dir>/<run_id>_XXXXXX, as torchrun.
  std::string base;
  if (o_.log_dir && !o_.log_dir->empty()) {
    base = *o_.log_dir;
    struct stat st;
    if (stat(base.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
      return MakeError("strun: --log-dir=" + base + " is a file; give a directory");
    if (auto s = MakeDirs(base); !s) return s;
  } else {
    auto it = env_.find("TMPDIR");
    auto d = MakeTempDir(it != env_.end() && !it->second.empty() ? it->second : "/tmp", "strun_");
    if (!d) return d.error();
    base = *d;
  }
  auto run_dir = MakeTempDir(base, p_.run_id + "_");
  if (!run_dir) return run_dir.error();
  run_dir_ = *run_dir;

  // The group.
  auto pick_port = [this]() -> int {
    if (p_.master_port) return *p_.master_port;
    auto port = FreePort();
    return port ? *port : 29500;
  };
  const RestartPolicy policy{o_.max_restarts, o_.restart_backoff, o_.restart_backoff_max,
                             o_.max_same_step_failures};
  // strund hosts the service for the whole job (coordination.h): connect there, host nothing.
  std::string external_host;
  if (auto it = env_.find("STRUN_COORD_HOST"); it != env_.end()) external_host = it->second;
  if (!external_host.empty() &&
      (!env_.count("STRUN_COORD_PORT") || env_["STRUN_COORD_PORT"].empty()))
    return MakeError(
        "strun: STRUN_COORD_HOST is set but STRUN_COORD_PORT is not; both name the service strund "
        "hosts");
  if (p_.num_agents == 1 && external_host.empty()) {
    link_ = std::make_unique<LocalLink>(policy, p_.master_addr, pick_port);
    return {};
  }
  auto key = CoordinationKey(p_, env_);
  if (!key) return key.error();
  auto ports = CandidatePorts(*key, env_, p_);
  std::string host = external_host.empty() ? p_.master_addr : external_host;
  if (p_.agent_index == 0 && external_host.empty()) {
    auto server = CoordinationServer::Start(*key, ports, p_.num_agents, policy, p_.master_addr,
                                            pick_port, p_.join_timeout_s);
    if (!server) return server.error();
    server_ = std::move(*server);
    ports = {server_->port()};
    host = "127.0.0.1";
  }
  auto ch = ConnectToCoordinator(host, ports, *key, p_.agent_index, p_.join_timeout_s);
  if (!ch) return ch.error();
  link_ = std::make_unique<RemoteLink>(std::move(*ch));
  return {};
}

WorkerFailure Agent::FailureOf(const Worker& w, double seen_at, int exitcode,
                               const std::string& message) {
  WorkerFailure f;
  f.rank = w.rank;
  f.local_rank = w.local_rank;
  f.node = p_.node_name;
  f.pid = int(w.pid);
  f.exitcode = exitcode;
  ReadErrorFile(w.error_file, seen_at, f);
  if (!message.empty()) f.message = message;
  if (w.err) f.tail = w.err->Tail();
  if (w.out) {
    auto out_tail = w.out->Tail();
    // Prefer stderr (tracebacks); fill up with stdout when stderr said little.
    if (f.tail.size() < 5) f.tail.insert(f.tail.begin(), out_tail.begin(), out_tail.end());
    if (f.tail.size() > 20) f.tail.erase(f.tail.begin(), f.tail.end() - 20);
  }
  return f;
}

void Agent::StartAttempt(const coord::Start& m) {
  attempt_ = m.attempt;
  attempt_progress_sent_ = false;
  AttemptInfo info;
  info.restart_count = m.restart_count;
  info.master_addr = m.master_addr.empty() ? p_.master_addr : m.master_addr;
  info.master_port = m.master_port;
  if (info.restart_count > 0 && p_.agent_index == 0)
    Say("restarting the worker group (restart " + std::to_string(info.restart_count) + " of " +
        std::to_string(o_.max_restarts) + ")");
  if (verbose_)
    Say("attempt " + std::to_string(attempt_) + ": MASTER_ADDR=" + info.master_addr +
        " MASTER_PORT=" + std::to_string(info.master_port));
  workers_.clear();
  groups_.clear();
  phase_ = Phase::kRunning;
  reported_ = false;
  stop_acked_ = false;
  stop_requested_ = false;
  killed_ = false;
  const std::string attempt_dir = run_dir_ + "/attempt_" + std::to_string(info.restart_count);
  const auto argv = WorkerCommand(o_, env_);
  workers_.resize(size_t(p_.num_workers));
  std::vector<WorkerFailure> spawn_failures;
  std::vector<std::pair<Worker*, SpawnedWorker>> pending;
  for (int i = 0; i < p_.num_workers; ++i) {
    Worker& w = workers_[size_t(i)];
    w.local_rank = p_.first_local_rank + i;
    w.rank = p_.first_rank + i;
    const std::string dir = attempt_dir + "/" + std::to_string(w.local_rank);
    if (auto s = MakeDirs(dir); !s) {
      spawn_failures.push_back(FailureOf(w, WallSeconds(), 1, s.error().message));
      continue;
    }
    w.error_file = dir + "/error.json";
    unlink(w.error_file.c_str());
    auto env = BuildWorkerEnv(o_, p_, env_, {w.local_rank, w.rank}, info, w.error_file);
    if (!env) {
      spawn_failures.push_back(FailureOf(w, WallSeconds(), 1, env.error().message));
      continue;
    }
    const bool shown = o_.local_ranks.empty() || o_.local_ranks.count(w.local_rank);
    const std::string prefix = LinePrefix(prefix_template_, o_.role, w.rank, w.local_rank);
    auto make_relay = [&](int bit, const char* file, int console) {
      int fd = -1;
      int r = redirects_.For(w.local_rank), t = tee_.For(w.local_rank);
      if ((r | t) & bit)
        fd = open((dir + "/" + file).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      bool to_console = shown && (!(r & bit) || (t & bit));
      return std::make_unique<OutputRelay>(prefix, to_console ? console : -1, fd);
    };
    w.out = make_relay(1, "stdout.log", 1);
    w.err = make_relay(2, "stderr.log", 2);
    // The progress channel: one SOCK_SEQPACKET pair per worker (progress.h).
    int sp[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0) {
      fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
      w.progress_fd = sp[0];
      (*env)["STRUN_PROGRESS_FD"] = std::to_string(sp[1]);
    } else {
      env->erase("STRUN_PROGRESS_FD");
    }
    if (wrapper_ && wrapper_->environment) *env = wrapper_->environment(*env);
    auto spawned =
        SpawnWorker(argv, *env, wrapper_ ? wrapper_->enter : std::function<Status()>(), sp[1]);
    if (sp[1] >= 0) close(sp[1]);
    if (!spawned) {
      spawn_failures.push_back(FailureOf(w, WallSeconds(), 127, spawned.error().message));
      continue;
    }
    pending.emplace_back(&w, *spawned);
  }
  // Every worker is forked before any exec is checked, so that they start in parallel.
  for (auto& [w, spawned] : pending) {
    if (auto st = WaitForExec(spawned, argv[0]); !st) {
      spawn_failures.push_back(FailureOf(*w, WallSeconds(), 127, st.error().message));
      continue;
    }
    w->pid = spawned.pid;
    w->out_fd = spawned.stdout_fd;
    w->err_fd = spawned.stderr_fd;
    w->running = true;
    groups_.insert(w->pid);
  }
  if (!spawn_failures.empty()) {
    reported_ = true;
    link_->Send(coord::Failed{attempt_, spawn_failures});
    BeginStop(SIGTERM, true);
  }
}

void Agent::DrainOutput(Worker& w, bool to_eof) {
  for (int* fd : {&w.out_fd, &w.err_fd}) {
    if (*fd < 0) continue;
    OutputRelay* relay = fd == &w.out_fd ? w.out.get() : w.err.get();
    char buf[65536];
    for (;;) {
      ssize_t n = read(*fd, buf, sizeof buf);
      if (n > 0) {
        relay->Feed(buf, size_t(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        relay->Finish();
        close(*fd);
        *fd = -1;
      }
      break;
    }
    (void)to_eof;
  }
}

void Agent::CloseProgress(Worker& w) {
  if (w.progress_fd >= 0) {
    ReadProgress(w);
    close(w.progress_fd);
    w.progress_fd = -1;
  }
}

void Agent::ReadProgress(Worker& w) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(w.progress_fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) {
        close(w.progress_fd);
        w.progress_fd = -1;
      }
      return;
    }
    w.progress_partial.append(buf, size_t(n));
    size_t nl;
    while ((nl = w.progress_partial.find('\n')) != std::string::npos) {
      std::string line = w.progress_partial.substr(0, nl);
      w.progress_partial.erase(0, nl + 1);
      if (auto r = ParseProgressLine(line)) OnProgress(w, *r);
    }
    if (w.progress_partial.size() > 4096) w.progress_partial.clear();  // not our protocol
  }
}

void Agent::OnProgress(Worker& w, const ProgressReport& r) {
  const double now = MonoSeconds();
  if (r.phase == ProgressPhase::kTraining) {
    // Step times only between consecutive training reports: a checkpoint or the start-up in
    // between would make the derived timeout needlessly long.
    if (w.reporting && w.phase == ProgressPhase::kTraining && r.step > w.step) {
      w.step_times.push_back((now - w.last_step_at) / double(r.step - w.step));
      if (w.step_times.size() > 20) w.step_times.pop_front();
    }
    w.last_step_at = now;
  }
  w.reporting = true;
  w.phase = r.phase;
  w.last_report = now;
  if (r.step >= 0) w.step = r.step;
  if (r.phase == ProgressPhase::kPreempted) w.preempted = true;
  // The group hears of new steps (and the first of each attempt, for time-lost accounting).
  const bool step_report =
      r.step >= 0 && (r.phase == ProgressPhase::kTraining || r.phase == ProgressPhase::kPreempted);
  if (step_report && (r.step > sent_step_ || !attempt_progress_sent_ || w.preempted)) {
    sent_step_ = std::max(sent_step_, r.step);
    attempt_progress_sent_ = true;
    link_->Send(coord::Progress{attempt_, r.step, w.preempted});
  }
}

double Agent::HangDeadline(const Worker& w) const {
  if (!w.running || !w.reporting || !w.hang_evidence.empty()) return 0;
  if (w.phase != ProgressPhase::kTraining) return w.last_report + o_.startup_timeout;
  double timeout = o_.hang_timeout;
  if (timeout <= 0) {
    double slowest = 0;
    for (double t : w.step_times) slowest = std::max(slowest, t);
    timeout = std::max(o_.hang_timeout_floor, o_.hang_timeout_factor * slowest);
  }
  return w.last_report + timeout;
}

namespace {
// /proc/PID/stat's state letter: T = stopped, D = uninterruptible (I/O), S = sleeping, R = running.
char ProcessState(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return '?';
  char buf[512] = {0};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string st(buf, n);
  auto close_paren = st.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < st.size() ? st[close_paren + 2]
                                                                         : '?';
}
const char* StateName(char s) {
  switch (s) {
    case 'T':
    case 't':
      return "stopped";
    case 'D':
      return "in uninterruptible I/O";
    case 'S':
      return "sleeping";
    case 'R':
      return "running";
    default:
      return "unknown";
  }
}
}  // namespace

// A worker past its deadline is killed (SIGKILL also ends a stopped process) and its exit is
// then reported as a hang. When one rank stops, its peers soon wait for it inside a collective
// and miss their deadlines too; a sleeping or running worker therefore gets half its timeout
// more, so that the stuck one (stopped, or in uninterruptible I/O) is found and named first.
void Agent::CheckHangs() {
  if (phase_ != Phase::kRunning) return;
  const double now = MonoSeconds();
  for (auto& w : workers_) {
    const double deadline = HangDeadline(w);
    if (deadline == 0 || now < deadline) continue;
    const double timeout = deadline - w.last_report;
    const char state = ProcessState(w.pid);
    const bool stuck = state == 'T' || state == 't' || state == 'D';
    if (!stuck && now < deadline + 0.5 * timeout) continue;
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "no progress report for %.1f s (phase %s, last step %lld, timeout %.1f s); process %s",
        now - w.last_report, std::string(ProgressPhaseName(w.phase)).c_str(), w.step, timeout,
        StateName(state));
    w.hang_evidence = buf;
    Say("rank " + std::to_string(w.rank) + " is hung: " + w.hang_evidence + "; killing it");
    SignalGroup(w.pid, SIGKILL);
    return;  // one at a time: its exit stops the group
  }
}

void Agent::CloseOutput(Worker& w) {
  CloseProgress(w);
  DrainOutput(w, true);
  for (int* fd : {&w.out_fd, &w.err_fd}) {
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
  }
  if (w.out) w.out->Finish();
  if (w.err) w.err->Finish();
}

void Agent::OnWorkerExit(Worker& w, int status) {
  w.running = false;
  w.status = status;
  const double seen_at = WallSeconds();
  DrainOutput(w, false);
  if (w.progress_fd >= 0) ReadProgress(w);  // a last report (preempted) may still be queued
  if (verbose_)
    Say("rank " + std::to_string(w.rank) + " exited: status " + std::to_string(ExitCodeOf(status)));
  if (phase_ != Phase::kRunning) return;
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    if (!reported_) {
      reported_ = true;
      WorkerFailure f = FailureOf(w, seen_at, TorchExitCodeOf(status));
      if (!w.hang_evidence.empty()) {
        f.kind = "hang";
        f.evidence = w.hang_evidence;
        f.message = "strun declared the worker hung: " + w.hang_evidence;
      }
      ClassifyFailure(f);
      link_->Send(coord::Failed{attempt_, {f}});
    }
    // Do not wait for the group: stop the local workers now.
    BeginStop(SIGTERM, true);
    return;
  }
  if (!AnyRunning() && !reported_) {
    reported_ = true;
    phase_ = Phase::kIdle;
    for (auto& x : workers_) CloseOutput(x);
    bool preempted = false;
    for (const auto& x : workers_) preempted |= x.preempted;
    link_->Send(coord::Succeeded{attempt_, preempted});
  }
}

void Agent::BeginStop(int sig, bool after_failure) {
  if (phase_ == Phase::kStopping) return;
  phase_ = Phase::kStopping;
  bool all_report = true;
  for (auto& w : workers_)
    if (w.running) {
      SignalGroup(w.pid, sig);
      all_report &= w.reporting;
    }
  failure_grace_ = after_failure && all_report && o_.shutdown_timeout > kFailureStopGrace;
  kill_deadline_ = MonoSeconds() + (failure_grace_ ? kFailureStopGrace : o_.shutdown_timeout);
  MaybeStopped();
}

// Once every local worker is gone: kill what is left of their process groups, tell the group.
void Agent::MaybeStopped() {
  if (phase_ == Phase::kRunning || AnyRunning()) return;
  for (pid_t g : groups_) {
    SignalGroup(g, SIGKILL);
    Guardian::Untrack(g);
  }
  groups_.clear();
  for (auto& w : workers_) CloseOutput(w);
  phase_ = Phase::kIdle;
  if (stop_requested_ && !stop_acked_ && attempt_ >= 0) {
    stop_acked_ = true;
    link_->Send(coord::Stopped{attempt_, {}});
  }
}

void Agent::HandleMessage(const coord::ServiceMessage& message) {
  if (const auto* start = std::get_if<coord::Start>(&message)) {
    const coord::Start& m = *start;
    if (AnyRunning()) return;  // cannot happen: the group waits for every agent to stop
    const double delay = m.delay_s;
    if (delay > 0) {
      // Back-off (coord_service.h): every agent waits, then starts; a stop meanwhile cancels it.
      attempt_ = m.attempt;
      stop_acked_ = false;
      stop_requested_ = false;
      pending_start_ = m;
      start_at_ = MonoSeconds() + delay;
      if (p_.agent_index == 0 || p_.num_agents == 1) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.1f", delay);
        Say(std::string("restarting the worker group in ") + buf +
            " s (back-off: no progress since the last failure)");
      }
      return;
    }
    StartAttempt(m);
  } else if (const auto* stop = std::get_if<coord::Stop>(&message)) {
    if (stop->attempt != attempt_) return;
    pending_start_.reset();
    stop_requested_ = true;
    if (p_.agent_index == 0 || p_.num_agents == 1)
      Say("stopping the worker group: " + stop->reason);
    if (phase_ == Phase::kRunning)
      BeginStop(SIGTERM, true);
    else
      MaybeStopped();
  } else if (const auto* exit = std::get_if<coord::Exit>(&message)) {
    pending_start_.reset();
    pending_exit_ = *exit;
    if (AnyRunning()) BeginStop(abort_signal_ ? abort_signal_ : SIGTERM);
  }
}

void Agent::HandleSignal(int sig) {
  if (IsTerminationSignal(sig)) {
    if (abort_signal_ != 0) {
      // A second termination signal: no more patience.
      for (auto& w : workers_)
        if (w.running) SignalGroup(w.pid, SIGKILL);
      return;
    }
    abort_signal_ = sig;
    Say("received " + SignalName(sig) + "; stopping the workers");
    for (auto& w : workers_)
      if (w.running) SignalGroup(w.pid, sig);
    if (phase_ == Phase::kRunning) {
      phase_ = Phase::kStopping;
      kill_deadline_ = MonoSeconds() + o_.shutdown_timeout;
    }
    link_->Send(
        coord::Aborted{128 + sig, "strun on " + p_.node_name + " received " + SignalName(sig)});
    return;
  }
  for (auto& w : workers_)
    if (w.running) kill(w.pid, sig);
}

int Agent::Finish(int code, const std::string& reason, const std::optional<WorkerFailure>& root,
                  const std::vector<WorkerFailure>& failures) {
  const bool show_summary = p_.agent_index == 0 || p_.num_agents == 1;
  if (code != 0) {
    if (root) {
      const WorkerFailure& r = *root;
      std::vector<WorkerFailure> others;
      for (const auto& x : failures)
        if (x.rank != r.rank || x.timestamp != r.timestamp) others.push_back(x);
      if (show_summary) {
        std::string s = FormatFailureSummary(
            o_.training_script + " FAILED (strun exit code " + std::to_string(code) + ")", r,
            others);
        (void)!write(2, s.data(), s.size());
        if (reason != DescribeFailure(r)) Say(reason);  // why it was not restarted
      } else {
        Say("the worker group failed: " + reason);
      }
      if (auto it = env_.find("TORCHELASTIC_ERROR_FILE"); it != env_.end() && !it->second.empty()) {
        if (auto st = WriteParentErrorFile(it->second, r); !st) Say(st.error().message);
      }
    } else if (!(abort_signal_ && 128 + abort_signal_ == code)) {
      Say(reason);  // (a signal this agent received was announced already)
    }
  }
  return code;
}

int Agent::Run() {
  if (auto s = Setup(); !s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return 1;
  }
  if (verbose_)
    Say(std::string("mode: ") + LaunchModeName(p_.mode) + ", agent " +
        std::to_string(p_.agent_index) + " of " + std::to_string(p_.num_agents) + ", logs in " +
        run_dir_);
  link_->Send(coord::Ready{0, p_.node_name});
  bool link_broken = false;
  std::string link_why;
  for (;;) {
    // Messages first (the local link answers synchronously).
    while (auto m = link_->Next()) HandleMessage(*m);
    if (pending_exit_ && !AnyRunning()) {
      MaybeStopped();
      const coord::Exit m = *pending_exit_;
      if (auto* r = dynamic_cast<RemoteLink*>(link_.get())) r->Close();
      if (server_) server_->WaitFinished(5.0);
      int code = m.code;
      if (abort_signal_ && code == 0) code = 128 + abort_signal_;
      if (code == 0 && m.preempted && (p_.agent_index == 0 || p_.num_agents == 1)) Say(m.reason);
      return Finish(code, m.reason, m.root_cause, m.failures);
    }
    if (link_broken && !AnyRunning()) {
      MaybeStopped();
      if (abort_signal_) return 128 + abort_signal_;
      Say("lost the connection to the job's coordination service (" + link_why +
          "): strun on the first node has stopped or its node failed");
      return 1;
    }
    if (pending_start_ && MonoSeconds() >= start_at_) {
      const coord::Start m = *pending_start_;
      pending_start_.reset();
      StartAttempt(m);
    }
    CheckHangs();
    std::vector<pollfd> pfds;
    pfds.push_back({sigfd_, POLLIN, 0});
    pfds.push_back({link_broken ? -1 : link_->fd(), POLLIN, 0});
    std::vector<std::pair<Worker*, int*>> outs;
    for (auto& w : workers_)
      for (int* fd : {&w.out_fd, &w.err_fd})
        if (*fd >= 0) {
          pfds.push_back({*fd, POLLIN, 0});
          outs.push_back({&w, fd});
        }
    std::vector<Worker*> progress;
    for (auto& w : workers_)
      if (w.progress_fd >= 0) {
        pfds.push_back({w.progress_fd, POLLIN, 0});
        progress.push_back(&w);
      }
    double wake_at = 0;  // the earliest timer: kill deadline, back-off start, hang deadline
    auto earliest = [&](double t) {
      if (t > 0 && (wake_at == 0 || t < wake_at)) wake_at = t;
    };
    if (phase_ == Phase::kStopping && !killed_) earliest(kill_deadline_);
    if (pending_start_) earliest(start_at_);
    if (phase_ == Phase::kRunning)
      for (const auto& w : workers_) {
        const double d = HangDeadline(w);
        if (d == 0) continue;
        // Past the deadline but in the victims' grace (CheckHangs): look again every 100 ms.
        earliest(MonoSeconds() < d ? d : MonoSeconds() + 0.1);
      }
    int timeout_ms = -1;
    if (wake_at > 0) timeout_ms = std::max(0, int(std::ceil((wake_at - MonoSeconds()) * 1000)));
    int n = poll(pfds.data(), nfds_t(pfds.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      Say(std::string("poll: ") + std::strerror(errno));
      return 1;
    }
    if (phase_ == Phase::kStopping && !killed_ && MonoSeconds() >= kill_deadline_) {
      killed_ = true;
      for (auto& w : workers_)
        if (w.running) {
          if (failure_grace_) {
            if (verbose_)
              Say("rank " + std::to_string(w.rank) +
                  " still runs 1 s after SIGTERM; sending SIGKILL");
          } else {
            Say("rank " + std::to_string(w.rank) + " did not stop within --shutdown-timeout=" +
                std::to_string(o_.shutdown_timeout) + " s; sending SIGKILL");
          }
          SignalGroup(w.pid, SIGKILL);
        }
    }
    if (n <= 0) continue;
    // Output before exits, so that a failure's last lines are complete.
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!(pfds[i + 2].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Worker* w = outs[i].first;
      int* fd = outs[i].second;
      if (*fd < 0) continue;
      OutputRelay* relay = fd == &w->out_fd ? w->out.get() : w->err.get();
      char buf[65536];
      ssize_t r = read(*fd, buf, sizeof buf);
      if (r > 0) {
        relay->Feed(buf, size_t(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        relay->Finish();
        close(*fd);
        *fd = -1;
      }
    }
    for (size_t i = 0; i < progress.size(); ++i) {
      const pollfd& pf = pfds[2 + outs.size() + i];
      if ((pf.revents & (POLLIN | POLLHUP | POLLERR)) && progress[i]->progress_fd >= 0)
        ReadProgress(*progress[i]);
    }
    if (pfds[0].revents & POLLIN) {
      signalfd_siginfo si;
      std::vector<int> sigs;
      while (read(sigfd_, &si, sizeof si) == ssize_t(sizeof si)) sigs.push_back(int(si.ssi_signo));
      bool child = false;
      for (int s : sigs) {
        if (s == SIGCHLD)
          child = true;
        else
          HandleSignal(s);
      }
      if (child) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
          for (auto& w : workers_)
            if (w.running && w.pid == pid) OnWorkerExit(w, status);
        }
        if (phase_ == Phase::kStopping) MaybeStopped();
      }
    }
    if (!link_broken && pfds[1].fd >= 0 && (pfds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!link_->Poll(&link_why)) {
        link_broken = true;
        while (auto m = link_->Next()) HandleMessage(*m);
        if (!pending_exit_) BeginStop(abort_signal_ ? abort_signal_ : SIGTERM);
      }
    }
  }
}

}  // namespace

int RunAgent(const LaunchOptions& options, const LaunchPlan& plan,
             const std::map<std::string, std::string>& env, const WorkerWrapper* wrapper) {
  Agent agent(options, plan, env, wrapper);
  const int code = agent.Run();
  Guardian::Finish();  // no descendant outlives strun (process.h)
  return code;
}

}  // namespace strun::launcher

// The single-threaded process that makes strund's libslurm calls (slurm_broker.h).
#include "strun/daemon/slurm_broker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "strun/clock.h"
#include "strun/slurm/job_control.h"
#include "strun/slurm/node_address.h"

namespace strun::daemon {
namespace {

using Json = nlohmann::json;

// Each call's own deadline is 10 s (twice for NodeAddress: Slurm, then name resolution).
constexpr double kCallTimeoutS = 30;

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

Json ErrorReply(const Error& e) { return {{"ok", false}, {"error", e.message}}; }

Json Handle(const Json& request) {
  const std::string op = request.value("op", "");
  if (op == "node_states") {
    auto states = slurm::QueryNodeStates(request.at("names").get<std::vector<std::string>>());
    if (!states) return ErrorReply(states.error());
    Json out = Json::array();
    for (const auto& s : *states)
      out.push_back(
          {{"name", s.name}, {"state", s.state}, {"healthy", s.healthy}, {"reason", s.reason}});
    return {{"ok", true}, {"value", out}};
  }
  if (op == "node_address") {
    auto addr = slurm::NodeAddress(request.at("node").get<std::string>());
    if (!addr) return ErrorReply(addr.error());
    return {{"ok", true}, {"value", *addr}};
  }
  if (op == "job_steps") {
    auto steps = slurm::JobSteps(request.at("job").get<uint32_t>());
    if (!steps) return ErrorReply(steps.error());
    return {{"ok", true}, {"value", *steps}};
  }
  if (op == "kill_step") {
    Status st =
        slurm::KillJobStep(request.at("job").get<uint32_t>(), request.at("step").get<uint32_t>(),
                           request.at("signal").get<int>());
    if (!st) return ErrorReply(st.error());
    return {{"ok", true}};
  }
  if (op == "requeue") {
    Status st = slurm::RequeueJob(request.at("job").get<uint32_t>());
    if (!st) return ErrorReply(st.error());
    return {{"ok", true}};
  }
  if (op == "job_state") {
    auto state = slurm::JobState(request.at("job").get<uint32_t>());
    if (!state) return ErrorReply(state.error());
    return {{"ok", true}, {"value", *state}};
  }
  return {{"ok", false}, {"error", "unknown request '" + op + "'"}};
}

[[noreturn]] void BrokerMain(int fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE}) signal(s, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::string in;
  char buf[4096];
  while (true) {
    size_t nl;
    while ((nl = in.find('\n')) != std::string::npos) {
      Json request = Json::parse(in.substr(0, nl), nullptr, false);
      in.erase(0, nl + 1);
      Json reply;
      try {
        reply =
            request.is_object() ? Handle(request) : Json{{"ok", false}, {"error", "bad request"}};
      } catch (const std::exception& e) {
        reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
      }
      if (!WriteAll(fd, reply.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"))
        _exit(0);
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0);  // strund is gone
    in.append(buf, size_t(n));
  }
}

}  // namespace

Result<std::unique_ptr<SlurmBroker>> SlurmBroker::Start() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return MakeError(std::string("socketpair: ") + std::strerror(errno));
  // Blocked across the fork, so that none of them reaches the broker before it ignores them.
  sigset_t handled, old;
  sigemptyset(&handled);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&handled, s);
  sigprocmask(SIG_BLOCK, &handled, &old);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    BrokerMain(fds[1]);
  }
  const int fork_errno = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return MakeError(std::string("fork: ") + std::strerror(fork_errno));
  }
  close(fds[1]);
  return std::unique_ptr<SlurmBroker>(new SlurmBroker(pid, fds[0]));
}

SlurmBroker::~SlurmBroker() {
  close(fd_);  // the broker reads end-of-file and exits
  for (int i = 0; i < 100; ++i) {
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) return;
    usleep(10000);
  }
  kill(pid_, SIGKILL);  // busy in a call: it is only ever a query
  waitpid(pid_, nullptr, 0);
}

Result<std::string> SlurmBroker::Call(const std::string& request_line) {
  if (!WriteAll(fd_, request_line + "\n"))
    return MakeError("strund's Slurm helper process (pid " + std::to_string(pid_) + ") is gone");
  const double deadline = MonoSeconds() + kCallTimeoutS;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const double left = deadline - MonoSeconds();
    if (left <= 0) return MakeError("strund's Slurm helper process did not answer in time");
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, int(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0)
      return MakeError("strund's Slurm helper process (pid " + std::to_string(pid_) + ") is gone");
    buffer_.append(buf, size_t(n));
  }
}

namespace {

// The reply's value, or its error.
Result<Json> Parse(const Result<std::string>& line) {
  if (!line) return line.error();
  Json reply = Json::parse(*line, nullptr, false);
  if (!reply.is_object()) return MakeError("strund's Slurm helper process sent a bad reply");
  if (!reply.value("ok", false)) return MakeError(reply.value("error", std::string("failed")));
  return reply.contains("value") ? reply["value"] : Json();
}

}  // namespace

Result<std::vector<slurm::NodeState>> SlurmBroker::NodeStates(
    const std::vector<std::string>& names) {
  auto value = Parse(Call(Json{{"op", "node_states"}, {"names", names}}.dump()));
  if (!value) return value.error();
  std::vector<slurm::NodeState> out;
  try {
    for (const auto& s : *value)
      out.push_back({s.at("name").get<std::string>(), s.at("state").get<std::string>(),
                     s.at("healthy").get<bool>(), s.at("reason").get<std::string>()});
  } catch (const Json::exception&) {
    return MakeError("strund's Slurm helper process sent a bad reply");
  }
  return out;
}

Result<std::string> SlurmBroker::NodeAddress(const std::string& node) {
  auto value = Parse(Call(Json{{"op", "node_address"}, {"node", node}}.dump()));
  if (!value) return value.error();
  if (!value->is_string()) return MakeError("strund's Slurm helper process sent a bad reply");
  return value->get<std::string>();
}

Result<std::vector<uint32_t>> SlurmBroker::JobSteps(uint32_t job_id) {
  auto value = Parse(Call(Json{{"op", "job_steps"}, {"job", job_id}}.dump()));
  if (!value) return value.error();
  std::vector<uint32_t> out;
  for (const auto& v : *value)
    if (v.is_number_unsigned()) out.push_back(v.get<uint32_t>());
  return out;
}

Status SlurmBroker::KillJobStep(uint32_t job_id, uint32_t step_id, int signal) {
  auto value = Parse(Call(
      Json{{"op", "kill_step"}, {"job", job_id}, {"step", step_id}, {"signal", signal}}.dump()));
  if (!value) return value.error();
  return {};
}

Status SlurmBroker::RequeueJob(uint32_t job_id) {
  auto value = Parse(Call(Json{{"op", "requeue"}, {"job", job_id}}.dump()));
  if (!value) return value.error();
  return {};
}

Result<std::string> SlurmBroker::JobState(uint32_t job_id) {
  auto value = Parse(Call(Json{{"op", "job_state"}, {"job", job_id}}.dump()));
  if (!value) return value.error();
  if (!value->is_string()) return MakeError("strund's Slurm helper process sent a bad reply");
  return value->get<std::string>();
}

}  // namespace strun::daemon

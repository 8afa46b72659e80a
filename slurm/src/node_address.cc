// A node's address: Slurm's NodeAddr first, name resolution second.
//
// libslurm calls fatal() (exit) when it finds no configuration and may wait for a long time when
// slurmctld is unreachable, so the query runs in a forked child that reports through a pipe and
// is abandoned after a deadline. The caller can never be killed or hung by it.
#include "strun/slurm/node_address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace strun::slurm {
namespace {

// libslurm retries an unreachable controller for about 9 s before it gives up.
constexpr auto kSlurmQueryTimeout = std::chrono::seconds(10);

struct SlurmNodeInfo {
  std::string node_addr;
  std::string node_hostname;
};

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Where libslurm looks for slurm.conf when SLURM_CONF is unset (the Debian build's default, and
// the copy slurmd keeps in configless mode). Without any of them libslurm would try DNS SRV
// records and, failing, exit; we skip it instead.
bool SlurmConfigExists() {
  if (const char* conf = std::getenv("SLURM_CONF")) return access(conf, R_OK) == 0;
  return access("/etc/slurm/slurm.conf", R_OK) == 0 ||
         access("/run/slurm/conf/slurm.conf", R_OK) == 0;
}

// Runs in the child: "+addr\nhostname\n" on success, "-reason" otherwise.
[[noreturn]] void QueryInChild(const std::string& node_name, int out) {
  // libslurm's fatal() calls exit(): this handler, registered last, runs first and keeps the
  // parent's exit handlers (static destructors, clean-up of files or processes) from running
  // in the child.
  std::atexit([] { _exit(3); });
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);  // libslurm's own error lines are summarised by us
  }
  slurm_init(nullptr);
  node_info_msg_t* info = nullptr;
  std::vector<char> name(node_name.begin(), node_name.end());
  name.push_back('\0');
  if (slurm_load_node_single(&info, name.data(), SHOW_ALL) != SLURM_SUCCESS) {
    WriteAll(out,
             std::string("-slurm_load_node_single failed: ") + slurm_strerror(slurm_get_errno()));
    _exit(0);
  }
  std::string reply = "-slurmctld does not know the node";
  for (uint32_t i = 0; info != nullptr && i < info->record_count; ++i) {
    const node_info_t& node = info->node_array[i];
    if (node.name == nullptr || node_name != node.name) continue;
    reply = "+";
    reply += node.node_addr ? node.node_addr : "";
    reply += "\n";
    reply += node.node_hostname ? node.node_hostname : "";
    reply += "\n";
    break;
  }
  WriteAll(out, reply);
  _exit(0);
}

Result<SlurmNodeInfo> QuerySlurm(const std::string& node_name) {
  // libslurm waits 60 s for a SLURM_CONF that does not exist before it gives up.
  if (!SlurmConfigExists()) {
    const char* conf = std::getenv("SLURM_CONF");
    return MakeError(conf ? std::string("SLURM_CONF=") + conf + " cannot be read"
                          : std::string("no slurm.conf (set SLURM_CONF)"));
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return MakeError(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return MakeError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    QueryInChild(node_name, fds[1]);
  }
  close(fds[1]);
  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + kSlurmQueryTimeout;
  bool timed_out = false;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      timed_out = r == 0;
      break;
    }
    char buf[512];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return MakeError("slurmctld did not answer within " +
                     std::to_string(kSlurmQueryTimeout.count()) + " s");
  }
  if (reply.empty()) {
    return MakeError(
        "libslurm could not load its configuration (set SLURM_CONF or check "
        "slurm.conf)");
  }
  if (reply[0] == '-') return MakeError(reply.substr(1));
  size_t nl = reply.find('\n', 1);
  SlurmNodeInfo info;
  info.node_addr = reply.substr(1, nl == std::string::npos ? std::string::npos : nl - 1);
  if (nl != std::string::npos) {
    size_t nl2 = reply.find('\n', nl + 1);
    info.node_hostname = reply.substr(nl + 1, nl2 == std::string::npos ? nl2 : nl2 - nl - 1);
  }
  return info;
}

}  // namespace

Result<std::string> ResolveHost(const std::string& host) {
  if (host.empty()) return MakeError("cannot resolve an empty host name");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return MakeError("cannot resolve host '" + host + "': " + gai_strerror(rc));
  }
  // IPv4 first: it is what every peer (gloo, NCCL, our coordination service) can reach.
  const addrinfo* pick = nullptr;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
    if (pick == nullptr && a->ai_family == AF_INET6) pick = a;
  }
  std::string out;
  if (pick != nullptr) {
    char text[NI_MAXHOST];
    if (getnameinfo(pick->ai_addr, pick->ai_addrlen, text, sizeof text, nullptr, 0,
                    NI_NUMERICHOST) == 0) {
      out = text;
    }
  }
  freeaddrinfo(found);
  if (out.empty()) return MakeError("host '" + host + "' has no IPv4 or IPv6 address");
  return out;
}

Result<std::string> NodeAddress(const std::string& node_name) {
  if (node_name.empty()) return MakeError("cannot find the address of an empty node name");
  std::string tried;
  auto slurm = QuerySlurm(node_name);
  if (slurm.ok()) {
    // NodeAddr defaults to NodeHostname, which defaults to NodeName: it may still be a name.
    for (const std::string& candidate : {slurm->node_addr, slurm->node_hostname}) {
      if (candidate.empty()) continue;
      auto resolved = ResolveHost(candidate);
      if (resolved.ok()) return resolved;
      tried += "; Slurm's address for it, " + resolved.error().message;
    }
  } else {
    tried += "; Slurm: " + slurm.error().message;
  }
  auto resolved = ResolveHost(node_name);
  if (resolved.ok()) return resolved;
  return MakeError("no address for node '" + node_name + "'" + tried + "; " +
                   resolved.error().message +
                   ". Give the node a NodeAddr in slurm.conf or make its name resolve");
}

}  // namespace strun::slurm

// slurm_child.h: a libslurm call in a forked child, answered through a pipe.
#include "strun/slurm/slurm_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace strun::slurm {
namespace {

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += size_t(n);
  }
}

}  // namespace

bool SlurmConfigExists() {
  if (const char* conf = std::getenv("SLURM_CONF")) return access(conf, R_OK) == 0;
  return access("/etc/slurm/slurm.conf", R_OK) == 0 ||
         access("/run/slurm/conf/slurm.conf", R_OK) == 0;
}

std::string LastSlurmError() { return slurm_strerror(slurm_get_errno()); }

Result<std::string> CallInSlurmChild(const std::string& what,
                                     const std::function<std::string()>& body,
                                     std::chrono::seconds timeout) {
  const std::string prefix = what.empty() ? "" : what + ": ";
  if (!SlurmConfigExists()) {
    const char* conf = std::getenv("SLURM_CONF");
    return MakeError(prefix + (conf ? std::string("SLURM_CONF=") + conf + " cannot be read"
                                    : std::string("no slurm.conf (set SLURM_CONF)")));
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return MakeError(prefix + "pipe: " + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return MakeError(prefix + "fork: " + std::strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    // libslurm's fatal() calls exit(): this handler, registered last, runs first and keeps the
    // parent's exit handlers (static destructors, clean-up of files or processes) from running.
    std::atexit([] { _exit(3); });
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);  // libslurm's own error lines are summarised by the caller
    }
    slurm_init(nullptr);
    WriteAll(fds[1], body());
    _exit(0);
  }
  close(fds[1]);
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = poll(&p, 1, int(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      timed_out = r == 0;
      break;
    }
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, size_t(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return MakeError(prefix + "slurmctld did not answer within " + std::to_string(timeout.count()) +
                     " s");
  if (reply.empty())
    return MakeError(
        prefix + "libslurm could not load its configuration (set SLURM_CONF or check slurm.conf)");
  if (reply[0] == '-') return MakeError(prefix + reply.substr(1));
  return reply.substr(1);
}

}  // namespace strun::slurm

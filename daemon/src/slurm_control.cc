// Job steps, step kills and requeues through libslurm (slurm_control.h), each in a forked child.
#include "strun/daemon/slurm_control.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>

namespace strun::daemon {
namespace {

constexpr auto kSlurmCallTimeout = std::chrono::seconds(10);

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += size_t(n);
  }
}

bool SlurmConfigExists() {
  if (const char* conf = std::getenv("SLURM_CONF")) return access(conf, R_OK) == 0;
  return access("/etc/slurm/slurm.conf", R_OK) == 0 ||
         access("/run/slurm/conf/slurm.conf", R_OK) == 0;
}

std::string SlurmError() { return slurm_strerror(slurm_get_errno()); }

// Runs `body` in a forked child after slurm_init; the child's answer is "+payload" or "-error".
Result<std::string> InSlurmChild(const std::string& what,
                                 const std::function<std::string()>& body) {
  if (!SlurmConfigExists()) {
    const char* conf = std::getenv("SLURM_CONF");
    return MakeError(what + ": " +
                     (conf ? std::string("SLURM_CONF=") + conf + " cannot be read"
                           : std::string("no slurm.conf (set SLURM_CONF)")));
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return MakeError(what + ": pipe: " + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return MakeError(what + ": fork: " + std::strerror(errno));
  }
  if (pid == 0) {
    close(fds[0]);
    std::atexit([] { _exit(3); });  // libslurm's fatal() must not run the parent's exit handlers
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
    }
    slurm_init(nullptr);
    WriteAll(fds[1], body());
    _exit(0);
  }
  close(fds[1]);
  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + kSlurmCallTimeout;
  bool timed_out = false;
  while (true) {
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
    return MakeError(what + ": slurmctld did not answer within " +
                     std::to_string(kSlurmCallTimeout.count()) + " s");
  if (reply.empty())
    return MakeError(
        what + ": libslurm could not load its configuration (set SLURM_CONF or check slurm.conf)");
  if (reply[0] == '-') return MakeError(what + ": " + reply.substr(1));
  return reply.substr(1);
}

}  // namespace

Result<std::vector<uint32_t>> JobSteps(uint32_t job_id) {
  auto reply = InSlurmChild("listing the steps of job " + std::to_string(job_id), [job_id] {
    job_step_info_response_msg_t* steps = nullptr;
    if (slurm_get_job_steps(0, job_id, NO_VAL, &steps, SHOW_ALL) != SLURM_SUCCESS)
      return "-" + SlurmError();
    std::string out = "+";
    for (uint32_t i = 0; steps != nullptr && i < steps->job_step_count; ++i) {
      const auto& s = steps->job_steps[i];
      if (s.step_id.job_id != job_id || s.step_id.step_id >= SLURM_MAX_NORMAL_STEP_ID) continue;
      out += std::to_string(s.step_id.step_id) + "\n";
    }
    return out;
  });
  if (!reply) return reply.error();
  std::vector<uint32_t> ids;
  std::istringstream in(*reply);
  uint32_t id;
  while (in >> id) ids.push_back(id);
  return ids;
}

Status KillJobStep(uint32_t job_id, uint32_t step_id, int signal) {
  auto reply = InSlurmChild(
      "signalling step " + std::to_string(job_id) + "." + std::to_string(step_id), [=] {
        if (slurm_kill_job_step(job_id, step_id, uint16_t(signal)) != SLURM_SUCCESS) {
          int e = slurm_get_errno();
          // A step that ended meanwhile is what we wanted.
          if (e == ESLURM_ALREADY_DONE || e == ESLURM_INVALID_JOB_ID) return std::string("+");
          return "-" + SlurmError();
        }
        return std::string("+");
      });
  if (!reply) return reply.error();
  return {};
}

Result<std::string> JobState(uint32_t job_id) {
  return InSlurmChild("the state of job " + std::to_string(job_id), [job_id] {
    job_info_msg_t* jobs = nullptr;
    if (slurm_load_job(&jobs, job_id, SHOW_ALL) != SLURM_SUCCESS) return "-" + SlurmError();
    for (uint32_t i = 0; jobs != nullptr && i < jobs->record_count; ++i) {
      if (jobs->job_array[i].job_id != job_id) continue;
      static const char* const kNames[] = {"PENDING",   "RUNNING",   "SUSPENDED", "COMPLETED",
                                           "CANCELLED", "FAILED",    "TIMEOUT",   "NODE_FAIL",
                                           "PREEMPTED", "BOOT_FAIL", "DEADLINE",  "OUT_OF_MEMORY"};
      const uint32_t base = jobs->job_array[i].job_state & JOB_STATE_BASE;
      return std::string("+") +
             (base < sizeof kNames / sizeof kNames[0] ? kNames[base] : "UNKNOWN");
    }
    return std::string("-slurmctld does not know the job");
  });
}

Status RequeueJob(uint32_t job_id) {
  auto reply = InSlurmChild("requeueing job " + std::to_string(job_id), [job_id] {
    if (slurm_requeue(job_id, 0) != SLURM_SUCCESS) {
      int e = slurm_get_errno();
      std::string msg = "-slurm_requeue: " + SlurmError();
      if (e == ESLURM_DISABLED || e == ESLURM_BATCH_ONLY)
        msg +=
            " (the job cannot be requeued: submit it with sbatch --requeue, or set JobRequeue=1 in "
            "slurm.conf)";
      return msg;
    }
    return std::string("+");
  });
  if (!reply) return reply.error();
  return {};
}

}  // namespace strun::daemon

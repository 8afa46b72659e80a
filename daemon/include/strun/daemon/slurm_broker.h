// strun/daemon/slurm_broker.h: libslurm calls for a process that has threads.
//
// strun/slurm (node_state.h, job_control.h, ...) calls libslurm in forked children, so that
// libslurm's fatal() or an unreachable slurmctld can neither end nor hang the caller. A child
// forked from a process with threads may, strictly, only call async-signal-safe functions until it
// execs (another thread may hold a lock the child needs: stdio, the allocator, ASan's), and strund
// runs the coordination service in a thread. So strund forks one broker process at start-up, while
// it has no thread yet; the broker, single-threaded, makes the forked calls and answers over a
// socket pair (one JSON line per request and reply). The broker ignores the signals strund handles
// (Slurm may signal the batch step's process group), dies with strund (PR_SET_PDEATHSIG) and
// exits when strund closes the socket.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "strun/result.h"
#include "strun/slurm/node_state.h"

namespace strun::daemon {

class SlurmBroker {
 public:
  // Forks the broker. Call it before the process starts any thread.
  static Result<std::unique_ptr<SlurmBroker>> Start();
  ~SlurmBroker();
  SlurmBroker(const SlurmBroker&) = delete;
  SlurmBroker& operator=(const SlurmBroker&) = delete;

  // As strun::slurm::QueryNodeStates, NodeAddress, and job_control.h's functions.
  Result<std::vector<slurm::NodeState>> NodeStates(const std::vector<std::string>& names);
  Result<std::string> NodeAddress(const std::string& node);
  Result<std::vector<uint32_t>> JobSteps(uint32_t job_id);
  Status KillJobStep(uint32_t job_id, uint32_t step_id, int signal);
  Status RequeueJob(uint32_t job_id);
  Result<std::string> JobState(uint32_t job_id);

  pid_t pid() const { return pid_; }

 private:
  SlurmBroker(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  Result<std::string> Call(const std::string& request_line);
  pid_t pid_;
  int fd_;
  std::string buffer_;
};

}  // namespace strun::daemon

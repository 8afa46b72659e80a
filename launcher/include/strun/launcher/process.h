// strun/launcher/process.h: starting workers and making sure none outlives strun.
//
// Each worker is its own process group (setpgid), so that stopping it reaches the processes it
// started (data loader workers, compilers). A worker also gets PR_SET_PDEATHSIG=SIGKILL, and strun
// starts one tiny guardian process at start-up that holds the list of worker process groups and
// SIGKILLs them all the moment strun disappears (its pipe from strun reads end-of-file), so that
// even `kill -9 strun` leaves nothing behind. strun is also a child subreaper
// (PR_SET_CHILD_SUBREAPER): orphans of workers are reparented to it and reaped.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::launcher {

struct SpawnedWorker {
  pid_t pid = -1;    // also the process group id
  int stdout_fd = -1;  // read ends of the worker's stdout/stderr pipes (non-blocking, CLOEXEC)
  int stderr_fd = -1;
  int exec_status_fd = -1;  // see WaitForExec
};

// Forks and execs argv[0] (PATH lookup when it has no '/') with exactly `env`. Signals blocked in
// the caller are unblocked and handlers reset in the worker. Returns at once, so that many workers
// exec in parallel; WaitForExec then turns an exec failure ("python3: No such file or directory")
// into an error (and reaps the child) instead of a worker that exits 127.
// `in_child`, when given, runs in the forked child just before exec (single-threaded there), e.g. to
// enter a container; on error its message goes to the worker's stderr and the worker exits 126. The
// program is then looked up in `env`'s PATH.
// `inherit_fd`, when >= 0, stays open in the worker under its own number (the progress channel).
Result<SpawnedWorker> SpawnWorker(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                                  const std::function<Status()>& in_child = nullptr, int inherit_fd = -1);
Status WaitForExec(SpawnedWorker& worker, const std::string& program);

// The guardian. Start() once, early; Track/Untrack as groups come and go.
class Guardian {
 public:
  static Status Start();
  static void Track(pid_t pgid);
  static void Untrack(pid_t pgid);
};

// Sends `sig` to the whole process group `pgid` (ignores groups that are gone).
void SignalGroup(pid_t pgid, int sig);

// Text for a wait status: "exit code 1", "signal 9 (SIGKILL)". Exit code convention: 128+N for
// signal N (what a shell reports).
int ExitCodeOf(int wait_status);
int TorchExitCodeOf(int wait_status);  // torchrun's convention: -N for signal N
std::string SignalName(int sig);

}  // namespace strun::launcher

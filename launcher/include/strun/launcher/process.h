// strun/launcher/process.h: starting workers and making sure none outlives strun.
//
// What each mechanism covers:
//  - Process groups: each worker is its own process group (setpgid), so that stopping it reaches
//    the processes it started (data loader workers, compilers), and a group is SIGKILLed when its
//    worker's attempt ends. A descendant that leaves the group (setsid, setpgid) is not reached.
//  - strun's own cgroup (cgroup v2, where strun may create one: root, or a delegated subtree;
//    STRUN_CGROUP=0 turns it off): <strun's cgroup>/strun-<pid>. Every worker moves itself into
//    it before exec, so every descendant is in it whatever it does to its session or group, and
//    cgroup.kill (or SIGKILL to each listed process on kernels before 5.14) ends them all, at
//    strun's exit and, through the guardian, after `kill -9 strun`. Only a descendant with the
//    privilege to move itself to another cgroup escapes it.
//  - PR_SET_PDEATHSIG=SIGKILL on each worker: a worker dies with strun, even by SIGKILL.
//  - The guardian: a tiny process started at start-up that holds the list of worker process
//    groups (and the cgroup's path) and, the moment strun disappears (its pipe from strun reads
//    end-of-file, also after `kill -9 strun`), SIGKILLs the groups and empties and removes the
//    cgroup.
//  - Child subreaper (PR_SET_CHILD_SUBREAPER): orphans of workers are reparented to strun instead
//    of init, so while strun lives every descendant stays in strun's process tree. At a normal
//    exit (Guardian::Finish) strun SIGKILLs and reaps every descendant that tree holds, cgroup or
//    not (children strun had before the guardian started, e.g. an EDF container's FUSE daemons,
//    are left to their owner).
// So: at a normal exit nothing is left behind; after `kill -9 strun` nothing is left where strun
// has its cgroup; without one (no cgroup v2, or no permission) `kill -9 strun` still ends every
// worker and its process group, but a descendant that left both (e.g. `setsid cmd &`) survives.
//
// File descriptors: strun raises its soft RLIMIT_NOFILE to the hard limit at start-up
// (RaiseFdLimit), so that connections and output pipes cannot starve a group restart; workers get
// the original soft limit back (select() breaks on descriptors above 1024).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::launcher {

struct SpawnedWorker {
  pid_t pid = -1;      // also the process group id
  int stdout_fd = -1;  // read ends of the worker's stdout/stderr pipes (non-blocking, CLOEXEC)
  int stderr_fd = -1;
  int exec_status_fd = -1;  // see WaitForExec
};

// Forks and execs argv[0] (PATH lookup when it has no '/') with exactly `env`. Signals blocked in
// the caller are unblocked and handlers reset in the worker. Returns at once, so that many workers
// exec in parallel; WaitForExec then turns an exec failure ("python3: No such file or directory")
// into an error (and reaps the child) instead of a worker that exits 127.
// `in_child`, when given, runs in the forked child just before exec (single-threaded there), e.g.
// to enter a container; on error its message goes to the worker's stderr and the worker exits 126.
// The program is then looked up in `env`'s PATH. `inherit_fd`, when >= 0, stays open in the worker
// under its own number (the progress channel).
Result<SpawnedWorker> SpawnWorker(const std::vector<std::string>& argv,
                                  const std::map<std::string, std::string>& env,
                                  const std::function<Status()>& in_child = nullptr,
                                  int inherit_fd = -1);
Status WaitForExec(SpawnedWorker& worker, const std::string& program);

// Forks and execs argv[0] (PATH lookup) with exactly `env` as the leader of a process group of its
// own, stdin/stdout/stderr inherited (strund's srun). The child gets SIGPIPE's default back and an
// empty signal mask; other dispositions are inherited. Everything is prepared before fork, so the
// caller may have threads. An exec failure is written to stderr as "<who>: cannot run <argv[0]>:
// <why>" and the child exits 127.
Result<pid_t> SpawnProcessGroup(const std::vector<std::string>& argv,
                                const std::map<std::string, std::string>& env,
                                const std::string& who);

// The guardian. Start() once, early (strun must already be a child subreaper); Track/Untrack as
// groups come and go; Finish() once at exit. `own_cgroup`: try to create strun's cgroup (a
// failure only means running without one; `note` then says why).
class Guardian {
 public:
  static Status Start(bool own_cgroup, std::string* note = nullptr);
  static void Track(pid_t pgid);
  static void Untrack(pid_t pgid);
  // Kills and reaps every descendant of strun (see above), removes the cgroup, ends the guardian.
  static void Finish();
  // Whether workers are put in strun's own cgroup.
  static bool HasCgroup();
};

// Raises the soft RLIMIT_NOFILE to the hard limit; workers are spawned with the original.
void RaiseFdLimit();

// Sends `sig` to the whole process group `pgid` (ignores groups that are gone).
void SignalGroup(pid_t pgid, int sig);

// Text for a wait status: "exit code 1", "signal 9 (SIGKILL)". Exit code convention: 128+N for
// signal N (what a shell reports).
int ExitCodeOf(int wait_status);
int TorchExitCodeOf(int wait_status);  // torchrun's convention: -N for signal N
std::string SignalName(int sig);

}  // namespace strun::launcher

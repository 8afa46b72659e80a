#include "strun/launcher/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "own_cgroup.h"
#include "strun/clock.h"

extern char** environ;

namespace strun::launcher {
namespace {

int g_guardian_fd = -1;
pid_t g_guardian_pid = -1;
// Fixed buffers and plain fds: read in forked children, where nothing may allocate.
char g_cgroup_dir[4096] = "";
int g_cgroup_procs_fd = -1;     // strun's cgroup's cgroup.procs, for workers to join it
std::set<pid_t> g_preexisting;  // strun's children before the guardian (not its to kill)
rlimit g_worker_nofile{};
bool g_restore_nofile = false;

struct ProcInfo {
  pid_t ppid = 0;
  char state = '?';
};

// Every process of this PID namespace: parent and state, from /proc/PID/stat.
std::map<pid_t, ProcInfo> ScanProcesses() {
  std::map<pid_t, ProcInfo> procs;
  DIR* d = opendir("/proc");
  if (!d) return procs;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = fopen(path, "re");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char* close_paren = strrchr(buf, ')');  // the command name may hold spaces and ')'
    if (!close_paren || close_paren[1] != ' ') continue;
    ProcInfo info;
    info.state = close_paren[2];
    info.ppid = pid_t(atol(close_paren + 4));
    procs[pid_t(atol(e->d_name))] = info;
  }
  closedir(d);
  return procs;
}

// Descendants of `root`, leaving out the subtrees of `skip`.
std::vector<pid_t> Descendants(const std::map<pid_t, ProcInfo>& procs, pid_t root,
                               const std::set<pid_t>& skip) {
  std::multimap<pid_t, pid_t> children;
  for (const auto& [pid, info] : procs) children.emplace(info.ppid, pid);
  std::vector<pid_t> out, todo{root};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    auto [first, last] = children.equal_range(p);
    for (auto it = first; it != last; ++it)
      if (!skip.count(it->second)) {
        out.push_back(it->second);
        todo.push_back(it->second);
      }
  }
  return out;
}

void WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data += w;
    n -= size_t(w);
  }
}

[[noreturn]] void GuardianMain(int read_fd) {
  // Ignore every signal a terminal or Slurm sends to the whole group: the guardian ends only when
  // strun is gone (end-of-file on the pipe).
  for (int s :
       {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGTSTP, SIGCONT, SIGALRM})
    signal(s, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::set<pid_t> groups;
  std::string buf;
  char chunk[4096];
  for (;;) {
    ssize_t n = read(read_fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, size_t(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line.size() < 2) continue;
      pid_t pg = pid_t(atol(line.c_str() + 1));
      if (pg <= 1) continue;
      if (line[0] == '+')
        groups.insert(pg);
      else
        groups.erase(pg);
    }
  }
  for (pid_t pg : groups) kill(-pg, SIGKILL);
  if (g_cgroup_dir[0]) KillAndRemoveCgroup(g_cgroup_dir, 10.0);
  _exit(0);
}

// argv and "NAME=value" strings as execvpe takes them, built before fork: the child must not
// allocate.
class ExecStrings {
 public:
  ExecStrings(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env)
      : argv_strings_(argv) {
    env_strings_.reserve(env.size());
    for (const auto& [k, v] : env) env_strings_.push_back(k + "=" + v);
    for (auto& s : env_strings_) envp_.push_back(s.data());
    envp_.push_back(nullptr);
    for (auto& s : argv_strings_) argv_.push_back(s.data());
    argv_.push_back(nullptr);
  }
  const char* file() const { return argv_[0]; }
  char* const* argv() const { return argv_.data(); }
  char** envp() const { return const_cast<char**>(envp_.data()); }

 private:
  std::vector<std::string> argv_strings_, env_strings_;
  std::vector<char*> argv_, envp_;
};

}  // namespace

Status Guardian::Start(bool own_cgroup, std::string* note) {
  if (g_guardian_fd >= 0) return {};
  const pid_t self = getpid();
  for (const auto& [pid, info] : ScanProcesses())
    if (info.ppid == self) g_preexisting.insert(pid);
  if (own_cgroup) {
    auto dir = CreateOwnCgroup();
    if (dir && dir->size() < sizeof g_cgroup_dir) {
      g_cgroup_procs_fd = open((*dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (g_cgroup_procs_fd >= 0)
        snprintf(g_cgroup_dir, sizeof g_cgroup_dir, "%s", dir->c_str());
      else
        rmdir(dir->c_str());
    } else if (note) {
      *note = dir ? "cgroup path too long" : dir.error().message;
    }
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return MakeError(std::string("strun: pipe: ") + strerror(errno));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return MakeError(std::string("strun: fork: ") + strerror(errno));
  if (pid == 0) {
    close(fds[1]);
    // Own process group: a Ctrl-C or a group signal to strun's group must not reach it.
    setpgid(0, 0);
    prctl(PR_SET_NAME, "strun-guardian");
    // Close everything else so that the guardian holds no worker pipe or socket open.
    if (fds[0] > 3) close_range(3, unsigned(fds[0]) - 1, 0);
    close_range(unsigned(fds[0]) + 1, ~0U, 0);
    if (getppid() != parent) _exit(0);
    GuardianMain(fds[0]);
  }
  close(fds[0]);
  g_guardian_fd = fds[1];
  g_guardian_pid = pid;
  return {};
}

bool Guardian::HasCgroup() { return g_cgroup_dir[0] != '\0'; }

void Guardian::Finish() {
  if (g_cgroup_dir[0]) {
    KillAndRemoveCgroup(g_cgroup_dir, 5.0);
    g_cgroup_dir[0] = '\0';
    close(g_cgroup_procs_fd);
    g_cgroup_procs_fd = -1;
  }
  // As a child subreaper strun holds every descendant in its tree: kill what is there, reap what
  // comes back to it, until nothing is left (bounded: a process in uninterruptible I/O dies late).
  std::set<pid_t> skip = g_preexisting;
  if (g_guardian_pid > 0) skip.insert(g_guardian_pid);
  const pid_t self = getpid();
  const double deadline = MonoSeconds() + 5.0;
  for (;;) {
    const auto procs = ScanProcesses();
    bool left = false;
    for (pid_t pid : Descendants(procs, self, skip)) {
      const ProcInfo& info = procs.at(pid);
      if (info.ppid == self && waitpid(pid, nullptr, WNOHANG) == pid) continue;
      if (info.state != 'Z') kill(pid, SIGKILL);
      left = true;
    }
    if (!left || MonoSeconds() > deadline) break;
    usleep(2000);
  }
  if (g_guardian_fd >= 0) {
    close(g_guardian_fd);
    g_guardian_fd = -1;
    while (waitpid(g_guardian_pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    g_guardian_pid = -1;
  }
}

void RaiseFdLimit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  rlimit raised = r;
  raised.rlim_cur = r.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
    g_worker_nofile = r;
    g_restore_nofile = true;
  }
}

void Guardian::Track(pid_t pgid) {
  if (g_guardian_fd < 0) return;
  char line[32];
  int n = snprintf(line, sizeof line, "+%d\n", int(pgid));
  WriteAll(g_guardian_fd, line, size_t(n));
}

void Guardian::Untrack(pid_t pgid) {
  if (g_guardian_fd < 0) return;
  char line[32];
  int n = snprintf(line, sizeof line, "-%d\n", int(pgid));
  WriteAll(g_guardian_fd, line, size_t(n));
}

void SignalGroup(pid_t pgid, int sig) {
  if (pgid > 1) kill(-pgid, sig);
}

Result<SpawnedWorker> SpawnWorker(const std::vector<std::string>& argv,
                                  const std::map<std::string, std::string>& env,
                                  const std::function<Status()>& in_child, int inherit_fd) {
  if (argv.empty()) return MakeError("strun: empty worker command");
  int out[2], err[2], status_pipe[2];
  if (pipe2(out, O_CLOEXEC) != 0) return MakeError(std::string("strun: pipe: ") + strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return MakeError(std::string("strun: pipe: ") + strerror(errno));
  }
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    return MakeError(std::string("strun: pipe: ") + strerror(errno));
  }
  // Everything the child needs is prepared before fork: no allocation after it.
  const ExecStrings exec(argv, env);
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    close(status_pipe[0]);
    close(status_pipe[1]);
    return MakeError(std::string("strun: fork: ") + strerror(e));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // strun died between fork and prctl
    // Into strun's cgroup before anything can fork (process.h); "0" means the writer.
    if (g_cgroup_procs_fd >= 0) (void)!write(g_cgroup_procs_fd, "0", 1);
    if (g_restore_nofile) setrlimit(RLIMIT_NOFILE, &g_worker_nofile);
    for (int s = 1; s < NSIG; ++s) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      signal(s, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (inherit_fd > 2) fcntl(inherit_fd, F_SETFD, 0);
    if (in_child) {
      if (Status st = in_child(); !st) {
        std::string m = "strun: " + st.error().message + "\n";
        WriteAll(2, m.data(), m.size());
        _exit(126);
      }
      environ = exec.envp();  // execvpe searches the PATH of the (container's) task environment
    }
    execvpe(exec.file(), exec.argv(), exec.envp());
    int e = errno;
    WriteAll(status_pipe[1], reinterpret_cast<const char*>(&e), sizeof e);
    _exit(127);
  }
  // Both sides call setpgid so that the group exists before anyone signals it.
  setpgid(pid, pid);
  Guardian::Track(pid);
  close(out[1]);
  close(err[1]);
  close(status_pipe[1]);
  fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
  fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
  return SpawnedWorker{pid, out[0], err[0], status_pipe[0]};
}

Result<pid_t> SpawnProcessGroup(const std::vector<std::string>& argv,
                                const std::map<std::string, std::string>& env,
                                const std::string& who) {
  if (argv.empty()) return MakeError(who + ": empty command");
  const ExecStrings exec(argv, env);
  const std::string failed = who + ": cannot run " + argv[0] + ": ";
  pid_t pid = fork();
  if (pid < 0) return MakeError(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvpe(exec.file(), exec.argv(), exec.envp());
    const char* why = strerror(errno);
    WriteAll(2, failed.data(), failed.size());
    WriteAll(2, why, strlen(why));
    WriteAll(2, "\n", 1);
    _exit(127);
  }
  // Both sides call setpgid so that the group exists before anyone signals it.
  setpgid(pid, pid);
  return pid;
}

Status WaitForExec(SpawnedWorker& w, const std::string& program) {
  if (w.exec_status_fd < 0) return {};
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(w.exec_status_fd, &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(w.exec_status_fd);
  w.exec_status_fd = -1;
  if (n != sizeof child_errno)
    return {};  // end-of-file: exec succeeded (the pipe is close-on-exec)
  int st;
  waitpid(w.pid, &st, 0);
  Guardian::Untrack(w.pid);
  close(w.stdout_fd);
  close(w.stderr_fd);
  w.stdout_fd = w.stderr_fd = -1;
  std::string hint;
  if (child_errno == ENOENT && program.find('/') == std::string::npos)
    hint = " (not found in PATH; set STRUN_PYTHON or PATH, or give the full path)";
  return MakeError("strun: cannot run '" + program + "': " + strerror(child_errno) + hint);
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

int ExitCodeOf(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

int TorchExitCodeOf(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return 1;
}

}  // namespace strun::launcher

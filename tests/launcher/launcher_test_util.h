// Helpers for tests that run the strun binary (STRUN_BIN, set by CMake).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace strun::launcher {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/strun_launcher_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)!system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
inline bool IsFile(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The single entry of a directory ("" if not exactly one).
inline std::string OnlyEntry(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        names.push_back(e->d_name);
    closedir(d);
  }
  return names.size() == 1 ? names[0] : "";
}

// Live (non-zombie) processes whose command line contains `marker`.
inline int CountProcesses(const std::string& marker) {
  int n = 0;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string base = std::string("/proc/") + e->d_name;
    std::string cmd = Slurp(base + "/cmdline");
    if (cmd.find(marker) == std::string::npos) continue;
    std::string stat = Slurp(base + "/stat");
    auto close_paren = stat.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < stat.size() &&
        stat[close_paren + 2] == 'Z')
      continue;
    ++n;
  }
  closedir(d);
  return n;
}

inline bool WaitFor(const std::function<bool()>& pred, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// Starts strun with `args`; stdout/stderr go to <dir>/<name>.out/.err.
// `in_child`, when given, runs in the child just before exec (e.g. to lower a limit).
inline pid_t StartStrun(const std::vector<std::string>& args, const class TempDir& dir,
                        const std::map<std::string, std::string>& env = {},
                        const std::string& name = "strun",
                        const std::function<void()>& in_child = nullptr) {
  std::string out = dir.path() + "/" + name + ".out", err = dir.path() + "/" + name + ".err";
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    int nul = open("/dev/null", O_RDONLY);
    dup2(nul, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (chdir(dir.path().c_str()) != 0) _exit(126);
    if (in_child) in_child();
    std::vector<char*> argv;
    std::string bin = STRUN_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(126);
  }
  return pid;
}

struct RunResult {
  int rc = -1;
  std::string out, err;
};

inline RunResult RunStrun(const std::vector<std::string>& args, const TempDir& dir,
                          const std::map<std::string, std::string>& env = {},
                          double timeout_s = 120) {
  pid_t pid = StartStrun(args, dir, env, "run");
  int st = 0;
  bool done = WaitFor([&] { return waitpid(pid, &st, WNOHANG) == pid; }, timeout_s);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  RunResult r;
  r.rc = !done ? -2 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = Slurp(dir.path() + "/run.out");
  r.err = Slurp(dir.path() + "/run.err");
  return r;
}

}  // namespace strun::launcher

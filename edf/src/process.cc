#include "process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace strun::edf::internal {

std::string FindProgram(const std::string& program) {
  if (program.find('/') != std::string::npos)
    return ::access(program.c_str(), X_OK) == 0 ? program : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t i = 0;
  while (i <= dirs.size()) {
    size_t j = dirs.find(':', i);
    if (j == std::string::npos) j = dirs.size();
    std::string candidate = dirs.substr(i, j - i) + "/" + program;
    if (j > i && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    i = j + 1;
  }
  return "";
}

namespace {

Result<std::string> Run(const std::vector<std::string>& argv, bool capture) {
  std::string exe = FindProgram(argv[0]);
  if (exe.empty()) return MakeError(fmt::format("'{}' not found in PATH; install it", argv[0]));
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return MakeError(fmt::format("pipe: {}", std::strerror(errno)));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return MakeError(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::dup2(p[1], 1);
    if (!capture) ::dup2(p[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execv(exe.c_str(), args.data());
    ::_exit(127);
  }
  ::close(p[1]);
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    output.append(buf, static_cast<size_t>(n));
    if (!capture && output.size() > 8192) output.erase(0, output.size() - 8192);
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return output;
  if (capture) output.clear();
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return MakeError(
      fmt::format("'{}' failed ({}): {}", cmd,
                  WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                    : fmt::format("signal {}", WTERMSIG(status)),
                  output.size() > 1500 ? output.substr(output.size() - 1500) : output));
}

}  // namespace

Status RunProgram(const std::vector<std::string>& argv) {
  auto r = Run(argv, false);
  if (!r.ok()) return r.error();
  return {};
}

Result<std::string> RunProgramOutput(const std::vector<std::string>& argv) {
  return Run(argv, true);
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  return s;
}

}  // namespace strun::edf::internal

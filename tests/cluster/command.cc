#include "cluster/command.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace strun::testing {
namespace {

int AnonymousFile() {
  FILE* f = tmpfile();
  if (!f) return -1;
  int fd = dup(fileno(f));
  fclose(f);
  return fd;
}

std::string ReadAll(int fd) {
  std::string data;
  if (fd < 0) return data;
  lseek(fd, 0, SEEK_SET);
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) data.append(buf, size_t(n));
  return data;
}

std::string Tail(const std::string& s, size_t max_chars) {
  return s.size() <= max_chars ? s : "[...]\n" + s.substr(s.size() - max_chars);
}

}  // namespace

std::string CommandResult::Describe() const {
  std::ostringstream o;
  o << "command: " << command << "\n";
  if (timed_out)
    o << "timed out after " << seconds << "s\n";
  else
    o << "exit code " << exit_code << " after " << seconds << "s\n";
  o << "--- stdout ---\n" << Tail(out, 8000) << "\n--- stderr ---\n" << Tail(err, 8000) << "\n";
  return o.str();
}

BackgroundCommand::BackgroundCommand(const std::string& command, const Env& extra_env)
    : command_(command), start_(std::chrono::steady_clock::now()) {
  out_fd_ = AnonymousFile();
  err_fd_ = AnonymousFile();
  // The environment is built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (!extra_env.count(key)) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : extra_env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string bash = "bash", dash_c = "-c";
  char* argv[] = {bash.data(), dash_c.data(), command_.data(), nullptr};

  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_fd_, 1);
    dup2(err_fd_, 2);
    // Signals the test process ignores or blocks would otherwise stay so in the command.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
    execve("/bin/bash", argv, envp.data());
    _exit(127);
  }
  if (pid_ > 0) setpgid(pid_, pid_);  // also here, so that Signal() works right after the fork
}

BackgroundCommand::~BackgroundCommand() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    if (!reaped_) waitpid(pid_, &status_, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

bool BackgroundCommand::Running() {
  if (pid_ <= 0 || reaped_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

void BackgroundCommand::Signal(int sig) {
  if (pid_ > 0) kill(-pid_, sig);
}

CommandResult BackgroundCommand::Wait(std::chrono::duration<double> timeout) {
  CommandResult r;
  r.command = command_;
  if (pid_ <= 0) {
    r.err = std::string("cannot start bash: ") + std::strerror(errno);
    return r;
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
  auto pause = std::chrono::milliseconds(1);
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      r.timed_out = true;
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      reaped_ = true;
      break;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (WIFEXITED(status_))
    r.exit_code = WEXITSTATUS(status_);
  else if (WIFSIGNALED(status_))
    r.exit_code = 128 + WTERMSIG(status_);
  r.out = ReadAll(out_fd_);
  r.err = ReadAll(err_fd_);
  return r;
}

CommandResult RunCommand(const std::string& command, std::chrono::duration<double> timeout,
                         const Env& extra_env) {
  BackgroundCommand c(command, extra_env);
  return c.Wait(timeout);
}

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

std::string ReadFileOr(const std::string& path, const std::string& fallback) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fallback;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace strun::testing

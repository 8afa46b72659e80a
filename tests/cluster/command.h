// tests/cluster/command.h: running shell commands from tests, with a deadline and captured output.
//
// A command runs as `bash -c COMMAND` in its own process group with the test's environment plus
// the given variables. Its stdout and stderr go to unnamed files, so commands that leave
// background processes holding them never block the test. When the deadline passes, or when the
// BackgroundCommand is destroyed, the whole process group is killed: a test never leaks a shell.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>

namespace strun::testing {

using Env = std::map<std::string, std::string>;

struct CommandResult {
  std::string command;
  int exit_code = -1;      // the exit status, or 128+signal for a signal, -1 when it was not reaped
  bool timed_out = false;  // killed because the deadline passed
  double seconds = 0;      // wall time from start to exit
  std::string out;
  std::string err;

  bool ok() const { return exit_code == 0 && !timed_out; }
  // The command, how it ended and its output: for assertion messages.
  std::string Describe() const;
};

// A command started in the background; Wait() collects it.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::string& command, const Env& extra_env = {});
  ~BackgroundCommand();  // kills the process group if still running
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  // Waits until the shell exits or `timeout` passes (then kills its process group with SIGKILL).
  CommandResult Wait(std::chrono::duration<double> timeout);
  // Sends `sig` to the command's process group.
  void Signal(int sig);

 private:
  std::string command_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::chrono::steady_clock::time_point start_;
};

// Runs `command` to completion or until `timeout`.
CommandResult RunCommand(const std::string& command, std::chrono::duration<double> timeout,
                         const Env& extra_env = {});

// `s` quoted for bash.
std::string ShellQuote(const std::string& s);

// The contents of a file, or "" when it cannot be read.
std::string ReadFileOr(const std::string& path, const std::string& fallback = "");

}  // namespace strun::testing

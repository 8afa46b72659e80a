// strun/launcher/output.h: a worker's stdout or stderr, relayed line by line.
//
// Every worker writes into a pipe that strun reads. Complete lines go to the console prefixed with
// the worker's tag (torchrun's tee format "[default0]:"; strun uses the *global* rank so that lines
// of different nodes can be told apart, and TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE with
// ${role_name},
// ${rank}, ${local_rank} overrides it as in torchrun), unprefixed to the log file when -r/-t ask
// for one, and into a ring of the last lines for the failure summary.
//   -r (redirect) for a stream: file only.   -t (tee): file and console.   neither: console only.
//   --local-ranks-filter: ranks not listed never reach the console (their files are unaffected).
#pragma once

#include <deque>
#include <string>
#include <vector>

namespace strun::launcher {

std::string LinePrefix(const std::string& tmpl, const std::string& role, int rank, int local_rank);

class OutputRelay {
 public:
  // console_fd: 1 or 2, or -1 for none; file_fd: -1 for none (owned: closed by Finish/destructor).
  OutputRelay(std::string prefix, int console_fd, int file_fd, size_t tail_lines = 20);
  ~OutputRelay();
  OutputRelay(const OutputRelay&) = delete;
  OutputRelay& operator=(const OutputRelay&) = delete;

  void Feed(const char* data, size_t n);
  // Flushes a last partial line and closes the file.
  void Finish();
  std::vector<std::string> Tail() const { return {tail_.begin(), tail_.end()}; }

 private:
  void EmitLines(size_t end);
  std::string prefix_;
  int console_fd_;
  int file_fd_;
  size_t tail_lines_;
  std::string partial_;
  std::deque<std::string> tail_;
};

}  // namespace strun::launcher

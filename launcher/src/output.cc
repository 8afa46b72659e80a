#include "strun/launcher/output.h"

#include <unistd.h>

#include <cerrno>

namespace strun::launcher {
namespace {

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = write(fd, s.data() + off, s.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // a closed console must not stop the job
    }
    off += size_t(w);
  }
}

// Long partial lines (progress bars without newlines) are flushed at this size.
constexpr size_t kMaxLine = 64 * 1024;

}  // namespace

std::string LinePrefix(const std::string& tmpl, const std::string& role, int rank, int local_rank) {
  if (tmpl.empty()) return "[" + role + std::to_string(rank) + "]:";
  // string.Template.safe_substitute: $name or ${name}; unknown names stay as they are.
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '$' || i + 1 >= tmpl.size()) {
      out.push_back(tmpl[i]);
      continue;
    }
    if (tmpl[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    bool braced = tmpl[i + 1] == '{';
    size_t start = i + (braced ? 2 : 1), end = start;
    while (end < tmpl.size() &&
           (std::isalnum(static_cast<unsigned char>(tmpl[end])) || tmpl[end] == '_'))
      ++end;
    std::string name = tmpl.substr(start, end - start);
    if (braced && (end >= tmpl.size() || tmpl[end] != '}')) {
      out.push_back('$');
      continue;
    }
    std::string value;
    if (name == "role_name")
      value = role;
    else if (name == "rank")
      value = std::to_string(rank);
    else if (name == "local_rank")
      value = std::to_string(local_rank);
    else {
      out.push_back('$');
      continue;
    }
    out += value;
    i = braced ? end : end - 1;
  }
  return out;
}

OutputRelay::OutputRelay(std::string prefix, int console_fd, int file_fd, size_t tail_lines)
    : prefix_(std::move(prefix)),
      console_fd_(console_fd),
      file_fd_(file_fd),
      tail_lines_(tail_lines) {}

OutputRelay::~OutputRelay() {
  if (file_fd_ >= 0) close(file_fd_);
}

void OutputRelay::Feed(const char* data, size_t n) {
  if (file_fd_ >= 0) WriteAll(file_fd_, std::string(data, n));
  partial_.append(data, n);
  size_t last_nl = partial_.rfind('\n');
  if (last_nl != std::string::npos) EmitLines(last_nl + 1);
  if (partial_.size() >= kMaxLine) {
    partial_.push_back('\n');
    EmitLines(partial_.size());
  }
}

void OutputRelay::EmitLines(size_t end) {
  std::string console;
  size_t pos = 0;
  while (pos < end) {
    size_t nl = partial_.find('\n', pos);
    if (nl == std::string::npos || nl >= end) nl = end - 1;
    std::string line = partial_.substr(pos, nl - pos);
    if (console_fd_ >= 0) {
      console += prefix_;
      console += line;
      console.push_back('\n');
    }
    if (tail_lines_ > 0) {
      tail_.push_back(line.size() > 400 ? line.substr(0, 400) + "..." : line);
      if (tail_.size() > tail_lines_) tail_.pop_front();
    }
    pos = nl + 1;
  }
  partial_.erase(0, end);
  if (!console.empty()) WriteAll(console_fd_, console);
}

void OutputRelay::Finish() {
  if (!partial_.empty()) {
    partial_.push_back('\n');
    EmitLines(partial_.size());
  }
  if (file_fd_ >= 0) {
    close(file_fd_);
    file_fd_ = -1;
  }
}

}  // namespace strun::launcher

#include "strun/launcher/failure.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "strun/launcher/process.h"

namespace strun::launcher {

nlohmann::json WorkerFailure::ToJson() const {
  return {{"rank", rank},
          {"local_rank", local_rank},
          {"node", node},
          {"pid", pid},
          {"exitcode", exitcode},
          {"timestamp", timestamp},
          {"error_file", error_file},
          {"error_data", error_data},
          {"message", message},
          {"tail", tail},
          {"kind", kind},
          {"evidence", evidence},
          {"step", step}};
}

WorkerFailure WorkerFailure::FromJson(const nlohmann::json& j) {
  WorkerFailure f;
  f.rank = j.value("rank", 0);
  f.local_rank = j.value("local_rank", 0);
  f.node = j.value("node", "");
  f.pid = j.value("pid", 0);
  f.exitcode = j.value("exitcode", 1);
  f.timestamp = j.value("timestamp", 0.0);
  f.error_file = j.value("error_file", "<N/A>");
  f.error_data = j.value("error_data", "");
  f.message = j.value("message", "");
  if (j.contains("tail") && j["tail"].is_array())
    for (const auto& l : j["tail"])
      if (l.is_string()) f.tail.push_back(l.get<std::string>());
  f.kind = j.value("kind", "");
  f.evidence = j.value("evidence", "");
  f.step = j.value("step", -1LL);
  return f;
}

void ReadErrorFile(const std::string& path, double seen_at, WorkerFailure& f) {
  f.error_file = "<N/A>";
  f.error_data.clear();
  f.message.clear();
  f.timestamp = seen_at;
  std::ifstream in(path);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object() && j.contains("message")) {
      f.error_file = path;
      f.error_data = text.size() <= (1u << 20) ? text : j.dump();
      const auto& m = j["message"];
      try {
        if (m.is_string()) {
          f.message = m.get<std::string>();
          if (j.contains("timestamp")) {
            const auto& t = j["timestamp"];
            f.timestamp = t.is_string() ? std::stod(t.get<std::string>()) : t.get<double>();
          }
        } else if (m.is_object()) {
          const auto& extra = m.value("extraInfo", nlohmann::json::object());
          if (extra.contains("py_callstack") && extra["py_callstack"].is_string())
            f.message = extra["py_callstack"].get<std::string>();
          else if (m.contains("message") && m["message"].is_string())
            f.message = m["message"].get<std::string>();
          else
            f.message = "<N/A>";
          if (extra.contains("timestamp")) {
            const auto& t = extra["timestamp"];
            f.timestamp = t.is_string() ? std::stod(t.get<std::string>()) : t.get<double>();
          }
        }
      } catch (const std::exception&) {
        f.timestamp = seen_at;  // a malformed timestamp: keep the observed time
      }
    }
  }
  if (f.message.empty()) {
    if (f.exitcode < 0)
      f.message = "Signal " + std::to_string(-f.exitcode) + " (" + SignalName(-f.exitcode) +
                  ") received by PID " + std::to_string(f.pid);
    else
      f.message = "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html";
  }
}

namespace {

bool Contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

// The first line of the worker's output tail or message that contains one of `needles`.
std::optional<std::string> FindLine(const WorkerFailure& f,
                                    std::initializer_list<std::string_view> needles) {
  auto match = [&](const std::string& line) {
    for (auto n : needles)
      if (Contains(line, n)) return true;
    return false;
  };
  for (const auto& l : f.tail)
    if (match(l)) return l.size() > 300 ? l.substr(0, 300) + "..." : l;
  std::istringstream in(f.message);
  for (std::string l; std::getline(in, l);)
    if (match(l)) return l.size() > 300 ? l.substr(0, 300) + "..." : l;
  return std::nullopt;
}

}  // namespace

void ClassifyFailure(WorkerFailure& f) {
  if (!f.kind.empty()) return;
  // PyTorch's ProcessGroupNCCL watchdog: it logs the timed-out collective, then aborts the process
  // (SIGABRT) when TORCH_NCCL_ASYNC_ERROR_HANDLING is on; older versions raise and exit instead.
  if (auto l =
          FindLine(f, {"Watchdog caught collective operation timeout", "watchdog thread terminated",
                       "Some NCCL operations have failed or timed out",
                       "ProcessGroupNCCL's watchdog", "NCCL watchdog"})) {
    f.kind = "nccl_watchdog";
    f.evidence =
        (f.exitcode < 0 ? SignalName(-f.exitcode) : "exit code " + std::to_string(f.exitcode)) +
        " after: " + *l;
    return;
  }
  if (auto l = FindLine(f, {"CUDA out of memory", "CUDA error: out of memory",
                            "torch.OutOfMemoryError", "cudaErrorMemoryAllocation"})) {
    f.kind = "cuda_oom";
    f.evidence = *l;
    return;
  }
  if (f.exitcode < 0) {
    f.kind = "signal";
    f.evidence = "killed by " + SignalName(-f.exitcode);
    return;
  }
  f.kind = "exit_code";
  f.evidence = "exit code " + std::to_string(f.exitcode);
  if (f.error_file != "<N/A>" && !f.error_file.empty()) {
    std::string first = f.message.substr(0, f.message.find('\n'));
    if (!first.empty()) f.evidence += "; error file: " + first.substr(0, 200);
  }
}

const WorkerFailure& RootCause(const std::vector<WorkerFailure>& failures) {
  const WorkerFailure* best = &failures.front();
  for (const auto& f : failures)
    if (f.timestamp < best->timestamp || (f.timestamp == best->timestamp && f.rank < best->rank))
      best = &f;
  return *best;
}

Status WriteParentErrorFile(const std::string& parent, const WorkerFailure& root) {
  if (root.error_data.empty()) return {};
  auto j = nlohmann::json::parse(root.error_data, nullptr, false);
  if (j.is_discarded()) return {};
  if (root.exitcode != 0 && j.contains("message") && j["message"].is_object())
    j["message"]["errorCode"] = root.exitcode;
  std::string text = j.dump();
  unlink(parent.c_str());
  int fd = open(parent.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return MakeError("strun: cannot write TORCHELASTIC_ERROR_FILE=" + parent + ": " +
                     std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t w = write(fd, text.data() + off, text.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return MakeError("strun: cannot write TORCHELASTIC_ERROR_FILE=" + parent + ": " +
                       std::strerror(e));
    }
    off += size_t(w);
  }
  close(fd);
  return {};
}

std::string DescribeFailure(const WorkerFailure& f) {
  std::string s = "rank " + std::to_string(f.rank) + " (local_rank " +
                  std::to_string(f.local_rank) + ") on " + f.node;
  if (f.kind == "hang") return s + " hung: " + f.evidence;
  if (f.exitcode < 0)
    return s + " was killed by " + SignalName(-f.exitcode) + " (exit code " +
           std::to_string(f.ShellExitCode()) + ")";
  return s + " exited with code " + std::to_string(f.exitcode);
}

namespace {
std::string IsoTime(double t) {
  time_t secs = time_t(t);
  struct tm tm;
  localtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d_%H:%M:%S", &tm);
  return buf;
}
std::string Indent(const std::string& text) {
  std::string out;
  for (char c : text) {
    out.push_back(c);
    if (c == '\n') out += "    ";
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  return out;
}
}  // namespace

std::string FormatFailureSummary(const std::string& title, const WorkerFailure& root,
                                 const std::vector<WorkerFailure>& others) {
  const std::string bar(60, '='), sep(60, '-');
  std::ostringstream o;
  o << bar << "\n" << title << "\n" << sep << "\nRoot Cause (first observed failure):\n";
  o << "  time      : " << IsoTime(root.timestamp) << "\n";
  o << "  host      : " << root.node << "\n";
  o << "  rank      : " << root.rank << " (local_rank: " << root.local_rank << ")\n";
  o << "  exitcode  : " << root.exitcode;
  if (root.exitcode < 0) o << " (" << SignalName(-root.exitcode) << ")";
  o << " (pid: " << root.pid << ")\n";
  o << "  error_file: " << root.error_file << "\n";
  if (!root.kind.empty()) o << "  failure   : " << root.kind << " (" << root.evidence << ")\n";
  o << "  traceback : " << Indent(root.message) << "\n";
  if (!root.tail.empty()) {
    o << "  last output lines of rank " << root.rank << ":\n";
    for (const auto& l : root.tail) o << "    " << l << "\n";
  }
  o << sep << "\nOther failures:\n";
  if (others.empty()) o << "  <NO_OTHER_FAILURES>\n";
  for (const auto& f : others) o << "  " << DescribeFailure(f) << "\n";
  o << bar << "\n";
  return o.str();
}

}  // namespace strun::launcher

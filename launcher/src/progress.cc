// The progress channel (progress.h): line format and the worker-side reporter.
#include "strun/launcher/progress.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace strun::launcher {

std::string_view ProgressPhaseName(ProgressPhase phase) {
  switch (phase) {
    case ProgressPhase::kStartup:
      return "startup";
    case ProgressPhase::kTraining:
      return "training";
    case ProgressPhase::kCheckpoint:
      return "checkpoint";
    case ProgressPhase::kPreempted:
      return "preempted";
  }
  return "startup";
}

std::optional<ProgressReport> ParseProgressLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty() || line.size() > 4096) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("phase") || !j["phase"].is_string()) return std::nullopt;
  const std::string phase = j["phase"];
  ProgressReport r;
  if (phase == "startup")
    r.phase = ProgressPhase::kStartup;
  else if (phase == "training")
    r.phase = ProgressPhase::kTraining;
  else if (phase == "checkpoint")
    r.phase = ProgressPhase::kCheckpoint;
  else if (phase == "preempted")
    r.phase = ProgressPhase::kPreempted;
  else
    return std::nullopt;
  if (j.contains("step")) {
    if (!j["step"].is_number_integer() || j["step"].get<long long>() < 0) return std::nullopt;
    r.step = j["step"].get<long long>();
  }
  if ((r.phase == ProgressPhase::kTraining || r.phase == ProgressPhase::kPreempted) && r.step < 0)
    return std::nullopt;
  return r;
}

std::string FormatProgressLine(const ProgressReport& report) {
  std::string s = "{\"phase\": \"" + std::string(ProgressPhaseName(report.phase)) + "\"";
  if (report.step >= 0) s += ", \"step\": " + std::to_string(report.step);
  return s + "}\n";
}

ProgressReporter::ProgressReporter() {
  const char* v = std::getenv("STRUN_PROGRESS_FD");
  if (!v || !*v) return;
  char* end = nullptr;
  errno = 0;
  long fd = std::strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || fd < 0 || fd > 1 << 20) return;
  int type = 0;
  socklen_t len = sizeof type;
  // Only a socket: a stale number must not make us write into some unrelated file.
  if (getsockopt(int(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0) return;
  fd_ = int(fd);
}

ProgressReporter::ProgressReporter(int fd) : fd_(fd) {}

void ProgressReporter::Report(ProgressPhase phase, long long step) {
  if (fd_ < 0) return;
  const std::string line = FormatProgressLine({phase, step});
  // MSG_NOSIGNAL: an agent that is gone must not kill us with SIGPIPE; MSG_DONTWAIT: never block.
  (void)send(fd_, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace strun::launcher

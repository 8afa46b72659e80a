// strund's JSON-lines event log (event_log.h).
#include "strun/daemon/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace strun::daemon {

Json MakeEventLine(const std::string& event, const Json& fields, const EventContext& context,
                   double now) {
  Json line = Json::object();
  line["time"] = now;
  line["event"] = event;
  line["job_id"] = context.job_id;
  line["restart_count"] = context.restart_count;
  line["launch"] = context.launch;
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (it.key() == "event" || it.key() == "job_id" || it.key() == "restart_count" ||
          it.key() == "launch") {
        // The service's own restart_count (in-place restarts) must not hide the job's.
        if (it.key() == "restart_count") line["group_restart_count"] = it.value();
        continue;
      }
      line[it.key()] = it.value();
    }
  return line;
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return MakeError("cannot open the event log " + path + ": " + std::strerror(errno) +
                     " (choose another file with --event-log PATH)");
  return std::unique_ptr<EventLog>(new EventLog(fd, path));
}

EventLog::~EventLog() {
  if (fd_ >= 0) close(fd_);
}

Status EventLog::Append(const Json& line, bool sync) {
  std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  size_t done = 0;
  // One write is one line for O_APPEND; a short write (a full disk) is finished rather than lost.
  while (done < text.size()) {
    ssize_t n = write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError("writing the event log " + path_ + ": " + std::strerror(errno));
    done += size_t(n);
  }
  if (sync) fsync(fd_);
  return {};
}

std::vector<Json> ReadEventLog(const std::string& path) {
  std::vector<Json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) lines.push_back(std::move(j));
  }
  return lines;
}

bool ProgressLogFilter::ShouldLog(double now) {
  if (last_ >= 0 && now - last_ < interval_s_) return false;
  last_ = now;
  return true;
}

}  // namespace strun::daemon

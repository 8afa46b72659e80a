#include "strun/tfevents/event_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "event.pb.h"
#include "strun/tfevents/record_writer.h"

namespace strun::tfevents {
namespace {

void AppendEvent(const Event& event, std::string* out) {
  AppendRecord(event.SerializeAsString(), out);
}

std::string HostName() {
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "localhost";
  return host;
}

}  // namespace

Result<std::unique_ptr<EventFile>> EventFile::Create(const std::string& dir,
                                                     const std::string& suffix, double now) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return MakeError("cannot create the TensorBoard folder " + dir + ": " + ec.message());
  // TensorBoard reads a run's files in name order: the time first, so that a resumed run's file
  // comes after the one it continues.
  const std::string path = dir + "/events.out.tfevents." +
                           std::to_string(static_cast<long long>(now)) + "." + HostName() + "." +
                           std::to_string(getpid()) + "." + suffix;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return MakeError("cannot create " + path + ": " + std::strerror(errno));
  std::unique_ptr<EventFile> file(new EventFile(fd, path));
  Event version;
  version.set_wall_time(now);
  version.set_file_version("brain.Event:2");
  AppendEvent(version, &file->pending_);
  if (auto s = file->Flush(); !s) return s.error();
  return file;
}

EventFile::~EventFile() { ::close(fd_); }

void EventFile::AddScalars(int64_t step, const std::vector<Scalar>& scalars, double wall_time) {
  Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  for (const Scalar& s : scalars) {
    Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(s.tag);
    v->set_simple_value(static_cast<float>(s.value));
  }
  AppendEvent(event, &pending_);
}

void EventFile::AddText(int64_t step, const std::string& tag, const std::string& markdown,
                        double wall_time) {
  Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  TensorProto* t = v->mutable_tensor();
  t->set_dtype(DT_STRING);
  t->mutable_tensor_shape();  // a scalar: a shape without dimensions
  t->add_string_val(markdown);
  AppendEvent(event, &pending_);
}

void EventFile::AddSessionStart(int64_t step, double wall_time) {
  Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  event.mutable_session_log()->set_status(SessionLog::START);
  AppendEvent(event, &pending_);
}

Status EventFile::Flush() {
  const char* p = pending_.data();
  std::size_t left = pending_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      pending_.clear();
      return MakeError("cannot write " + path_ + ": " + std::strerror(err));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  pending_.clear();
  return {};
}

std::string MarkdownCodeBlock(const std::string& text) {
  // Indented lines: a code block in every Markdown dialect (TensorBoard's, W&B's).
  std::string out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    out += "    " + text.substr(begin, end - begin) + "\n";
    begin = end + 1;
  }
  return out;
}

}  // namespace strun::tfevents

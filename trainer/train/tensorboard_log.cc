#include "train/tensorboard_log.h"

#include <chrono>
#include <cstdlib>

#ifdef STRUN_WITH_TENSORBOARD
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "strun/tfevents/event_file.h"
#endif

namespace strun::train {
namespace {

double WallTime() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string TensorBoardDirectory(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("STRUN_TENSORBOARD_DIR");
  return env ? env : "";
}

#ifdef STRUN_WITH_TENSORBOARD

// The writer thread and its queue: the training thread only builds a job and queues it.
struct TensorBoardLog::Impl {
  using Job = std::function<void(tfevents::EventFile&)>;

  Impl(std::unique_ptr<tfevents::EventFile> f, int64_t resumed, Warn w)
      : file(std::move(f)), resumed_step(resumed), warn(std::move(w)) {
    thread = std::thread([this] { Run(); });
  }
  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      closing = true;
    }
    cv.notify_one();
    thread.join();
  }

  void Enqueue(Job job) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (disabled) return;
      if (queue.size() >= kMaxBacklog) {
        disabled = true;
        queue.clear();
        warn("TensorBoard output to " + file->path() + " is " + std::to_string(kMaxBacklog) +
             " steps behind (is its disk hanging?): it stops here; training goes on");
        return;
      }
      queue.push_back(std::move(job));
    }
    cv.notify_one();
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return closing || !queue.empty(); });
      if (queue.empty()) return;  // closing, and everything written
      Job job = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      job(*file);
      Status written = file->Flush();
      lock.lock();
      if (!written && !disabled) {
        disabled = true;
        queue.clear();
        warn(written.error().message +
             "; TensorBoard output stops here (training goes on); free space or fix the folder "
             "and resume to continue it");
      }
    }
  }

  std::unique_ptr<tfevents::EventFile> file;
  const int64_t resumed_step;
  Warn warn;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue;
  bool closing = false;
  bool disabled = false;
  std::thread thread;
};

std::unique_ptr<TensorBoardLog> TensorBoardLog::Open(const std::string& dir, const std::string& run,
                                                     int64_t resumed_step, Warn warn) {
  const std::string folder = dir + "/" + run;
  auto file = tfevents::EventFile::Create(folder, "strun-train", WallTime());
  if (!file) {
    warn("--tensorboard-dir / STRUN_TENSORBOARD_DIR: " + file.error().message +
         "; training goes on without TensorBoard output");
    return nullptr;
  }
  if (resumed_step >= 0) (*file)->AddSessionStart(resumed_step + 1, WallTime());
  return std::unique_ptr<TensorBoardLog>(
      new TensorBoardLog(std::make_unique<Impl>(std::move(*file), resumed_step, std::move(warn))));
}

void TensorBoardLog::Config(const std::string& yaml) {
  const int64_t step = impl_->resumed_step < 0 ? 0 : impl_->resumed_step + 1;
  const double now = WallTime();
  impl_->Enqueue([step, now, text = tfevents::MarkdownCodeBlock(yaml)](tfevents::EventFile& f) {
    f.AddText(step, "config", text, now);
  });
}

void TensorBoardLog::Step(int64_t step, const std::vector<LogItem>& items) {
  if (step <= impl_->resumed_step) return;  // the run this one resumed logged it
  std::vector<tfevents::Scalar> scalars;
  scalars.reserve(items.size());
  for (const LogItem& item : items) scalars.push_back({item.tag, item.value});
  const double now = WallTime();
  impl_->Enqueue([step, now, scalars = std::move(scalars)](tfevents::EventFile& f) {
    f.AddScalars(step, scalars, now);
  });
}

#else  // built without protobuf: no event files

struct TensorBoardLog::Impl {};

std::unique_ptr<TensorBoardLog> TensorBoardLog::Open(const std::string& dir, const std::string&,
                                                     int64_t, Warn warn) {
  warn("--tensorboard-dir / STRUN_TENSORBOARD_DIR is " + dir +
       ", but this strun-train was built without protobuf, so it writes no TensorBoard files; "
       "rebuild with libprotobuf-dev and protobuf-compiler installed");
  return nullptr;
}

void TensorBoardLog::Config(const std::string&) {}
void TensorBoardLog::Step(int64_t, const std::vector<LogItem>&) {}

#endif

TensorBoardLog::TensorBoardLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorBoardLog::~TensorBoardLog() = default;

}  // namespace strun::train

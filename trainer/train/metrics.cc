#include "train/metrics.h"

#include <fmt/format.h>
#include <sys/statvfs.h>

#include <chrono>
#include <ctime>

namespace strun::train {
namespace {

struct DiskBytes {
  double total = 0, used = 0, free = 0;
};

// The root file system, as nanotron's psutil.disk_usage("/").
DiskBytes RootDisk() {
  struct statvfs s {};
  if (::statvfs("/", &s) != 0) return {};
  DiskBytes d;
  d.total = static_cast<double>(s.f_blocks) * s.f_frsize;
  d.free = static_cast<double>(s.f_bavail) * s.f_frsize;
  d.used = static_cast<double>(s.f_blocks - s.f_bfree) * s.f_frsize;
  return d;
}

}  // namespace

Throughput ThroughputOf(const StepMetrics& m) {
  Throughput t;
  t.tokens_per_sec =
      double(m.global_batch_size) * double(m.sequence_length) / (m.elapsed_ms / 1000.0);
  t.model_tflops_per_gpu = m.step_flops / ((m.elapsed_ms / 1000.0) * m.world_size * 1e12);
  return t;
}

std::vector<LogItem> IterationItems(const StepMetrics& m, const Throughput& t) {
  std::vector<LogItem> items = {
      {"consumed_tokens", double(m.consumed_train_samples) * double(m.sequence_length)},
      {"elapsed_time_per_iteration_ms", m.elapsed_ms},
      {"tokens_per_sec", t.tokens_per_sec},
      {"tokens_per_sec_per_gpu", t.tokens_per_sec / m.world_size},
      {"global_batch_size", double(m.global_batch_size)},
      {"lm_loss", m.lm_loss},
      {"lr", m.lr},
      {"model_tflops_per_gpu", t.model_tflops_per_gpu},
      {"hardware_tflops_per_gpu", t.model_tflops_per_gpu}};
  if (m.grad_norm) items.push_back({"grad_norm", *m.grad_norm});
  if (m.resources) {
    if (m.device_memory) {
      items.push_back({"cuda_memory_allocated", m.device_memory->allocated});
      items.push_back({"cuda_max_memory_reserved", m.device_memory->max_reserved});
    }
    // Read one after another, as nanotron does (each a statvfs of its own).
    items.push_back({"hd_total_memory_tb", RootDisk().total});
    items.push_back({"hd_used_memory_tb", RootDisk().used});
    items.push_back({"hd_free_memory_tb", RootDisk().free});
  }
  return items;
}

std::string DebugStepLine(int64_t step, double lm_loss, double grad_norm, double lr) {
  return fmt::format("step {} lm_loss {:.9e} grad_norm {:.9e} lr {:.9e}", step, lm_loss, grad_norm,
                     lr);
}

std::string StartTrainingLine(int64_t mbs, int64_t grad_accum, int64_t gbs, int64_t seq,
                              int64_t train_steps, int64_t start_step,
                              int64_t consumed_train_samples) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  return fmt::format(
      "[Start training] datetime: {}.{:06d} | mbs: {} | grad_accum: {} | global_batch_size: {} | "
      "sequence_length: {} | train_steps: {} | start_iteration_step: {} | "
      "consumed_train_samples: {}",
      buf, us, mbs, grad_accum, gbs, seq, train_steps, start_step, consumed_train_samples);
}

std::string ParameterCountLine(const char* what, int64_t nparams, int64_t element_size) {
  return fmt::format("{} number of parameters: {} ({:.2f}MiB)", what, HumanFormat(double(nparams)),
                     double(nparams) * double(element_size) / (1024.0 * 1024.0));
}

}  // namespace strun::train

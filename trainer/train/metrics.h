// train/metrics.h: what the loop logs, in nanotron's words (iteration_log.h formats the lines).
// No torch: the loop passes plain numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/device.h"
#include "train/iteration_log.h"

namespace strun::train {

// One logged step, as the iteration line and TensorBoard show it.
struct StepMetrics {
  int64_t consumed_train_samples = 0;  // after the step
  int64_t sequence_length = 0;
  int64_t global_batch_size = 0;
  int world_size = 1;
  double elapsed_ms = 0;  // the step's wall time
  double step_flops = 0;  // LlamaTrainingFlops of one step
  double lm_loss = 0;
  double lr = 0;
  std::optional<double> grad_norm;            // with optimizer.clip_grad
  bool resources = false;                     // add memory and disk (first steps, checkpoints)
  std::optional<DeviceMemory> device_memory;  // on CUDA
};

// Throughput of a step, kept for the benchmark CSV.
struct Throughput {
  double tokens_per_sec = 0;
  double model_tflops_per_gpu = 0;
};
Throughput ThroughputOf(const StepMetrics& m);

// The iteration line's items in nanotron's order.
std::vector<LogItem> IterationItems(const StepMetrics& m, const Throughput& t);

// The debug line with full precision, for comparing runs (the iteration line has 3 digits).
std::string DebugStepLine(int64_t step, double lm_loss, double grad_norm, double lr);

// nanotron's "[Start training]" line (datetime now, local time).
std::string StartTrainingLine(int64_t mbs, int64_t grad_accum, int64_t gbs, int64_t seq,
                              int64_t train_steps, int64_t start_step,
                              int64_t consumed_train_samples);

// "Total number of parameters: 1.63M (6.21MiB)" for `what` = "Total" or "Local".
std::string ParameterCountLine(const char* what, int64_t nparams, int64_t element_size);

}  // namespace strun::train

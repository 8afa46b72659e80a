// train/iteration_log.h: nanotron's log output, byte for byte where users grep it.
//
// Lines look like nanotron's:
//   11/24/2026 06:30:00 [INFO|DP=0|PP=0|TP=0|node]: iteration: 3 / 100 | consumed_tokens: 12.3K |
//   ...
// with values in nanotron's human_format, the model FLOPs of nanotron's get_flops for Llama, and
// the benchmark CSV of nanotron's log_throughput.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::train {

// nanotron.logging.human_format: 3 significant digits, K/M/G/T/P/E suffixes.
std::string HumanFormat(double num);

enum class LogLevel { kDebug = 10, kInfo = 20, kWarning = 30, kError = 40, kCritical = 50 };

// nanotron's log_level names (debug, info, warning, error, critical, fatal); passive/None -> info.
Result<LogLevel> ParseLogLevel(const std::string& name);

// Writes "<date> [LEVEL|DP=d|PP=p|TP=t(|SLURMD_NODENAME)]: message" lines to stdout, one per line
// of `message`, when `level` >= the logger's level (the rank's grid coordinates, as nanotron).
class TrainLogger {
 public:
  TrainLogger(LogLevel level, int dp_rank, int pp_rank = 0, int tp_rank = 0);
  void Log(LogLevel level, const std::string& message) const;
  void Info(const std::string& message) const { Log(LogLevel::kInfo, message); }
  void Warning(const std::string& message) const { Log(LogLevel::kWarning, message); }
  bool Enabled(LogLevel level) const { return level >= level_; }

 private:
  LogLevel level_;
  std::string tag_suffix_;
};

// The shape numbers nanotron's get_flops needs (vocab_size: the padded vocabulary).
struct FlopsShape {
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t vocab_size = 0;
  int64_t ffn_hidden_size = 0;
};

// nanotron.models.llama.get_flops: model FLOPs of one training step (fwd + bwd) for
// `batch_size` sequences of `seq_len`. Hardware FLOPs equal model FLOPs there.
double LlamaTrainingFlops(const FlopsShape& shape, int64_t seq_len, int64_t batch_size);

// One named value of the iteration line.
struct LogItem {
  std::string tag;
  double value = 0;
};

// "iteration: N / T | tag: human_format(value) | ..."
std::string FormatIterationLine(int64_t step, int64_t train_steps,
                                const std::vector<LogItem>& items);

// nanotron's write_to_csv: header row when the file is new, then one row per call.
struct BenchmarkRow {
  std::string job_id, name;
  int64_t nodes = 1, seq_len = 0, mbs = 0, batch_accum = 0, gbs = 0;
  double model_tflops = 0, hardware_tflops = 0, tokens_per_sec_per_gpu = 0, bandwidth = 0;
  double mem_alloc_gb = 0, mem_res_gb = 0;
};
Status AppendBenchmarkCsv(const std::string& path, const BenchmarkRow& row);

}  // namespace strun::train

#include "train/iteration_log.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace strun::train {

std::string HumanFormat(double num) {
  char buf[64];
  if (std::fabs(num) < 1) {
    std::snprintf(buf, sizeof buf, "%.3g", num);
    return buf;
  }
  static const char* kSizes[] = {"", "K", "M", "G", "T", "P", "E"};
  std::snprintf(buf, sizeof buf, "%.3g", num);
  num = std::strtod(buf, nullptr);
  int magnitude = 0;
  while (std::fabs(num) >= 1000 && magnitude < 6) {
    ++magnitude;
    num /= 1000.0;
  }
  std::snprintf(buf, sizeof buf, "%f", num);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s + kSizes[magnitude];
}

Result<LogLevel> ParseLogLevel(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info" || name == "passive" || name.empty()) return LogLevel::kInfo;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  if (name == "critical" || name == "fatal") return LogLevel::kCritical;
  return MakeError("logging.log_level: unknown level '" + name +
                   "'; use one of debug, info, warning, error, critical");
}

namespace {
const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kCritical:
      return "CRITICAL";
  }
  return "INFO";
}
}  // namespace

TrainLogger::TrainLogger(LogLevel level, int dp_rank, int pp_rank, int tp_rank) : level_(level) {
  tag_suffix_ = fmt::format("|DP={}|PP={}|TP={}", dp_rank, pp_rank, tp_rank);
  if (const char* node = std::getenv("SLURMD_NODENAME"); node && *node) {
    tag_suffix_ += std::string("|") + node;
  }
}

void TrainLogger::Log(LogLevel level, const std::string& message) const {
  if (level < level_) return;
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%m/%d/%Y %H:%M:%S", &tm);
  std::string out;
  std::istringstream lines(message);
  std::string line;
  bool any = false;
  while (std::getline(lines, line)) {
    out += fmt::format("{} [{}{}]: {}\n", date, LevelName(level), tag_suffix_, line);
    any = true;
  }
  if (!any) out = fmt::format("{} [{}{}]: \n", date, LevelName(level), tag_suffix_);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

double LlamaTrainingFlops(const FlopsShape& s, int64_t seq_len, int64_t batch_size) {
  const double L = static_cast<double>(s.num_layers), h = static_cast<double>(s.hidden_size),
               nh = static_cast<double>(s.num_heads),
               nkv =
                   static_cast<double>(s.num_key_value_heads ? s.num_key_value_heads : s.num_heads),
               V = static_cast<double>(s.vocab_size), F = static_cast<double>(s.ffn_hidden_size),
               T = static_cast<double>(seq_len), B = static_cast<double>(batch_size);
  const double d = static_cast<double>(s.hidden_size / s.num_heads);  // integer division as there
  double qkv = 2 * L * B * T * h * nh * d + 2 * L * B * T * h * 2 * nkv * d;
  double qk = 2 * L * B * nh * T * d * T;
  double v = 2 * L * B * nh * T * T * d;
  double out = 2 * L * B * nh * T * d * h;
  double ffn1 = 4 * L * B * T * h * F;
  double ffn2 = 2 * L * B * T * F * h;
  double lm_head = 2 * B * T * h * V;
  return 3 * (qkv + qk + v + out + ffn1 + ffn2 + lm_head);
}

std::string FormatIterationLine(int64_t step, int64_t train_steps,
                                const std::vector<LogItem>& items) {
  std::string s = fmt::format("iteration: {} / {}", step, train_steps);
  for (const auto& item : items) s += fmt::format(" | {}: {}", item.tag, HumanFormat(item.value));
  return s;
}

namespace {
// Python's csv.writer quoting (QUOTE_MINIMAL) for one field.
std::string CsvField(const std::string& f) {
  if (f.find_first_of(",\"\r\n") == std::string::npos) return f;
  std::string q = "\"";
  for (char c : f) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}
}  // namespace

Status AppendBenchmarkCsv(const std::string& path, const BenchmarkRow& r) {
  namespace fs = std::filesystem;
  bool exists = fs::exists(path);
  std::error_code ec;
  if (!exists && fs::path(path).has_parent_path())
    fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::app);
  if (!out) return MakeError("general.benchmark_csv_path: cannot write " + path);
  if (!exists) {
    out << "job_id,name,nodes,seq_len,mbs,batch_accum,gbs,mTFLOPs,hTFLOPs,tok/s/gpu,"
           "Bandwidth (GB/s),Mem Alloc (GB),Mem Res (GB)\r\n";
  }
  out << CsvField(r.job_id) << ',' << CsvField(r.name) << ','
      << fmt::format("{},{},{},{},{},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f}\r\n", r.nodes,
                     r.seq_len, r.mbs, r.batch_accum, r.gbs, r.model_tflops, r.hardware_tflops,
                     r.tokens_per_sec_per_gpu, r.bandwidth, r.mem_alloc_gb, r.mem_res_gb);
  if (!out) return MakeError("general.benchmark_csv_path: cannot write " + path);
  return {};
}

}  // namespace strun::train

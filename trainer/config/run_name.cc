// %date and %jobid in general.run. nanotron 5f8a52b0 computes these replacements and discards the
// result (str.replace returns a new string), so its runs keep the literal text; strun applies them,
// as nanotron intended.
#include <cstdlib>
#include <ctime>

#include "config/config.h"

namespace strun::train {
namespace {

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t pos = s->find(from); pos != std::string::npos; pos = s->find(from, pos + to.size())) {
    s->replace(pos, from.size(), to);
  }
}

}  // namespace

std::string ExpandRunName(const std::string& run, const LoadOptions& options) {
  std::string out = run;
  if (out.find("%date") != std::string::npos) {
    // Local time, as Python's datetime.now().strftime("%Y%m%d_%H%M%S").
    std::time_t t = std::chrono::system_clock::to_time_t(
        options.now.value_or(std::chrono::system_clock::now()));
    std::tm local{};
    localtime_r(&t, &local);
    char date[32];
    std::strftime(date, sizeof(date), "%Y%m%d_%H%M%S", &local);
    ReplaceAll(&out, "%date", date);
  }
  if (out.find("%jobid") != std::string::npos) {
    std::string job_id;
    if (options.job_id) {
      job_id = *options.job_id;
    } else {
      const char* env = std::getenv("SLURM_JOB_ID");
      job_id = env ? env : "local";
    }
    ReplaceAll(&out, "%jobid", job_id);
  }
  return out;
}

}  // namespace strun::train

#include "data/dataset_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace strun::data {
namespace fs = std::filesystem;

namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}
bool HasSplit(const fs::path& base) {
  std::error_code ec;
  return fs::is_regular_file(base.string() + ".idx", ec) &&
         fs::is_regular_file(base.string() + ".bin", ec);
}
}  // namespace

std::string DataHome() {
  if (std::string v = Env("STRUN_DATA_HOME"); !v.empty()) return v;
  if (std::string v = Env("XDG_CACHE_HOME"); !v.empty()) return v + "/strun/datasets";
  std::string home = Env("HOME");
  return (home.empty() ? std::string("/root") : home) + "/.cache/strun/datasets";
}

bool IsPathLike(const std::string& output) {
  return output.starts_with("/") || output.starts_with("./") || output.starts_with("../") ||
         output == "." || output == "..";
}

std::string StoreDirectory(const std::string& name, const std::optional<std::string>& config) {
  return (fs::path(DataHome()) / name / config.value_or("default")).string();
}

Result<std::string> ResolvePreparedDataset(const std::string& name,
                                           const std::optional<std::string>& config,
                                           const std::vector<std::string>& splits) {
  if (name.empty())
    return MakeError(
        "data_stages[].data.dataset.hf_dataset_or_datasets is empty: name a prepared dataset or a "
        "local directory");
  const std::string split = "train";
  if (std::find(splits.begin(), splits.end(), split) == splits.end()) {
    std::string listed;
    for (const auto& s : splits) listed += (listed.empty() ? "" : ", ") + s;
    return MakeError(
        fmt::format("hf_dataset_splits is [{}], but training reads the 'train' split (as nanotron "
                    "does); add 'train'",
                    listed));
  }
  std::vector<fs::path> tried;
  std::error_code ec;
  if (fs::is_directory(name, ec)) {
    if (config) tried.push_back(fs::path(name) / *config / split);
    tried.push_back(fs::path(name) / split);
  }
  tried.push_back(fs::path(StoreDirectory(name, config)) / split);
  for (const fs::path& base : tried) {
    if (HasSplit(base)) return base.string();
  }
  std::string looked;
  for (const fs::path& base : tried) looked += "\n  " + base.string() + ".idx";
  const std::string config_flag = config ? " --config " + *config : "";
  return MakeError(fmt::format(
      "dataset '{}'{} has no prepared '{}' split; looked for:{}\n"
      "strun-train does not download datasets. Prepare it once from local text or JSON-lines "
      "files:\n"
      "  strun-train prepare --input FILE... --output {}{} --split {} --tokenizer TOKENIZER\n"
      "(set $STRUN_DATA_HOME to keep prepared datasets elsewhere than {})",
      name, config ? " (config " + *config + ")" : "", split, looked, name, config_flag, split,
      DataHome()));
}

}  // namespace strun::data

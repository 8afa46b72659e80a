#include "tokenizer/tokenizer_resolve.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace strun::tokenizer {
namespace fs = std::filesystem;

namespace {

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::move(fallback);
}

std::string HubCache() {
  if (const char* v = std::getenv("HF_HUB_CACHE"); v != nullptr && *v != '\0') return v;
  if (const char* v = std::getenv("HF_HOME"); v != nullptr && *v != '\0')
    return std::string(v) + "/hub";
  return EnvOr("HOME", "/root") + "/.cache/huggingface/hub";
}

bool HasTokenizerFiles(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "tokenizer.json", ec) ||
         (fs::is_regular_file(dir / "encoder.json", ec) &&
          fs::is_regular_file(dir / "vocab.bpe", ec)) ||
         (fs::is_regular_file(dir / "vocab.json", ec) &&
          fs::is_regular_file(dir / "merges.txt", ec));
}

}  // namespace

std::vector<std::string> TokenizerSearchPath(std::string_view name) {
  std::vector<std::string> dirs;
  std::string path_env = EnvOr("STRUN_TOKENIZER_PATH", "");
  for (size_t start = 0; start <= path_env.size() && !path_env.empty();) {
    size_t end = path_env.find(':', start);
    if (end == std::string::npos) end = path_env.size();
    if (end > start)
      dirs.push_back((fs::path(path_env.substr(start, end - start)) / name).string());
    start = end + 1;
  }
  dirs.push_back((fs::path(STRUN_SOURCE_DATA_DIR) / "tokenizers" / name).string());
  dirs.push_back((fs::path(STRUN_INSTALLED_DATA_DIR) / "tokenizers" / name).string());
  std::string repo(name);
  for (size_t p = repo.find('/'); p != std::string::npos; p = repo.find('/', p + 2))
    repo.replace(p, 1, "--");
  dirs.push_back((fs::path(HubCache()) / ("models--" + repo) / "snapshots" / "*").string());
  return dirs;
}

Result<Tokenizer> LoadTokenizerFrom(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  Result<Tokenizer> result = MakeError("");
  if (fs::is_regular_file(p, ec)) {
    result = Tokenizer::FromHfTokenizerJson(path);
  } else if (fs::is_regular_file(p / "tokenizer.json", ec)) {
    result = Tokenizer::FromHfTokenizerJson((p / "tokenizer.json").string());
  } else if (fs::is_regular_file(p / "encoder.json", ec) &&
             fs::is_regular_file(p / "vocab.bpe", ec)) {
    result = Tokenizer::FromGpt2Files((p / "encoder.json").string(), (p / "vocab.bpe").string());
  } else if (fs::is_regular_file(p / "vocab.json", ec) &&
             fs::is_regular_file(p / "merges.txt", ec)) {
    result = Tokenizer::FromGpt2Files((p / "vocab.json").string(), (p / "merges.txt").string());
  } else {
    return MakeError(
        fmt::format("'{}' holds no tokenizer: expected tokenizer.json, encoder.json + vocab.bpe, "
                    "or vocab.json + merges.txt",
                    path));
  }
  if (result) result->set_name(path);
  return result;
}

Result<Tokenizer> LoadTokenizer(std::string_view name_or_path) {
  if (name_or_path.empty())
    return MakeError(
        "tokenizer.tokenizer_name_or_path is empty: set it to 'gpt2' or to a tokenizer directory");
  std::error_code ec;
  if (fs::exists(fs::path(name_or_path), ec)) return LoadTokenizerFrom(std::string(name_or_path));
  const std::vector<std::string> dirs = TokenizerSearchPath(name_or_path);
  for (const std::string& dir : dirs) {
    std::vector<fs::path> candidates;
    if (dir.ends_with("/*")) {
      const fs::path snapshots = fs::path(dir).parent_path();
      for (const auto& entry : fs::directory_iterator(snapshots, ec))
        candidates.push_back(entry.path());
      std::sort(candidates.begin(), candidates.end());
    } else {
      candidates.push_back(dir);
    }
    for (const fs::path& c : candidates) {
      if (!HasTokenizerFiles(c)) continue;
      Result<Tokenizer> t = LoadTokenizerFrom(c.string());
      if (t) t->set_name(std::string(name_or_path));
      return t;
    }
  }
  std::string searched;
  for (const std::string& d : dirs) searched += "\n  " + d;
  return MakeError(
      fmt::format("tokenizer '{}' not found; searched:{}\nFor GPT-2 run "
                  "etc/setup/fetch-tokenizer.sh (it places encoder.json and "
                  "vocab.bpe in etc/data/tokenizers/gpt2/), or point $STRUN_TOKENIZER_PATH at a "
                  "directory holding <name>/, or set "
                  "tokenizer_name_or_path to a tokenizer directory",
                  name_or_path, searched));
}

}  // namespace strun::tokenizer

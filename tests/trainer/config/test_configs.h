// Config texts shared by the config tests.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace strun::train::testing {

// The tutorial's config, as shipped in etc/examples (unchanged from the tutorial).
inline std::string TutorialPath() {
  return std::string(STRUN_SOURCE_DIR) + "/etc/examples/config_tiny_llama_wikitext.yaml";
}

inline std::string TutorialText() {
  std::ifstream in(TutorialPath());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The smallest file nanotron accepts: the four required sections with their required keys.
inline const char* kMinimalConfig = R"(general:
  project: p
parallelism:
  dp: 1
  pp: 1
  tp: 1
model:
  model_config: {}
  init_method:
    std: 0.02
tokenizer: {}
)";

// `text` with the first occurrence of `from` replaced by `to` (the test fails if absent).
inline std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t pos = text.find(from);
  if (pos == std::string::npos) return "<<" + from + " not found>>";
  return text.replace(pos, from.size(), to);
}

// 1-based line of the first occurrence of `needle` in `text`.
inline int LineOf(const std::string& text, const std::string& needle) {
  size_t pos = text.find(needle);
  if (pos == std::string::npos) return -1;
  int line = 1;
  for (size_t i = 0; i < pos; ++i) line += text[i] == '\n';
  return line;
}

}  // namespace strun::train::testing

// Helpers for the data tests: a scratch directory and a tiny byte-level tokenizer whose ids are
// the bytes themselves (id b is byte b, 256 is <|endoftext|>), so expected tokens are obvious.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../scoped_env.h"
#include "tokenizer/byte_level.h"

namespace strun::data::testing {
namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("strun-data-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  fs::path path_;
};

inline void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else {
    out->push_back(char(0xC0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  }
}

// Writes encoder.json + vocab.bpe (no merges) for the byte tokenizer into dir; returns dir.
inline std::string WriteByteTokenizer(const fs::path& dir) {
  fs::create_directories(dir);
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    std::string spelled;
    AppendUtf8(tokenizer::ByteToChar(static_cast<unsigned char>(b)), &spelled);
    vocab[spelled] = b;
  }
  vocab["<|endoftext|>"] = 256;
  std::ofstream(dir / "encoder.json") << vocab.dump();
  std::ofstream(dir / "vocab.bpe") << "#version: 0.2\n";
  return dir.string();
}

inline std::vector<int32_t> Bytes(const std::string& s) {
  std::vector<int32_t> v;
  for (unsigned char c : s) v.push_back(c);
  return v;
}

using ::strun::test::ScopedEnv;

}  // namespace strun::data::testing

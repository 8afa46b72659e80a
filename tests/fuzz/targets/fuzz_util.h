// Helpers shared by the fuzz targets: invariant checks that abort (so libFuzzer records the input),
// splitting an input into parts, and a private temporary directory.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

// An input that breaks a documented property is a finding like a crash: print why and abort.
#define FUZZ_CHECK(cond, why)                                                                 \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz: %s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   why);                                                                      \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace strun::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits `text` at every occurrence of `separator` (a line of its own in the seed files).
inline std::vector<std::string_view> Split(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t at = text.find(separator, start);
    if (at == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, at - start));
    start = at + separator.size();
  }
}

// A directory under $TMPDIR (or /tmp) made once per process and removed at exit, so that parsers
// that take paths read only what the fuzzer wrote.
class ScratchDir {
 public:
  static const std::string& Path() {
    static ScratchDir dir;
    return dir.path_;
  }
  // Writes `contents` to `name` inside the directory and returns the file's path.
  static std::string Write(const std::string& name, std::string_view contents) {
    std::string path = Path() + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    return path;
  }

 private:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/strun-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("fuzz: mkdtemp");
      std::abort();
    }
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path_;
};

}  // namespace strun::fuzz

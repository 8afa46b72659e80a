#include "data/token_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strun::data {
namespace {

constexpr size_t kBufferBytes = 1 << 22;

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
    }
    data += n;
    size -= size_t(n);
  }
  return {};
}

std::string HeaderJson(const TokenFileHeader& h) {
  nlohmann::json j;
  j["format"] = "strun-tokens";
  j["version"] = 1;
  j["tokenizer"] = h.tokenizer;
  j["vocab_size"] = h.vocab_size;
  j["dtype"] = h.token_bytes == 2 ? "uint16" : "uint32";
  j["num_tokens"] = h.num_tokens;
  j["num_documents"] = h.num_documents;
  j["eos_token_id"] = h.eos_token_id ? nlohmann::json(*h.eos_token_id) : nlohmann::json(nullptr);
  j["eos_appended"] = h.eos_appended;
  j["sources"] = h.sources;
  return j.dump();
}

}  // namespace

int TokenBytesFor(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

Result<TokenFileWriter> TokenFileWriter::Create(const std::string& base, TokenFileHeader header) {
  TokenFileWriter w;
  w.base_ = base;
  header.token_bytes = TokenBytesFor(header.vocab_size);
  header.num_tokens = 0;
  header.num_documents = 0;
  w.header_ = std::move(header);
  const std::string tmp = base + ".bin.tmp";
  w.fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd_ < 0) return MakeError(fmt::format("cannot create '{}': {}", tmp, std::strerror(errno)));
  w.buffer_.reserve(kBufferBytes);
  return w;
}

TokenFileWriter::TokenFileWriter(TokenFileWriter&& o) noexcept { *this = std::move(o); }
TokenFileWriter& TokenFileWriter::operator=(TokenFileWriter&& o) noexcept {
  std::swap(base_, o.base_);
  std::swap(header_, o.header_);
  std::swap(fd_, o.fd_);
  std::swap(offsets_, o.offsets_);
  std::swap(buffer_, o.buffer_);
  return *this;
}
TokenFileWriter::~TokenFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    std::remove((base_ + ".bin.tmp").c_str());  // never finished: leave nothing behind
  }
}

Status TokenFileWriter::Flush() {
  Status s = WriteAll(fd_, buffer_.data(), buffer_.size(), base_ + ".bin.tmp");
  buffer_.clear();
  return s;
}

Status TokenFileWriter::AppendDocument(std::span<const int32_t> tokens) {
  for (int32_t t : tokens) {
    if (t < 0 || t >= header_.vocab_size)
      return MakeError(
          fmt::format("token id {} is outside the vocabulary of {} ids", t, header_.vocab_size));
    if (header_.token_bytes == 2) {
      const uint16_t v = uint16_t(t);
      buffer_.push_back(char(v & 0xFF));
      buffer_.push_back(char(v >> 8));
    } else {
      const uint32_t v = uint32_t(t);
      for (int b = 0; b < 4; ++b) buffer_.push_back(char((v >> (8 * b)) & 0xFF));
    }
    if (buffer_.size() >= kBufferBytes) {
      if (Status s = Flush(); !s) return s;
    }
  }
  header_.num_tokens += int64_t(tokens.size());
  header_.num_documents += 1;
  offsets_.push_back(uint64_t(header_.num_tokens));
  return {};
}

Status TokenFileWriter::Finish() {
  if (Status s = Flush(); !s) return s;
  if (::fsync(fd_) != 0)
    return MakeError(fmt::format("cannot sync '{}.bin.tmp': {}", base_, std::strerror(errno)));
  ::close(fd_);
  fd_ = -1;
  const std::string idx_tmp = base_ + ".idx.tmp";
  {
    std::ofstream out(idx_tmp, std::ios::binary | std::ios::trunc);
    out << HeaderJson(header_) << '\n';
    for (uint64_t off : offsets_) {
      char b[8];
      for (int i = 0; i < 8; ++i) b[i] = char((off >> (8 * i)) & 0xFF);
      out.write(b, 8);
    }
    out.flush();
    if (!out) return MakeError(fmt::format("cannot write '{}'", idx_tmp));
  }
  // The .bin goes first: a reader opens through the .idx, which names the token count it needs.
  if (std::rename((base_ + ".bin.tmp").c_str(), (base_ + ".bin").c_str()) != 0 ||
      std::rename(idx_tmp.c_str(), (base_ + ".idx").c_str()) != 0) {
    return MakeError(
        fmt::format("cannot move '{}.bin/.idx' into place: {}", base_, std::strerror(errno)));
  }
  return {};
}

Result<TokenFile> TokenFile::Open(const std::string& base) {
  TokenFile f;
  f.base_ = base;
  const std::string idx = base + ".idx", bin = base + ".bin";
  std::ifstream in(idx, std::ios::binary);
  if (!in)
    return MakeError(
        fmt::format("cannot read '{}': the prepared dataset is missing; run `strun-train prepare` "
                    "(see data/prepare_command.h)",
                    idx));
  std::string line;
  std::getline(in, line);
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || j.value("format", "") != "strun-tokens")
    return MakeError(fmt::format(
        "'{}' is not a strun token index (bad header line); prepare the dataset again", idx));
  if (j.value("version", 0) != 1)
    return MakeError(
        fmt::format("'{}' has version {}, this strun reads version 1; prepare the dataset again",
                    idx, j.value("version", 0)));
  try {
    TokenFileHeader& h = f.header_;
    h.tokenizer = j.at("tokenizer").get<std::string>();
    h.vocab_size = j.at("vocab_size").get<int64_t>();
    const std::string dtype = j.at("dtype").get<std::string>();
    if (dtype != "uint16" && dtype != "uint32")
      return MakeError(fmt::format("'{}': dtype '{}' is not uint16 or uint32", idx, dtype));
    h.token_bytes = dtype == "uint16" ? 2 : 4;
    h.num_tokens = j.at("num_tokens").get<int64_t>();
    h.num_documents = j.at("num_documents").get<int64_t>();
    if (!j.at("eos_token_id").is_null()) h.eos_token_id = j.at("eos_token_id").get<int64_t>();
    h.eos_appended = j.at("eos_appended").get<bool>();
    h.sources = j.value("sources", std::vector<std::string>{});
  } catch (const nlohmann::json::exception& e) {
    return MakeError(fmt::format("'{}': bad header: {}", idx, e.what()));
  }
  f.offsets_.resize(size_t(f.header_.num_documents) + 1);
  std::vector<char> raw(f.offsets_.size() * 8);
  in.read(raw.data(), std::streamsize(raw.size()));
  if (in.gcount() != std::streamsize(raw.size()))
    return MakeError(
        fmt::format("'{}' is truncated: expected {} document offsets", idx, f.offsets_.size()));
  for (size_t i = 0; i < f.offsets_.size(); ++i) {
    uint64_t v = 0;
    for (int b = 0; b < 8; ++b)
      v |= uint64_t(static_cast<unsigned char>(raw[i * 8 + b])) << (8 * b);
    f.offsets_[i] = v;
    if (i > 0 && v < f.offsets_[i - 1])
      return MakeError(
          fmt::format("'{}' is corrupt: document offsets decrease at document {}", idx, i));
  }
  if (f.offsets_.front() != 0 || int64_t(f.offsets_.back()) != f.header_.num_tokens)
    return MakeError(fmt::format("'{}' is corrupt: offsets do not span num_tokens", idx));
  const int fd = ::open(bin.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return MakeError(
        fmt::format("cannot open '{}': {}; prepare the dataset again", bin, std::strerror(errno)));
  struct stat st {};
  ::fstat(fd, &st);
  const size_t expected = size_t(f.header_.num_tokens) * size_t(f.header_.token_bytes);
  if (size_t(st.st_size) != expected) {
    ::close(fd);
    return MakeError(fmt::format(
        "'{}' has {} bytes but its index says {} tokens ({} bytes); prepare the dataset again", bin,
        st.st_size, f.header_.num_tokens, expected));
  }
  if (expected > 0) {
    void* p = ::mmap(nullptr, expected, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return MakeError(fmt::format("cannot map '{}': {}", bin, std::strerror(errno)));
    }
    f.tokens_ = static_cast<const unsigned char*>(p);
    f.mapped_size_ = expected;
  }
  ::close(fd);
  return f;
}

TokenFile::TokenFile(TokenFile&& o) noexcept { *this = std::move(o); }
TokenFile& TokenFile::operator=(TokenFile&& o) noexcept {
  std::swap(base_, o.base_);
  std::swap(header_, o.header_);
  std::swap(offsets_, o.offsets_);
  std::swap(tokens_, o.tokens_);
  std::swap(mapped_size_, o.mapped_size_);
  return *this;
}
TokenFile::~TokenFile() {
  if (tokens_ != nullptr) ::munmap(const_cast<unsigned char*>(tokens_), mapped_size_);
}

void TokenFile::Read(int64_t start, int64_t count, int32_t* out) const {
  const unsigned char* p = tokens_ + size_t(start) * size_t(header_.token_bytes);
  if (header_.token_bytes == 2) {
    for (int64_t i = 0; i < count; ++i)
      out[i] = int32_t(uint32_t(p[2 * i]) | (uint32_t(p[2 * i + 1]) << 8));
  } else {
    for (int64_t i = 0; i < count; ++i) {
      out[i] = int32_t(uint32_t(p[4 * i]) | (uint32_t(p[4 * i + 1]) << 8) |
                       (uint32_t(p[4 * i + 2]) << 16) | (uint32_t(p[4 * i + 3]) << 24));
    }
  }
}

}  // namespace strun::data

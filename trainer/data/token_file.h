// data/token_file.h: the on-disk form of a prepared (tokenized) dataset split.
//
// A split is two files side by side:
//   <base>.bin  the tokens of all documents, back to back, little-endian uint16 (vocabularies of
//               at most 65536 ids) or uint32; no separator is inserted between documents.
//   <base>.idx  one line of JSON (the header) ending in '\n', then num_documents + 1 little-endian
//               uint64 token offsets: document i is tokens [offset[i], offset[i+1]).
// Header keys: format ("strun-tokens"), version (1), tokenizer, vocab_size, dtype ("uint16" or
// "uint32"), num_tokens, num_documents, eos_token_id (or null), eos_appended (false: as nanotron's
// Hugging Face path, documents are concatenated without EOS), sources (the input files).
//
// Documents are kept (rather than only the token stream) because nanotron groups them in batches
// of 1000 rows when it cuts samples (clm_windows.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::data {

struct TokenFileHeader {
  std::string tokenizer;
  int64_t vocab_size = 0;
  int token_bytes = 2;  // 2 (uint16) or 4 (uint32)
  int64_t num_tokens = 0;
  int64_t num_documents = 0;
  std::optional<int64_t> eos_token_id;
  bool eos_appended = false;
  std::vector<std::string> sources;
};

// Bytes per token for a vocabulary: 2 when every id fits in uint16, else 4.
int TokenBytesFor(int64_t vocab_size);

// Writes <base>.bin and <base>.idx. Documents are appended in order; Finish() writes the index
// and renames both files into place (a crash never leaves a half-written split under <base>).
class TokenFileWriter {
 public:
  static Result<TokenFileWriter> Create(const std::string& base, TokenFileHeader header);
  TokenFileWriter(TokenFileWriter&&) noexcept;
  TokenFileWriter& operator=(TokenFileWriter&&) noexcept;
  ~TokenFileWriter();

  Status AppendDocument(std::span<const int32_t> tokens);
  Status Finish();
  const TokenFileHeader& header() const { return header_; }

 private:
  TokenFileWriter() = default;
  std::string base_;
  TokenFileHeader header_;
  int fd_ = -1;
  std::vector<uint64_t> offsets_{0};
  std::vector<char> buffer_;
  Status Flush();
};

// A prepared split, memory-mapped read-only.
class TokenFile {
 public:
  static Result<TokenFile> Open(const std::string& base);
  TokenFile(TokenFile&&) noexcept;
  TokenFile& operator=(TokenFile&&) noexcept;
  ~TokenFile();

  const TokenFileHeader& header() const { return header_; }
  const std::string& base() const { return base_; }
  int64_t num_tokens() const { return header_.num_tokens; }
  int64_t num_documents() const { return header_.num_documents; }
  // Token offset where document `i` starts (i == num_documents gives num_tokens).
  int64_t document_offset(int64_t i) const { return int64_t(offsets_[i]); }
  std::span<const uint64_t> document_offsets() const { return offsets_; }
  // Copies tokens [start, start + count) into out (widened to int32).
  void Read(int64_t start, int64_t count, int32_t* out) const;

 private:
  TokenFile() = default;
  std::string base_;
  TokenFileHeader header_;
  std::vector<uint64_t> offsets_;
  const unsigned char* tokens_ = nullptr;
  size_t mapped_size_ = 0;
};

}  // namespace strun::data

// tokenizer/bpe_tokenizer.h: GPT-2's byte-level BPE tokenizer.
//
// Encoding follows Hugging Face's GPT-2 tokenizer (what nanotron runs): special tokens such as
// <|endoftext|> are split out first (optionally), the rest is cut into pieces by GPT-2's
// pre-tokenization (pretokenizer.h), each piece's bytes start as single-byte tokens, and the
// merges of vocab.bpe are applied lowest rank first, leftmost first. No prefix space is added and
// no BOS/EOS is appended. Encoded pieces are cached per thread; a Tokenizer is immutable and safe
// to share between threads, and cheap to copy.
//
//   strun::Result<Tokenizer> tok = LoadTokenizer("gpt2");          // tokenizer_resolve.h
//   std::vector<int32_t> ids = tok->Encode("Hello world");         // {15496, 995}
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "strun/result.h"

namespace strun::tokenizer {

// What Encode does with the text of a special token (<|endoftext|>) found in its input.
enum class SpecialTokens {
  kAsText,     // encode it like any other text (js-tiktoken's encode(text, [], []))
  kRecognize,  // emit its id (Hugging Face's default, so what nanotron's data pipeline does)
};

class Tokenizer {
 public:
  // OpenAI's GPT-2 files: encoder.json (token -> id) and vocab.bpe (merges, "#version" header);
  // equally Hugging Face's vocab.json + merges.txt. <|endoftext|> is the special token.
  static Result<Tokenizer> FromGpt2Files(const std::string& encoder_json,
                                         const std::string& vocab_bpe);
  // A Hugging Face tokenizer.json whose model is BPE with a ByteLevel pre-tokenizer (GPT-2 style).
  static Result<Tokenizer> FromHfTokenizerJson(const std::string& path);

  std::vector<int32_t> Encode(std::string_view text,
                              SpecialTokens special = SpecialTokens::kAsText) const;
  // Appends the ids of `text` to `out`.
  void EncodeAppend(std::string_view text, SpecialTokens special, std::vector<int32_t>* out) const;
  // The bytes the ids stand for (ids outside the vocabulary are skipped).
  std::string Decode(std::span<const int32_t> ids) const;

  // One more than the largest id (50257 for GPT-2), as Hugging Face's len(tokenizer).
  int32_t vocab_size() const;
  // The id of <|endoftext|>, if the vocabulary has it (50256 for GPT-2).
  std::optional<int32_t> eos_token_id() const;
  // The name it was loaded under (e.g. "gpt2") or its directory.
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  void EncodeOrdinary(std::string_view text, std::vector<int32_t>* out) const;

  std::shared_ptr<const Impl> impl_;
  std::string name_;
};

}  // namespace strun::tokenizer

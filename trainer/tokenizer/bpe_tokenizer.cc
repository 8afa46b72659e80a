#include "tokenizer/bpe_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"

namespace strun::tokenizer {

namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Merge {
  int32_t rank;
  int32_t merged_id;
};

uint64_t PairKey(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

Result<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return MakeError(fmt::format("cannot read the tokenizer's {} '{}': it is missing or unreadable",
                                 what, path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::atomic<uint64_t> g_next_generation{1};

}  // namespace

struct Tokenizer::Impl {
  std::vector<std::string> id_to_bytes;  // empty string where an id is unused
  PieceMap bytes_to_id;
  std::array<int32_t, 256> byte_to_id{};
  std::unordered_map<uint64_t, Merge> merges;
  std::vector<std::pair<std::string, int32_t>> specials;  // content, id
  std::optional<int32_t> eos;
  uint64_t generation = g_next_generation.fetch_add(1);

  // Adds a token spelled in GPT-2's byte characters; `where` names the input for errors.
  Status AddToken(std::string_view spelled, int64_t id, const std::string& where) {
    if (id < 0 || id > (1 << 30))
      return MakeError(fmt::format("{}: token '{}' has an invalid id {}", where, spelled, id));
    std::optional<std::string> bytes = CharsToBytes(spelled);
    if (!bytes)
      return MakeError(
          fmt::format("{}: token '{}' is not spelled in GPT-2's byte-level characters; only "
                      "byte-level BPE vocabularies are supported",
                      where, spelled));
    if (size_t(id) >= id_to_bytes.size()) id_to_bytes.resize(id + 1);
    id_to_bytes[id] = *bytes;
    bytes_to_id.emplace(std::move(*bytes), int32_t(id));
    return {};
  }

  Status AddMerge(std::string_view left, std::string_view right, int32_t rank,
                  const std::string& where) {
    auto l = CharsToBytes(left), r = CharsToBytes(right);
    if (!l || !r)
      return MakeError(
          fmt::format("{}: merge {} '{} {}' is not spelled in GPT-2's byte-level characters", where,
                      rank + 1, left, right));
    auto li = bytes_to_id.find(*l), ri = bytes_to_id.find(*r), mi = bytes_to_id.find(*l + *r);
    if (li == bytes_to_id.end() || ri == bytes_to_id.end() || mi == bytes_to_id.end()) {
      return MakeError(
          fmt::format("{}: merge {} '{} {}' uses or makes a token that is not in the vocabulary; "
                      "the vocabulary and merges files do not belong together",
                      where, rank + 1, left, right));
    }
    merges.emplace(PairKey(li->second, ri->second), Merge{rank, mi->second});
    return {};
  }

  Status Finish(const std::string& where) {
    for (int b = 0; b < 256; ++b) {
      auto it = bytes_to_id.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
      if (it == bytes_to_id.end())
        return MakeError(
            fmt::format("{}: the vocabulary lacks the single-byte token for byte {}; it is not a "
                        "byte-level BPE vocabulary",
                        where, b));
      byte_to_id[b] = it->second;
    }
    for (const auto& [content, id] : specials) {
      if (content == "<|endoftext|>") eos = id;
    }
    // Longest first, so that a special token that contains another wins.
    std::sort(specials.begin(), specials.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    return {};
  }

  // BPE of one piece: merges by rank (leftmost first among equal ranks), which is GPT-2's loop of
  // "merge every occurrence of the lowest-ranked pair" done with a heap in O(n log n).
  void MergePiece(std::string_view piece, std::vector<int32_t>* out) const {
    const size_t n = piece.size();
    if (n == 1) {
      out->push_back(byte_to_id[static_cast<unsigned char>(piece[0])]);
      return;
    }
    std::vector<int32_t> id(n), next(n), prev(n);
    for (size_t i = 0; i < n; ++i) {
      id[i] = byte_to_id[static_cast<unsigned char>(piece[i])];
      next[i] = int32_t(i + 1);
      prev[i] = int32_t(i) - 1;
    }
    struct Candidate {
      int32_t rank, pos, left, right;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](int32_t pos) {
      if (pos < 0 || next[pos] >= int32_t(n)) return;
      auto it = merges.find(PairKey(id[pos], id[next[pos]]));
      if (it != merges.end()) heap.push({it->second.rank, pos, id[pos], id[next[pos]]});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(int32_t(i));
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      // Stale when either side was merged away or changed since it was pushed.
      if (id[c.pos] != c.left || next[c.pos] >= int32_t(n) || id[next[c.pos]] != c.right) continue;
      const int32_t right = next[c.pos];
      id[c.pos] = merges.find(PairKey(c.left, c.right))->second.merged_id;
      id[right] = -1;
      next[c.pos] = next[right];
      if (next[c.pos] < int32_t(n)) prev[next[c.pos]] = c.pos;
      push(prev[c.pos]);
      push(c.pos);
    }
    for (int32_t i = 0; i < int32_t(n); i = next[i]) out->push_back(id[i]);
  }
};

namespace {

// Per-thread cache of encoded pieces; belongs to one tokenizer at a time.
struct PieceCache {
  uint64_t generation = 0;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
};
constexpr size_t kMaxCachedPieces = 1 << 18;

}  // namespace

Result<Tokenizer> Tokenizer::FromGpt2Files(const std::string& encoder_json,
                                           const std::string& vocab_bpe) {
  auto impl = std::make_shared<Impl>();
  auto vocab_text = ReadFile(encoder_json, "vocabulary");
  if (!vocab_text) return vocab_text.error();
  nlohmann::json vocab = nlohmann::json::parse(*vocab_text, nullptr, /*allow_exceptions=*/false);
  if (!vocab.is_object())
    return MakeError(fmt::format(
        "{}: not a JSON object of token -> id; is it GPT-2's encoder.json / vocab.json?",
        encoder_json));
  for (const auto& [token, value] : vocab.items()) {
    if (!value.is_number_integer())
      return MakeError(
          fmt::format("{}: the id of token '{}' is not an integer", encoder_json, token));
    if (Status s = impl->AddToken(token, value.get<int64_t>(), encoder_json); !s) return s.error();
  }
  auto merges_text = ReadFile(vocab_bpe, "merges");
  if (!merges_text) return merges_text.error();
  std::string_view rest = *merges_text;
  int32_t rank = 0;
  for (int line_no = 1; !rest.empty(); ++line_no) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos) {
      return MakeError(
          fmt::format("{}:{}: expected a merge 'LEFT RIGHT', got '{}'", vocab_bpe, line_no, line));
    }
    if (Status s = impl->AddMerge(line.substr(0, sp), line.substr(sp + 1), rank++,
                                  fmt::format("{}:{}", vocab_bpe, line_no));
        !s)
      return s.error();
  }
  if (auto it = impl->bytes_to_id.find("<|endoftext|>"); it != impl->bytes_to_id.end()) {
    impl->specials.emplace_back("<|endoftext|>", it->second);
  }
  if (Status s = impl->Finish(encoder_json); !s) return s.error();
  return Tokenizer(std::move(impl));
}

Result<Tokenizer> Tokenizer::FromHfTokenizerJson(const std::string& path) {
  auto text = ReadFile(path, "tokenizer.json");
  if (!text) return text.error();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    return MakeError(
        fmt::format("{}: not a Hugging Face tokenizer.json (no 'model' object)", path));
  const auto& model = j["model"];
  if (model.value("type", "") != "BPE")
    return MakeError(fmt::format(
        "{}: model.type is '{}', but only byte-level BPE (GPT-2 style) tokenizers are supported",
        path, model.value("type", "")));
  const auto& pre = j.value("pre_tokenizer", nlohmann::json());
  if (!pre.is_object() || pre.value("type", "") != "ByteLevel" ||
      pre.value("add_prefix_space", false) || !pre.value("use_regex", true)) {
    return MakeError(
        fmt::format("{}: pre_tokenizer must be ByteLevel with add_prefix_space false and use_regex "
                    "true (GPT-2's); this tokenizer's is not supported",
                    path));
  }
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    return MakeError(
        fmt::format("{}: tokenizers with a normalizer are not supported (GPT-2 has none)", path));
  auto impl = std::make_shared<Impl>();
  if (!model.contains("vocab") || !model["vocab"].is_object())
    return MakeError(fmt::format("{}: model.vocab is missing", path));
  for (const auto& [token, value] : model["vocab"].items()) {
    if (!value.is_number_integer())
      return MakeError(fmt::format("{}: model.vocab['{}'] is not an integer", path, token));
    if (Status s = impl->AddToken(token, value.get<int64_t>(), path + ": model.vocab"); !s)
      return s.error();
  }
  if (!model.contains("merges") || !model["merges"].is_array())
    return MakeError(fmt::format("{}: model.merges is missing", path));
  int32_t rank = 0;
  for (const auto& m : model["merges"]) {
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos)
        return MakeError(
            fmt::format("{}: model.merges[{}] '{}' is not 'LEFT RIGHT'", path, rank, s));
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return MakeError(fmt::format("{}: model.merges[{}] is neither 'LEFT RIGHT' nor [LEFT, RIGHT]",
                                   path, rank));
    }
    if (Status s =
            impl->AddMerge(left, right, rank, fmt::format("{}: model.merges[{}]", path, rank));
        !s)
      return s.error();
    ++rank;
  }
  for (const auto& t : j.value("added_tokens", nlohmann::json::array())) {
    if (!t.is_object() || !t.contains("content") || !t.contains("id")) continue;
    const std::string content = t["content"].get<std::string>();
    const int32_t id = t["id"].get<int32_t>();
    if (content.empty() || id < 0)
      return MakeError(fmt::format("{}: added_tokens has an empty token or a negative id", path));
    if (size_t(id) >= impl->id_to_bytes.size()) impl->id_to_bytes.resize(id + 1);
    impl->id_to_bytes[id] = content;
    impl->specials.emplace_back(content, id);
  }
  if (Status s = impl->Finish(path); !s) return s.error();
  return Tokenizer(std::move(impl));
}

void Tokenizer::EncodeOrdinary(std::string_view text, std::vector<int32_t>* out) const {
  thread_local PieceCache cache;
  if (cache.generation != impl_->generation) {
    cache.map.clear();
    cache.generation = impl_->generation;
  }
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  SplitGpt2(text, &pieces);
  for (std::string_view piece : pieces) {
    auto it = cache.map.find(piece);
    if (it != cache.map.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      continue;
    }
    const size_t before = out->size();
    impl_->MergePiece(piece, out);
    if (cache.map.size() >= kMaxCachedPieces) cache.map.clear();
    cache.map.emplace(std::string(piece), std::vector<int32_t>(out->begin() + before, out->end()));
  }
}

void Tokenizer::EncodeAppend(std::string_view text, SpecialTokens special,
                             std::vector<int32_t>* out) const {
  if (special == SpecialTokens::kAsText || impl_->specials.empty()) {
    EncodeOrdinary(text, out);
    return;
  }
  size_t start = 0;
  while (true) {
    // The earliest special token from `start` (specials are sorted longest first, so at equal
    // positions the longest wins).
    size_t best = std::string_view::npos;
    const std::pair<std::string, int32_t>* which = nullptr;
    for (const auto& s : impl_->specials) {
      const size_t p = text.find(s.first, start);
      if (p < best) {
        best = p;
        which = &s;
      }
    }
    if (which == nullptr) break;
    EncodeOrdinary(text.substr(start, best - start), out);
    out->push_back(which->second);
    start = best + which->first.size();
  }
  EncodeOrdinary(text.substr(start), out);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, SpecialTokens special) const {
  std::vector<int32_t> out;
  EncodeAppend(text, special, &out);
  return out;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id >= 0 && size_t(id) < impl_->id_to_bytes.size()) out += impl_->id_to_bytes[id];
  }
  return out;
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->id_to_bytes.size()); }

std::optional<int32_t> Tokenizer::eos_token_id() const { return impl_->eos; }

}  // namespace strun::tokenizer

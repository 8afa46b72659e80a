#include "data/prepare.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "data/dataset_store.h"
#include "data/token_file.h"
#include "tokenizer/tokenizer_resolve.h"

namespace strun::data {
namespace fs = std::filesystem;
using tokenizer::SpecialTokens;
using tokenizer::Tokenizer;

namespace {

constexpr size_t kChunkBytes = 1 << 20;            // text per work item
constexpr size_t kChunkUnits = 8192;               // documents per work item
constexpr size_t kGroupBytes = size_t(512) << 20;  // text held in memory at once

const std::set<std::string> kInputExtensions = {"",     ".txt",   ".text", ".tokens",
                                                ".raw", ".jsonl", ".json"};

bool IsJsonLines(const std::string& path, InputFormat format) {
  if (format != InputFormat::kAuto) return format == InputFormat::kJsonLines;
  const std::string ext = fs::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json";
}

Result<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  if (inputs.empty())
    return MakeError("prepare: no --input given; name text or JSON-lines files or directories");
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(in, ec)) {
        if (e.is_regular_file() && !e.is_symlink() &&
            kInputExtensions.count(e.path().extension().string()))
          found.push_back(e.path().string());
      }
      if (found.empty())
        return MakeError(
            fmt::format("--input '{}': the directory has no .txt, .text, .tokens, .raw, .jsonl, "
                        ".json or extension-less files",
                        in));
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(in, ec)) {
      files.push_back(in);
    } else {
      return MakeError(fmt::format("--input '{}': no such file or directory", in));
    }
  }
  return files;
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(fmt::format("--input '{}': cannot read it", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One document before tokenization: text in a loaded file, or a JSON line to decode.
struct Unit {
  std::string_view text;
  int32_t file = 0;          // index into the group's files
  int64_t line = 0;          // 1-based line (JSON-lines), for errors
  bool add_newline = false;  // keep_linebreaks: the line ended in a break
  bool json = false;
};

void SplitUnits(std::string_view content, int32_t file, bool json, const PrepareOptions& o,
                std::vector<Unit>* units) {
  if (!json && o.sample_by == SampleBy::kDocument) {
    units->push_back({content, file, 0, false, false});
    return;
  }
  if (!json && o.sample_by == SampleBy::kParagraph) {
    size_t start = 0;
    while (start <= content.size()) {
      size_t end = content.find("\n\n", start);
      if (end == std::string_view::npos) end = content.size();
      if (end > start)
        units->push_back({content.substr(start, end - start), file, 0, false, false});
      start = end + 2;
    }
    return;
  }
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t end = content.find_first_of("\r\n", pos);
    const bool has_break = end != std::string_view::npos;
    if (!has_break) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    ++line_no;
    size_t next = end;
    if (has_break)
      next +=
          (content[end] == '\r' && end + 1 < content.size() && content[end + 1] == '\n') ? 2 : 1;
    if (json) {
      if (line.find_first_not_of(" \t") != std::string_view::npos)
        units->push_back({line, file, line_no, false, true});
    } else {
      units->push_back({line, file, line_no, o.keep_linebreaks && has_break, false});
    }
    pos = next;
  }
}

struct ChunkResult {
  std::vector<int32_t> tokens;
  std::vector<int64_t> doc_lengths;
  std::optional<Error> error;
  bool done = false;
};

class Progress {
 public:
  Progress(bool enabled, int64_t total)
      : enabled_(enabled),
        total_(total),
        tty_(::isatty(2) == 1),
        start_(Clock::now()),
        last_(start_) {}
  void Update(int64_t done, int64_t tokens, bool final = false) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!final && since < (tty_ ? 0.1 : 5.0)) return;
    last_ = now;
    const double elapsed = std::max(1e-9, std::chrono::duration<double>(now - start_).count());
    const double frac = total_ > 0 ? double(done) / double(total_) : 1.0;
    const double mbps = double(done) / 1e6 / elapsed;
    if (tty_) {
      const int width = 30, filled = int(frac * width);
      std::fprintf(stderr, "\rprepare [%s%s] %5.1f%%  %.1f/%.1f MB  %.1f MB/s  %lld tokens%s",
                   std::string(size_t(filled), '#').c_str(),
                   std::string(size_t(width - filled), '.').c_str(), 100 * frac, double(done) / 1e6,
                   double(total_) / 1e6, mbps, static_cast<long long>(tokens), final ? "\n" : "");
    } else {
      std::fprintf(stderr, "prepare: %.1f%% of %.1f MB, %.1f MB/s, %lld tokens\n", 100 * frac,
                   double(total_) / 1e6, mbps, static_cast<long long>(tokens));
    }
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  int64_t total_;
  bool tty_;
  Clock::time_point start_, last_;
};

}  // namespace

Result<PrepareStats> Prepare(const PrepareOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<std::vector<std::string>> files = ExpandInputs(o.inputs);
  if (!files) return files.error();
  if (o.output.empty())
    return MakeError("prepare: --output is required: a dataset name (stored under " + DataHome() +
                     ") or a directory path");
  if (o.split.empty() || o.split.find('/') != std::string::npos)
    return MakeError(
        fmt::format("prepare: --split '{}' must be a plain name such as 'train'", o.split));
  Result<Tokenizer> tok = tokenizer::LoadTokenizer(o.tokenizer);
  if (!tok) return tok.error();

  const fs::path dir =
      IsPathLike(o.output) ? fs::path(o.output) : fs::path(StoreDirectory(o.output, o.config));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return MakeError(fmt::format("prepare: cannot create '{}': {}", dir.string(), ec.message()));
  PrepareStats stats;
  stats.split_base = (dir / o.split).string();

  TokenFileHeader header;
  header.tokenizer = o.tokenizer;
  header.vocab_size = tok->vocab_size();
  if (auto eos = tok->eos_token_id()) header.eos_token_id = *eos;
  header.eos_appended = false;
  for (const std::string& f : *files) header.sources.push_back(fs::absolute(f, ec).string());
  Result<TokenFileWriter> writer = TokenFileWriter::Create(stats.split_base, header);
  if (!writer) return writer.error();

  int64_t total_bytes = 0;
  for (const std::string& f : *files) total_bytes += int64_t(fs::file_size(f, ec));
  stats.input_bytes = total_bytes;
  const int workers =
      o.num_workers > 0 ? o.num_workers : int(std::max(1u, std::thread::hardware_concurrency()));
  stats.workers = workers;
  Progress progress(o.progress, total_bytes);
  int64_t bytes_done = 0;

  for (size_t first = 0; first < files->size();) {
    // A group of files whose text fits in memory (at least one file).
    std::vector<std::string> contents;
    std::vector<std::string> names;
    size_t group_bytes = 0;
    while (first < files->size() && (contents.empty() || group_bytes < kGroupBytes)) {
      Result<std::string> text = ReadWhole((*files)[first]);
      if (!text) return text.error();
      group_bytes += text->size();
      contents.push_back(std::move(*text));
      names.push_back((*files)[first]);
      ++first;
    }
    std::vector<Unit> units;
    for (size_t i = 0; i < contents.size(); ++i)
      SplitUnits(contents[i], int32_t(i), IsJsonLines(names[i], o.format), o, &units);

    // Work items: runs of units, each tokenized by one worker; written in order by this thread.
    std::vector<std::pair<size_t, size_t>> chunks;
    for (size_t b = 0; b < units.size();) {
      size_t e = b, bytes = 0;
      while (e < units.size() && (e == b || (bytes < kChunkBytes && e - b < kChunkUnits)))
        bytes += units[e++].text.size();
      chunks.emplace_back(b, e);
      b = e;
    }
    std::vector<ChunkResult> results(chunks.size());
    std::mutex mu;
    std::condition_variable cv;
    size_t next_chunk = 0, written = 0;
    const size_t max_ahead = size_t(workers) * 4;
    bool abort = false;

    auto work = [&] {
      std::string scratch;
      while (true) {
        size_t c;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] {
            return abort || next_chunk >= chunks.size() || next_chunk < written + max_ahead;
          });
          if (abort || next_chunk >= chunks.size()) return;
          c = next_chunk++;
        }
        ChunkResult r;
        for (size_t u = chunks[c].first; u < chunks[c].second && !r.error; ++u) {
          const Unit& unit = units[u];
          const size_t before = r.tokens.size();
          if (unit.json) {
            nlohmann::json j =
                nlohmann::json::parse(unit.text, nullptr, /*allow_exceptions=*/false);
            if (j.is_discarded() || !j.is_object()) {
              r.error = MakeError(fmt::format(
                  "{}:{}: not a JSON object; JSON-lines inputs need one object per line",
                  names[unit.file], unit.line));
            } else if (!j.contains(o.text_column)) {
              r.error =
                  MakeError(fmt::format("{}:{}: no '{}' key; set --text-column (text_column_name) "
                                        "to the key holding the text",
                                        names[unit.file], unit.line, o.text_column));
            } else if (!j[o.text_column].is_string()) {
              r.error = MakeError(fmt::format("{}:{}: '{}' is not a string", names[unit.file],
                                              unit.line, o.text_column));
            } else {
              tok->EncodeAppend(j[o.text_column].get_ref<const std::string&>(),
                                SpecialTokens::kRecognize, &r.tokens);
            }
          } else if (unit.add_newline) {
            scratch.assign(unit.text);
            scratch.push_back('\n');
            tok->EncodeAppend(scratch, SpecialTokens::kRecognize, &r.tokens);
          } else {
            tok->EncodeAppend(unit.text, SpecialTokens::kRecognize, &r.tokens);
          }
          r.doc_lengths.push_back(int64_t(r.tokens.size() - before));
        }
        r.done = true;
        std::lock_guard lock(mu);
        results[c] = std::move(r);
        cv.notify_all();
      }
    };
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w) pool.emplace_back(work);
    std::optional<Error> failure;
    for (size_t c = 0; c < chunks.size() && !failure; ++c) {
      ChunkResult r;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return results[c].done; });
        r = std::move(results[c]);
        results[c] = ChunkResult{};
        written = c + 1;
      }
      cv.notify_all();
      if (r.error) {
        failure = r.error;
        break;
      }
      size_t offset = 0;
      for (int64_t len : r.doc_lengths) {
        if (Status s = writer->AppendDocument(
                std::span<const int32_t>(r.tokens.data() + offset, size_t(len)));
            !s) {
          failure = s.error();
          break;
        }
        offset += size_t(len);
        ++stats.documents;
      }
      stats.tokens += int64_t(r.tokens.size());
      for (size_t u = chunks[c].first; u < chunks[c].second; ++u)
        bytes_done += int64_t(units[u].text.size());
      progress.Update(bytes_done, stats.tokens);
    }
    {
      std::lock_guard lock(mu);
      abort = true;
    }
    cv.notify_all();
    for (auto& t : pool) t.join();
    if (failure) return *failure;
  }
  if (Status s = writer->Finish(); !s) return s.error();
  progress.Update(total_bytes, stats.tokens, /*final=*/true);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace strun::data

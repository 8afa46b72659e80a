// Token-for-token parity of our GPT-2 tokenizer with js-tiktoken's r50k_base (an independent
// implementation, run under node) on several megabytes of real text shipped by Debian packages
// plus generated Unicode, emoji, white-space, digit and contraction stress text. Also reports
// single-core speed against js-tiktoken.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer_resolve.h"
#include "tokenizer/unicode_classes.h"

namespace strun::tokenizer {
namespace {
namespace fs = std::filesystem;

const std::string kDataDir = STRUN_SOURCE_DIR "/etc/data";

std::string FindOnPath(const std::string& exe) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  for (std::string dir; std::getline(ss, dir, ':');) {
    const fs::path p = fs::path(dir) / exe;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Strict UTF-8 (what node's decoder accepts without replacing anything).
bool IsValidUtf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const DecodedChar c = DecodeAt(s, pos);
    if (c.length == 1 && static_cast<unsigned char>(s[pos]) >= 0x80) return false;
    pos += c.length;
  }
  return true;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else if (cp < 0x800) {
    out->push_back(char(0xC0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(char(0xE0 | (cp >> 12)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (cp >> 18)));
    out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  }
}

// Deterministic text that exercises every branch of the pre-tokenizer and the class tables.
std::string StressText() {
  std::mt19937_64 rng(20240611);
  const std::vector<std::string> fragments = {
      "'s",
      "'t",
      "'re",
      "'ve",
      "'m",
      "'ll",
      "'d",
      "'S",
      "'T",
      "'RE",
      "'x",
      "''",
      "’s",
      "n't",
      "I'm",
      "we'll",
      "they'd",
      "'",
      " ",
      "  ",
      "   ",
      "\t",
      "\n",
      "\n\n",
      "\r\n",
      " \n ",
      "\u00a0",
      "\u3000",
      "\u2028",
      "\u2029",
      "\u200b",
      "\u0085",
      "\ufeff",
      "\u2003",
      "\u1680",
      "\x0b",
      "\x0c",
      "\x1c",
      "\x1f",
      "\x7f",
      std::string(1, '\0'),
      "0",
      "7",
      "42",
      "2024",
      "3.14159",
      "1,000,000",
      "٣٤٥",
      "１２３",
      "²",
      "½",
      "Ⅻ",
      "⑦",
      "𝟙𝟚",
      "০১২",
      "hello",
      "Hello",
      "WORLD",
      "naïve",
      "café",
      "Ærøskøbing",
      "straße",
      "ΑΒΓ δέλτα",
      "Привет",
      "мир",
      "日本語",
      "中文字符",
      "한국어",
      "العربية",
      "हिन्दी",
      "ไทย",
      "עברית",
      "e\u0301",
      "a\u0308\u0323",
      "ǅ",
      "ʰ",
      "ﬁ",
      "🙂",
      "👍🏽",
      "👨‍👩‍👧",
      "🇨🇭",
      "❤️",
      "🤖🤖",
      "☃",
      "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
      "𓀀",
      "\U0001F600\U0001F601",
      "!",
      "?!",
      "...",
      "---",
      "—",
      "«»",
      "“quoted”",
      "(",
      ")",
      "[]",
      "{}",
      "<|endoftext|>",
      "<|",
      "|>",
      "@#$%^&*",
      "_",
      "__init__",
      "http://example.com/a?b=c",
      "foo.bar()",
      "x+=1;",
      "#include <x>",
      "\\n",
      "$",
      "€100",
      "£5",
      "¥",
      "%d",
  };
  std::string out;
  for (int i = 0; i < 60000; ++i) {
    out += fragments[rng() % fragments.size()];
    if (rng() % 3 == 0) out += ' ';
  }
  // Long runs: spaces before a word and at the end, digits, one long word, repeated symbols.
  // (Kept to a few hundred characters: js-tiktoken's merge loop is cubic in a piece's length.)
  out += std::string(400, ' ') + "word" + std::string(300, '\n') + "x" + std::string(100, '\t');
  out += std::string(300, '9') + " " + std::string(300, 'a') + " " + std::string(300, '=') + "\n";
  // Every kind of code point: random scalar values (no surrogates), some separated by spaces.
  for (int i = 0; i < 150000; ++i) {
    char32_t cp;
    do {
      const uint64_t r = rng();
      cp = (r & 3) == 0 ? char32_t((r >> 2) % 0x110000) : char32_t((r >> 2) % 0x3000);
    } while (cp >= 0xD800 && cp <= 0xDFFF);
    AppendUtf8(cp, &out);
    if (rng() % 4 == 0) out += ' ';
  }
  out += std::string(50, ' ');  // ends in white space
  return out;
}

// Several MB of real text from Debian packages on this machine: licences, fortune cookies,
// package documentation and Python sources, taken a file from each source in turn (sorted).
std::string RealText(size_t budget) {
  auto list = [](const fs::path& dir, auto pred, bool recursive) {
    std::error_code ec;
    std::vector<fs::path> found;
    auto consider = [&](const fs::directory_entry& e) {
      if (e.is_regular_file() && !e.is_symlink() && pred(e.path())) found.push_back(e.path());
    };
    if (recursive) {
      for (const auto& e : fs::recursive_directory_iterator(dir, ec)) consider(e);
    } else {
      for (const auto& e : fs::directory_iterator(dir, ec)) consider(e);
    }
    std::sort(found.begin(), found.end());
    return found;
  };
  const std::vector<std::vector<fs::path>> sources = {
      list(
          "/usr/share/common-licenses", [](const fs::path&) { return true; }, false),
      list(
          "/usr/share/games/fortunes", [](const fs::path& p) { return p.extension().empty(); },
          false),
      list(
          "/usr/share/doc",
          [](const fs::path& p) {
            return p.filename() == "copyright" || p.extension() == ".txt" || p.extension() == ".md";
          },
          true),
      list(
          "/usr/lib/python3.11", [](const fs::path& p) { return p.extension() == ".py"; }, true),
  };
  std::string out;
  const size_t per_file_cap = 400000;
  for (size_t i = 0; out.size() < budget; ++i) {
    bool any = false;
    for (const auto& files : sources) {
      if (i >= files.size() || out.size() >= budget) continue;
      any = true;
      std::string text = ReadFile(files[i]);
      if (text.size() <= per_file_cap && IsValidUtf8(text)) out += text;
    }
    if (!any) break;
  }
  return out;
}

TEST(TokenizerParity, MatchesJsTiktokenR50kBase) {
  const std::string node = FindOnPath("node");
  const std::string module_dir = kDataDir + "/node_modules/js-tiktoken";
  if (node.empty())
    GTEST_SKIP()
        << "node is not on PATH; install it (etc/setup/install-deps.sh) to run the parity test";
  if (!fs::exists(module_dir + "/dist/index.js"))
    GTEST_SKIP() << "js-tiktoken is missing at " << module_dir
                 << "; run etc/setup/fetch-tokenizer.sh";

  Result<Tokenizer> tok = LoadTokenizerFrom(kDataDir + "/tokenizers/gpt2");
  ASSERT_TRUE(tok.ok()) << tok.error().message << "\n(run etc/setup/fetch-tokenizer.sh)";

  const std::string real = RealText(size_t(8) << 20);
  const std::string stress = StressText();
  ASSERT_GT(real.size(), size_t(3) << 20)
      << "expected several MB of text from Debian packages (licences, docs, Python sources)";
  const std::string text = real + stress;

  const fs::path dir = fs::temp_directory_path() / ("strun-parity-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  { std::ofstream(dir / "in.txt", std::ios::binary) << text; }
  const std::string cmd = "'" + node + "' '" STRUN_TEST_DIR "/tiktoken_encode.mjs' '" + module_dir +
                          "' '" + (dir / "in.txt").string() + "' '" + (dir / "out.bin").string() +
                          "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[256] = {0};
  const bool got_line = std::fgets(buf, sizeof buf, pipe) != nullptr;
  ASSERT_EQ(::pclose(pipe), 0) << "node failed: " << cmd;
  ASSERT_TRUE(got_line);
  const double js_seconds = std::atof(buf);
  const std::string raw = ReadFile(dir / "out.bin");
  fs::remove_all(dir);
  std::vector<int32_t> expected(raw.size() / 4);
  std::memcpy(expected.data(), raw.data(), expected.size() * 4);

  // CPU time of this thread, comparable to node's process CPU time on a shared machine.
  auto cpu_seconds = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
  };
  const double start = cpu_seconds();
  const std::vector<int32_t> ours = tok->Encode(text, SpecialTokens::kAsText);
  const double our_seconds = cpu_seconds() - start;

  size_t first_diff = 0;
  while (first_diff < ours.size() && first_diff < expected.size() &&
         ours[first_diff] == expected[first_diff])
    ++first_diff;
  if (first_diff < ours.size() || first_diff < expected.size()) {
    std::string context_ours, context_js;
    const size_t from = first_diff >= 5 ? first_diff - 5 : 0;
    for (size_t i = from; i < std::min(ours.size(), first_diff + 10); ++i)
      context_ours += std::to_string(ours[i]) + " ";
    for (size_t i = from; i < std::min(expected.size(), first_diff + 10); ++i)
      context_js += std::to_string(expected[i]) + " ";
    const std::string decoded_prefix =
        tok->Decode(std::span<const int32_t>(ours.data(), first_diff));
    const std::string around =
        text.substr(decoded_prefix.size() >= 40 ? decoded_prefix.size() - 40 : 0, 80);
    FAIL() << "first difference at token " << first_diff << " (byte " << decoded_prefix.size()
           << " of " << text.size() << "); ours has " << ours.size() << " tokens, js-tiktoken "
           << expected.size() << "\n  ours from " << from << ": " << context_ours
           << "\n  js   from " << from << ": " << context_js << "\n  text around: [" << around
           << "]";
  }
  const double mb = double(text.size()) / 1e6;
  std::cout << "parity: " << ours.size() << " tokens, " << mb
            << " MB identical. Speed on one core: ours " << mb / our_seconds
            << " MB/s (CPU time, cold cache), js-tiktoken " << mb / js_seconds << " MB/s; ratio "
            << js_seconds / our_seconds << "x\n";
  RecordProperty("ours_mb_per_s", std::to_string(mb / our_seconds));
  RecordProperty("js_tiktoken_mb_per_s", std::to_string(mb / js_seconds));
}

}  // namespace
}  // namespace strun::tokenizer

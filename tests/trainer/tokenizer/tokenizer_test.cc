// Unit tests of the GPT-2 tokenizer: pre-tokenization, BPE, special tokens, the file formats and
// the search path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../scoped_env.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_resolve.h"
#include "tokenizer/unicode_classes.h"

namespace strun::tokenizer {
namespace {
namespace fs = std::filesystem;

const std::string kGpt2Dir = STRUN_SOURCE_DIR "/etc/data/tokenizers/gpt2";

std::vector<std::string> Split(std::string_view text) {
  std::vector<std::string_view> pieces;
  SplitGpt2(text, &pieces);
  return {pieces.begin(), pieces.end()};
}

using V = std::vector<std::string>;

TEST(Pretokenizer, WordsKeepTheirLeadingSpace) {
  EXPECT_EQ(Split("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(Split("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(Split("a\t b"), (V{"a", "\t", " b"}));
}

TEST(Pretokenizer, WhiteSpaceRunsGiveUpTheirLastCharacter) {
  EXPECT_EQ(Split("x   y"), (V{"x", "  ", " y"}));
  EXPECT_EQ(Split("x\n\ny"), (V{"x", "\n", "\n", "y"}));
  EXPECT_EQ(Split("x   "), (V{"x", "   "}));  // at the end the whole run
  EXPECT_EQ(Split("   "), (V{"   "}));
  EXPECT_EQ(Split(" \n x"), (V{" \n", " x"}));
  EXPECT_EQ(Split("x \u3000y"), (V{"x", " ", "\u3000", "y"}));  // only U+0020 joins the next piece
}

TEST(Pretokenizer, ContractionsAreAsciiAndCaseSensitive) {
  EXPECT_EQ(Split("it's"), (V{"it", "'s"}));
  EXPECT_EQ(Split("we'll they've I'm you're he'd can't"),
            (V{"we", "'ll", " they", "'ve", " I", "'m", " you", "'re", " he", "'d", " can", "'t"}));
  EXPECT_EQ(Split("IT'S"), (V{"IT", "'", "S"}));
  EXPECT_EQ(Split("it’s"), (V{"it", "’", "s"}));
  EXPECT_EQ(Split("'sa"), (V{"'s", "a"}));
  EXPECT_EQ(Split("!'s"), (V{"!'", "s"}));
}

TEST(Pretokenizer, LettersNumbersAndOthersAreSeparateRuns) {
  EXPECT_EQ(Split("abc123def"), (V{"abc", "123", "def"}));
  EXPECT_EQ(Split(" 2024!?"), (V{" 2024", "!?"}));
  EXPECT_EQ(Split("naïve café"), (V{"naïve", " café"}));
  EXPECT_EQ(Split("Ⅻ½²"), (V{"Ⅻ½²"}));              // \p{N} beyond ASCII
  EXPECT_EQ(Split("e\u0301"), (V{"e", "\u0301"}));  // a combining mark is not a letter
  EXPECT_EQ(Split("🙂🙂 x"), (V{"🙂🙂", " x"}));
  EXPECT_EQ(Split(" !!"), (V{" !!"}));
}

TEST(Pretokenizer, InvalidUtf8KeepsEveryByte) {
  const std::string bad = "a\xff\xfe b\xc3";
  std::string joined;
  for (const auto& p : Split(bad)) joined += p;
  EXPECT_EQ(joined, bad);
}

TEST(UnicodeClasses, Classify) {
  EXPECT_EQ(ClassifyCodePoint(U'a'), CharClass::kLetter);
  EXPECT_EQ(ClassifyCodePoint(U'日'), CharClass::kLetter);
  EXPECT_EQ(ClassifyCodePoint(U'٣'), CharClass::kNumber);
  EXPECT_EQ(ClassifyCodePoint(0x3000), CharClass::kSpace);
  EXPECT_EQ(ClassifyCodePoint(0xFEFF), CharClass::kSpace);  // JavaScript's \s
  EXPECT_EQ(ClassifyCodePoint(0x85), CharClass::kOther);    // not JavaScript's \s
  EXPECT_EQ(ClassifyCodePoint(0x200B), CharClass::kOther);
  EXPECT_EQ(ClassifyCodePoint(0x1F642), CharClass::kOther);
}

TEST(ByteLevel, RoundTripsEveryByte) {
  EXPECT_EQ(ByteToChar(' '), char32_t(0x120));
  EXPECT_EQ(ByteToChar('A'), char32_t('A'));
  EXPECT_EQ(CharsToBytes("Ġhello"), std::optional<std::string>(" hello"));
  EXPECT_EQ(CharsToBytes("日"), std::nullopt);
}

class Gpt2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kGpt2Dir + "/encoder.json"))
        << "GPT-2 files missing at " << kGpt2Dir << ": run etc/setup/fetch-tokenizer.sh";
    auto t = Tokenizer::FromGpt2Files(kGpt2Dir + "/encoder.json", kGpt2Dir + "/vocab.bpe");
    ASSERT_TRUE(t.ok()) << t.error().message;
    tok_.emplace(std::move(*t));
  }
  std::optional<Tokenizer> tok_;
};

TEST_F(Gpt2Test, KnownEncodings) {
  EXPECT_EQ(tok_->Encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok_->Encode(" The quick brown fox"), (std::vector<int32_t>{383, 2068, 7586, 21831}));
  EXPECT_EQ(tok_->Encode(""), (std::vector<int32_t>{}));
  EXPECT_EQ(tok_->vocab_size(), 50257);
  EXPECT_EQ(tok_->eos_token_id(), std::optional<int32_t>(50256));
}

TEST_F(Gpt2Test, SpecialTokens) {
  const std::string text = "a<|endoftext|>b";
  const auto recognized = tok_->Encode(text, SpecialTokens::kRecognize);
  EXPECT_EQ(recognized, (std::vector<int32_t>{64, 50256, 65}));
  const auto as_text = tok_->Encode(text, SpecialTokens::kAsText);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), 50256), 0);
  EXPECT_EQ(tok_->Decode(as_text), text);
  EXPECT_EQ(tok_->Decode(recognized), text);
}

TEST_F(Gpt2Test, DecodeRoundTripsArbitraryBytes) {
  const std::string text = "Grüße, 世界! 🙂\t\n  x\xff\x80 end";
  EXPECT_EQ(tok_->Decode(tok_->Encode(text)), text);
}

TEST_F(Gpt2Test, HuggingFaceTokenizerJsonGivesTheSameIds) {
  // Build a tokenizer.json in Hugging Face's layout from the GPT-2 files.
  std::ifstream vocab_in(kGpt2Dir + "/encoder.json");
  nlohmann::json vocab = nlohmann::json::parse(vocab_in);
  std::ifstream merges_in(kGpt2Dir + "/vocab.bpe");
  nlohmann::json merges = nlohmann::json::array();
  std::string line;
  std::getline(merges_in, line);  // #version
  while (std::getline(merges_in, line)) {
    if (!line.empty()) merges.push_back(line);
  }
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  const fs::path dir = fs::temp_directory_path() / ("strun-tokjson-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  auto hf = LoadTokenizerFrom(dir.string());
  ASSERT_TRUE(hf.ok()) << hf.error().message;
  const std::string text = "It's a test of 1234 things: naïve café 🙂<|endoftext|>done";
  EXPECT_EQ(hf->Encode(text, SpecialTokens::kRecognize),
            tok_->Encode(text, SpecialTokens::kRecognize));
  EXPECT_EQ(hf->vocab_size(), 50257);

  // New-style merges ([left, right] pairs) too.
  for (auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    m = nlohmann::json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  std::ofstream(dir / "tokenizer.json", std::ios::trunc) << j.dump();
  auto hf2 = LoadTokenizerFrom(dir.string());
  ASSERT_TRUE(hf2.ok()) << hf2.error().message;
  EXPECT_EQ(hf2->Encode(text), tok_->Encode(text));
  fs::remove_all(dir);
}

using ::strun::test::ScopedEnv;

TEST(TokenizerResolve, SearchPathOrder) {
  ScopedEnv path("STRUN_TOKENIZER_PATH", "/a:/b");
  ScopedEnv hf("HF_HOME", "/hf");
  ScopedEnv hub("HF_HUB_CACHE", "");
  ::unsetenv("HF_HUB_CACHE");
  const auto dirs = TokenizerSearchPath("openai-community/gpt2");
  ASSERT_EQ(dirs.size(), 5u);
  EXPECT_EQ(dirs[0], "/a/openai-community/gpt2");
  EXPECT_EQ(dirs[1], "/b/openai-community/gpt2");
  EXPECT_EQ(dirs[2], STRUN_SOURCE_DIR "/etc/data/tokenizers/openai-community/gpt2");
  EXPECT_EQ(dirs[4], "/hf/hub/models--openai-community--gpt2/snapshots/*");
}

TEST(TokenizerResolve, FindsNamesInStrunPathAndHubCache) {
  ASSERT_TRUE(fs::exists(kGpt2Dir + "/encoder.json")) << "run etc/setup/fetch-tokenizer.sh";
  const fs::path root = fs::temp_directory_path() / ("strun-tokpath-" + std::to_string(::getpid()));
  fs::create_directories(root / "mine" / "mytok");
  fs::copy_file(kGpt2Dir + "/encoder.json", root / "mine" / "mytok" / "encoder.json");
  fs::copy_file(kGpt2Dir + "/vocab.bpe", root / "mine" / "mytok" / "vocab.bpe");
  {
    ScopedEnv path("STRUN_TOKENIZER_PATH", (root / "mine").string());
    auto t = LoadTokenizer("mytok");
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->name(), "mytok");
    EXPECT_EQ(t->Encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  }
  // Hugging Face hub cache layout with vocab.json + merges.txt.
  const fs::path snap = root / "hf" / "hub" / "models--someone--tok" / "snapshots" / "abc123";
  fs::create_directories(snap);
  fs::copy_file(kGpt2Dir + "/encoder.json", snap / "vocab.json");
  fs::copy_file(kGpt2Dir + "/vocab.bpe", snap / "merges.txt");
  {
    ScopedEnv hf("HF_HOME", (root / "hf").string());
    ScopedEnv path("STRUN_TOKENIZER_PATH", "");
    auto t = LoadTokenizer("someone/tok");
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->Encode(" world"), (std::vector<int32_t>{995}));
  }
  fs::remove_all(root);
}

TEST(TokenizerResolve, MissingNameListsWhereItLooked) {
  auto t = LoadTokenizer("no-such-tokenizer-xyz");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("no-such-tokenizer-xyz"), std::string::npos);
  EXPECT_NE(t.error().message.find("etc/data/tokenizers/no-such-tokenizer-xyz"), std::string::npos);
  EXPECT_NE(t.error().message.find("fetch-tokenizer.sh"), std::string::npos);
}

TEST(TokenizerResolve, BadFilesAreErrorsNamingTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("strun-badtok-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "encoder.json") << "{\"a\": 0}";
  std::ofstream(dir / "vocab.bpe") << "#version: 0.2\na b\n";
  auto t = LoadTokenizerFrom(dir.string());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find((dir / "vocab.bpe").string() + ":2"), std::string::npos)
      << t.error().message;
  std::ofstream(dir / "encoder.json", std::ios::trunc) << "not json";
  t = LoadTokenizerFrom(dir.string());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("encoder.json"), std::string::npos) << t.error().message;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace strun::tokenizer

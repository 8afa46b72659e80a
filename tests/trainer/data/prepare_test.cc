// Prepared splits: the token file format, `prepare` on text and JSON-lines inputs, the dataset
// store and its error messages, and the `prepare` command line.
#include "data/prepare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "data/dataset_store.h"
#include "data/prepare_command.h"
#include "data/token_file.h"
#include "data_test_util.h"

namespace strun::data {
namespace {
using testing::Bytes;
using testing::ScopedEnv;
using testing::ScratchDir;

std::vector<std::vector<int32_t>> Documents(const TokenFile& f) {
  std::vector<std::vector<int32_t>> docs;
  for (int64_t d = 0; d < f.num_documents(); ++d) {
    const int64_t begin = f.document_offset(d), end = f.document_offset(d + 1);
    docs.emplace_back(size_t(end - begin));
    f.Read(begin, end - begin, docs.back().data());
  }
  return docs;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(TokenFile, RoundTripsUint16AndUint32) {
  ScratchDir dir;
  for (int64_t vocab : {50257, 100000}) {
    const std::string base = (dir.path() / ("split" + std::to_string(vocab))).string();
    TokenFileHeader h;
    h.tokenizer = "t";
    h.vocab_size = vocab;
    h.eos_token_id = 7;
    auto w = TokenFileWriter::Create(base, h);
    ASSERT_TRUE(w.ok()) << w.error().message;
    std::vector<std::vector<int32_t>> docs = {
        {1, 2, 3}, {}, {int32_t(vocab - 1)}, {0, 65535 % int32_t(vocab)}};
    for (const auto& d : docs) ASSERT_TRUE(w->AppendDocument(d).ok());
    ASSERT_TRUE(w->Finish().ok());
    auto f = TokenFile::Open(base);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->header().token_bytes, vocab <= 65536 ? 2 : 4);
    EXPECT_EQ(f->num_tokens(), 6);
    EXPECT_EQ(f->header().eos_token_id, std::optional<int64_t>(7));
    EXPECT_FALSE(f->header().eos_appended);
    EXPECT_EQ(Documents(*f), docs);
  }
}

TEST(TokenFile, RejectsIdsOutsideTheVocabularyAndDamagedFiles) {
  ScratchDir dir;
  const std::string base = (dir.path() / "s").string();
  TokenFileHeader h;
  h.vocab_size = 10;
  auto w = TokenFileWriter::Create(base, h);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->AppendDocument(std::vector<int32_t>{10}).ok());
  ASSERT_TRUE(w->AppendDocument(std::vector<int32_t>{1, 2}).ok());
  ASSERT_TRUE(w->Finish().ok());
  std::ofstream(base + ".bin", std::ios::app) << "xx";  // wrong size
  auto f = TokenFile::Open(base);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find(base + ".bin"), std::string::npos) << f.error().message;
  auto missing = TokenFile::Open((dir.path() / "nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("strun-train prepare"), std::string::npos);
}

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override { tokenizer_ = testing::WriteByteTokenizer(dir_.path() / "bytetok"); }
  PrepareOptions Options(std::vector<std::string> inputs, const std::string& out = "") {
    PrepareOptions o;
    o.inputs = std::move(inputs);
    o.output = out.empty() ? (dir_.path() / "out").string() : out;
    o.tokenizer = tokenizer_;
    o.progress = false;
    return o;
  }
  ScratchDir dir_;
  std::string tokenizer_;
};

TEST_F(PrepareTest, TextLinesAreDocumentsLikeDatasetsTextLoader) {
  const std::string in = dir_.Write("a.txt", "first line\n\nthird\r\nfourth\rlast");
  auto stats = Prepare(Options({in}));
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->split_base, (dir_.path() / "out" / "train").string());
  auto f = TokenFile::Open(stats->split_base);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(Documents(*f),
            (std::vector<std::vector<int32_t>>{
                Bytes("first line"), {}, Bytes("third"), Bytes("fourth"), Bytes("last")}));
  EXPECT_EQ(f->header().vocab_size, 257);
  EXPECT_EQ(f->header().eos_token_id, std::optional<int64_t>(256));

  auto o = Options({in});
  o.keep_linebreaks = true;
  auto kept = Prepare(o);
  ASSERT_TRUE(kept.ok());
  auto k = TokenFile::Open(kept->split_base);
  EXPECT_EQ(Documents(*k),
            (std::vector<std::vector<int32_t>>{Bytes("first line\n"), Bytes("\n"), Bytes("third\n"),
                                               Bytes("fourth\n"), Bytes("last")}));
}

TEST_F(PrepareTest, ParagraphAndDocumentModes) {
  const std::string in = dir_.Write("p.txt", "one\ntwo\n\nthree\n\n\n\nfour");
  auto o = Options({in});
  o.sample_by = SampleBy::kParagraph;
  auto f = TokenFile::Open(Prepare(o)->split_base);
  EXPECT_EQ(Documents(*f),
            (std::vector<std::vector<int32_t>>{Bytes("one\ntwo"), Bytes("three"), Bytes("four")}));
  o.sample_by = SampleBy::kDocument;
  f = TokenFile::Open(Prepare(o)->split_base);
  EXPECT_EQ(Documents(*f),
            (std::vector<std::vector<int32_t>>{Bytes("one\ntwo\n\nthree\n\n\n\nfour")}));
}

TEST_F(PrepareTest, JsonLinesUseTheTextColumnAndRecognizeEos) {
  const std::string in = dir_.Write(
      "d.jsonl", "{\"text\": \"hi\", \"body\": \"x\"}\n\n{\"text\": \"a<|endoftext|>b\"}\n");
  auto f = TokenFile::Open(Prepare(Options({in}))->split_base);
  EXPECT_EQ(Documents(*f), (std::vector<std::vector<int32_t>>{Bytes("hi"), {'a', 256, 'b'}}));
  auto o = Options({in});
  o.text_column = "body";
  auto bad = Prepare(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(in + ":3: no 'body' key"), std::string::npos)
      << bad.error().message;
  const std::string broken = dir_.Write("e.jsonl", "{\"text\": \"ok\"}\n{not json\n");
  bad = Prepare(Options({broken}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(broken + ":2"), std::string::npos) << bad.error().message;
}

TEST_F(PrepareTest, ManyWorkersWriteTheSameFileAsOne) {
  std::string text;
  for (int i = 0; i < 60000; ++i) text += "line number " + std::to_string(i) + " with some words\n";
  const std::string a = dir_.Write("big/a.txt", text),
                    b = dir_.Write("big/b.txt", text.substr(0, 100000));
  auto o = Options({(dir_.path() / "big").string()}, (dir_.path() / "one").string());
  o.num_workers = 1;
  auto one = Prepare(o);
  ASSERT_TRUE(one.ok()) << one.error().message;
  o.output = (dir_.path() / "four").string();
  o.num_workers = 4;
  auto four = Prepare(o);
  ASSERT_TRUE(four.ok()) << four.error().message;
  const std::string tail = text.substr(0, 100000);
  EXPECT_EQ(one->documents,
            60000 + std::count(tail.begin(), tail.end(), '\n') + (tail.back() == '\n' ? 0 : 1));
  EXPECT_EQ(ReadAll(one->split_base + ".bin"), ReadAll(four->split_base + ".bin"));
  EXPECT_EQ(
      ReadAll(one->split_base + ".idx").substr(ReadAll(one->split_base + ".idx").find('\n')),
      ReadAll(four->split_base + ".idx").substr(ReadAll(four->split_base + ".idx").find('\n')));
}

TEST_F(PrepareTest, StoreNamesResolveAndMissingOnesSayHowToPrepare) {
  ScopedEnv home("STRUN_DATA_HOME", (dir_.path() / "store").string());
  const std::string in = dir_.Write("w.txt", "some text\n");
  auto o = Options({in}, "wikitext");
  o.config = "wikitext-103-v1";
  auto stats = Prepare(o);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->split_base,
            (dir_.path() / "store" / "wikitext" / "wikitext-103-v1" / "train").string());
  auto found = ResolvePreparedDataset("wikitext", std::string("wikitext-103-v1"), {"train"});
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(*found, stats->split_base);

  auto missing = ResolvePreparedDataset("wikitext", std::nullopt, {"train"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(
                "strun-train prepare --input FILE... --output wikitext --split train"),
            std::string::npos)
      << missing.error().message;
  EXPECT_NE(missing.error().message.find(
                (dir_.path() / "store" / "wikitext" / "default" / "train.idx").string()),
            std::string::npos);
  auto wrong_split =
      ResolvePreparedDataset("wikitext", std::string("wikitext-103-v1"), {"validation"});
  ASSERT_FALSE(wrong_split.ok());
  EXPECT_NE(wrong_split.error().message.find("'train'"), std::string::npos);

  // A local directory (as load_dataset("/path") would take) wins over the store.
  o.output = (dir_.path() / "local" / "cfg").string();
  ASSERT_TRUE(Prepare(o).ok());
  auto local =
      ResolvePreparedDataset((dir_.path() / "local").string(), std::string("cfg"), {"train"});
  ASSERT_TRUE(local.ok()) << local.error().message;
  EXPECT_EQ(*local, (dir_.path() / "local" / "cfg" / "train").string());
}

TEST_F(PrepareTest, BadInputsAreErrors) {
  auto none = Prepare(Options({(dir_.path() / "absent.txt").string()}));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("absent.txt"), std::string::npos);
  auto o = Options({dir_.Write("x.txt", "x")});
  o.tokenizer = "no-such-tokenizer-abc";
  auto tok = Prepare(o);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.error().message.find("no-such-tokenizer-abc"), std::string::npos);
}

TEST_F(PrepareTest, CommandLine) {
  const std::string in = dir_.Write("c.txt", "hello\nworld\n");
  const std::string out = (dir_.path() / "cmd").string();
  EXPECT_EQ(PrepareMain({"--input", in, "--output", out, "--tokenizer", tokenizer_, "--num-workers",
                         "2", "--quiet"}),
            0);
  auto f = TokenFile::Open(out + "/train");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->num_documents(), 2);
  EXPECT_EQ(PrepareMain({"--input", in, "--output", out, "--tokenizer", tokenizer_, "--split",
                         "valid", "--sample-by", "document", "--quiet"}),
            0);
  EXPECT_EQ(TokenFile::Open(out + "/valid")->num_documents(), 1);
  EXPECT_EQ(PrepareMain({"--output", out}), 2);  // --input missing
  EXPECT_EQ(PrepareMain({"--input", in, "--output", out, "--sample-by", "word"}), 2);  // bad choice
  EXPECT_EQ(PrepareMain({"--input", (dir_.path() / "nope").string(), "--output", out, "--tokenizer",
                         tokenizer_}),
            1);
}

}  // namespace
}  // namespace strun::data

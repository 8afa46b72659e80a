// Micro-batches for DP ranks: windows, shuffling determinism, DP disjointness and coverage,
// resume at consumed_train_samples, exhaustion, and data stages switching.
#include "data/sample_stream.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data/clm_windows.h"
#include "data/sampler.h"
#include "data_test_util.h"

namespace strun::data {
namespace {
using testing::ScratchDir;

// A split whose token at position p is p % 50000 (so a sample reveals where it starts), with
// documents of varied lengths.
std::string WriteSplit(const ScratchDir& dir, const std::string& name, int64_t documents,
                       int seed) {
  const std::string base = (dir.path() / name).string();
  TokenFileHeader h;
  h.tokenizer = "test";
  h.vocab_size = 50257;
  auto w = TokenFileWriter::Create(base, h);
  int64_t pos = 0;
  for (int64_t d = 0; d < documents; ++d) {
    std::vector<int32_t> doc(size_t((d * 7 + seed) % 23));
    for (auto& t : doc) t = int32_t(pos++ % 50000);
    EXPECT_TRUE(w->AppendDocument(doc).ok());
  }
  EXPECT_TRUE(w->Finish().ok());
  return base;
}

SampleStreamOptions Opts(int64_t L, int64_t mbs, int64_t rank, int64_t dp, uint64_t seed = 1,
                         int64_t consumed = 0) {
  SampleStreamOptions o;
  o.sequence_length = L;
  o.micro_batch_size = mbs;
  o.dp_rank = rank;
  o.dp_size = dp;
  o.seed = seed;
  o.num_proc = 3;
  o.consumed_train_samples = consumed;
  return o;
}

std::vector<std::vector<int32_t>> Drain(SampleStream& s) {
  std::vector<std::vector<int32_t>> out;
  while (s.micro_batches_left() > 0) {
    auto b = s.Next();
    EXPECT_TRUE(b.ok()) << b.error().message;
    out.push_back(*b);
  }
  return out;
}

TEST(SampleStream, BatchesAreShuffledWindowsOfSequenceLengthPlusOne) {
  ScratchDir dir;
  const std::string base = WriteSplit(dir, "s", 3000, 0);
  auto file = TokenFile::Open(base);
  const auto starts = ClmSampleStarts(file->document_offsets(), {16, 3});
  auto s = SampleStream::Open(base, Opts(16, 4, 0, 1));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ((*s)->num_samples(), int64_t(starts.size()));
  RankSampler sampler(int64_t(starts.size()), 1, 0, 1);
  const auto batches = Drain(**s);
  ASSERT_EQ(int64_t(batches.size()), int64_t(starts.size()) / 4);
  for (size_t b = 0; b < batches.size(); ++b) {
    ASSERT_EQ(batches[b].size(), size_t(4 * 17));
    for (int64_t row = 0; row < 4; ++row) {
      const int64_t start = starts[size_t(sampler[int64_t(b) * 4 + row])];
      for (int64_t i = 0; i < 17; ++i)
        ASSERT_EQ(batches[b][size_t(row * 17 + i)], int32_t((start + i) % 50000));
    }
  }
  auto extra = (*s)->Next();
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.error().message.find("no samples left"), std::string::npos);
}

TEST(SampleStream, SameSeedSameOrderOtherSeedOtherOrder) {
  ScratchDir dir;
  const std::string base = WriteSplit(dir, "s", 2000, 1);
  auto a = SampleStream::Open(base, Opts(8, 2, 0, 1, 42));
  auto b = SampleStream::Open(base, Opts(8, 2, 0, 1, 42));
  auto c = SampleStream::Open(base, Opts(8, 2, 0, 1, 43));
  const auto da = Drain(**a), db = Drain(**b), dc = Drain(**c);
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
  EXPECT_EQ(std::multiset<std::vector<int32_t>>(da.begin(), da.end()).size(), da.size());
}

TEST(SampleStream, DpRanksAreDisjointAndCoverTheDataset) {
  ScratchDir dir;
  const std::string base = WriteSplit(dir, "s", 2500, 2);
  auto one = SampleStream::Open(base, Opts(8, 1, 0, 1));
  const int64_t n = (*one)->num_samples();
  for (int64_t dp : {2, 3}) {
    std::multiset<std::vector<int32_t>> all;
    for (int64_t r = 0; r < dp; ++r) {
      auto s = SampleStream::Open(base, Opts(8, 1, r, dp));
      for (auto& sample : Drain(**s)) all.insert(sample);
    }
    EXPECT_EQ(int64_t(all.size()), (n / dp) * dp);
    std::set<std::vector<int32_t>> unique(all.begin(), all.end());
    EXPECT_EQ(unique.size(), all.size()) << "a sample went to two ranks";
  }
}

TEST(SampleStream, ResumesExactlyAtConsumedTrainSamples) {
  ScratchDir dir;
  const std::string base = WriteSplit(dir, "s", 3000, 3);
  const int64_t dp = 2, mbs = 3;
  for (int64_t rank = 0; rank < dp; ++rank) {
    auto full = SampleStream::Open(base, Opts(10, mbs, rank, dp));
    const auto all = Drain(**full);
    const int64_t steps_done = 5;  // each step: one micro-batch per rank
    auto resumed = SampleStream::Open(base, Opts(10, mbs, rank, dp, 1, steps_done * mbs * dp));
    const auto rest = Drain(**resumed);
    ASSERT_EQ(rest.size(), all.size() - steps_done);
    EXPECT_TRUE(std::equal(rest.begin(), rest.end(), all.begin() + steps_done));
  }
}

TEST(SampleStream, RefusesABiggerVocabularyThanTheModel) {
  ScratchDir dir;
  const std::string base = WriteSplit(dir, "s", 10, 0);
  auto o = Opts(4, 1, 0, 1);
  o.max_vocab_size = 1000;
  auto s = SampleStream::Open(base, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("vocab_size 1000"), std::string::npos) << s.error().message;
}

TEST(StagedSampleStream, SwitchesAtStartTrainingStepAndResumesPerStage) {
  ScratchDir dir;
  const std::string a = WriteSplit(dir, "a", 1500, 4), b = WriteSplit(dir, "b", 1500, 5);
  const int64_t mbs = 2, dp = 2, accumulation = 2, gbs = mbs * dp * accumulation;
  std::vector<DataStage> stages = {{"first", 1, a, 7, 3}, {"second", 4, b, 8, 3}};
  StagedStreamOptions o;
  o.sequence_length = 8;
  o.micro_batch_size = mbs;
  o.dp_rank = 1;
  o.dp_size = dp;
  auto staged = StagedSampleStream::Open(stages, o, {});
  ASSERT_TRUE(staged.ok()) << staged.error().message;
  std::map<int64_t, std::vector<std::vector<int32_t>>> by_step;
  for (int64_t step = 1; step <= 7; ++step) {
    for (int m = 0; m < accumulation; ++m) {
      auto batch = (*staged)->Next(step);
      ASSERT_TRUE(batch.ok()) << batch.error().message;
      by_step[step].push_back(*batch);
    }
  }
  EXPECT_EQ((*staged)->StageFor(3), 0u);
  EXPECT_EQ((*staged)->StageFor(4), 1u);
  // Stage one = stream of `a` with seed 7; stage two = stream of `b` with seed 8 from its start.
  auto sa = SampleStream::Open(a, Opts(8, mbs, 1, dp, 7));
  auto sb = SampleStream::Open(b, Opts(8, mbs, 1, dp, 8));
  for (int64_t step = 1; step <= 7; ++step) {
    for (int m = 0; m < accumulation; ++m)
      EXPECT_EQ(by_step[step][size_t(m)], *(step < 4 ? *sa : *sb)->Next()) << "step " << step;
  }
  // Resume after step 5: stage one done (3 steps), stage two 2 steps in.
  const auto consumed = ConsumedSamplesPerStage({1, 4}, 5, gbs);
  EXPECT_EQ(consumed, (std::vector<int64_t>{3 * gbs, 2 * gbs}));
  auto resumed = StagedSampleStream::Open(stages, o, consumed);
  ASSERT_TRUE(resumed.ok());
  for (int64_t step = 6; step <= 7; ++step) {
    for (int m = 0; m < accumulation; ++m)
      EXPECT_EQ(*(*resumed)->Next(step), by_step[step][size_t(m)]) << "step " << step;
  }
}

TEST(StagedSampleStream, ErrorsNameTheStage) {
  ScratchDir dir;
  const std::string a = WriteSplit(dir, "a", 200, 0);
  StagedStreamOptions o;
  o.sequence_length = 8;
  o.micro_batch_size = 4;
  auto bad_order = StagedSampleStream::Open({{"x", 5, a, 1, 1}, {"y", 5, a, 1, 1}}, o, {});
  ASSERT_FALSE(bad_order.ok());
  EXPECT_NE(bad_order.error().message.find("data_stages[1] ('y')"), std::string::npos);
  auto missing = StagedSampleStream::Open({{"x", 1, (dir.path() / "nope").string(), 1, 1}}, o, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("data stage 'x'"), std::string::npos);
  auto ok = StagedSampleStream::Open({{"only", 1, a, 1, 1}}, o, {});
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE((*ok)->CheckSufficient(2, 1).ok());
  Status too_many = (*ok)->CheckSufficient(100000, 1);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("data stage 'only' is too small"), std::string::npos)
      << too_many.error().message;
  EXPECT_NE(too_many.error().message.find("tokens.train_steps <="), std::string::npos);
}

}  // namespace
}  // namespace strun::data

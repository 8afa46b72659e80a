// STRUN_ELASTIC_DP (config/elastic_dp.h): strund's request to train at another dp with the same
// global batch; and the proof that such a resume trains the same samples in the same steps.
#include "config/elastic_dp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "../data/data_test_util.h"
#include "../scoped_env.h"
#include "config/load_for_training.h"
#include "data/sample_stream.h"
#include "data/token_file.h"
#include "test_configs.h"

namespace strun::train {
namespace {

Config Layout(int64_t dp, int64_t tp, int64_t accumulation, int64_t mbs = 4) {
  Config c;
  c.parallelism.dp = dp;
  c.parallelism.tp = tp;
  c.tokens = TokensArgs{};
  c.tokens->micro_batch_size = mbs;
  c.tokens->batch_accumulation_per_replica = accumulation;
  return c;
}

std::string ErrorOf(Config c, int64_t world, const std::string& value) {
  auto r = ApplyElasticDp(c, world, value);
  return r ? "<no error>" : r.error().message;
}

TEST(ElasticDp, UnsetChangesNothing) {
  Config c = Layout(2, 1, 1);
  auto r = ApplyElasticDp(c, 1, std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(c.parallelism.dp, 2);  // CheckSupported then refuses WORLD_SIZE=1, as before
}

TEST(ElasticDp, ShrinkKeepsTheGlobalBatch) {
  Config c = Layout(4, 2, 3);  // 8 processes, 12 micro-batches per step
  auto r = ApplyElasticDp(c, 4, "2");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(c.parallelism.dp, 2);
  EXPECT_EQ(c.parallelism.tp, 2);
  EXPECT_EQ(c.tokens->batch_accumulation_per_replica, 6);
  EXPECT_EQ(c.tokens->micro_batch_size, 4);
  EXPECT_EQ((**r).old_dp, 4);
  EXPECT_EQ((**r).new_accumulation, 6);
  EXPECT_EQ(DescribeElasticDp(**r, 4),
            "STRUN_ELASTIC_DP=2 (set by strund to continue on fewer nodes): parallelism.dp 4 -> "
            "2, tokens.batch_accumulation_per_replica 3 -> 6, global batch 48 samples unchanged");
}

TEST(ElasticDp, SameDpIsNoChange) {
  Config c = Layout(2, 1, 1);
  auto r = ApplyElasticDp(c, 2, "2");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(c.tokens->batch_accumulation_per_replica, 1);
}

TEST(ElasticDp, ErrorsNameTheVariableAndTheNumbers) {
  // dp 4 x acc 1 = 4 micro-batches do not split over 3 replicas.
  EXPECT_EQ(ErrorOf(Layout(4, 1, 1), 3, "3"),
            "STRUN_ELASTIC_DP=3: the global batch of parallelism.dp * "
            "tokens.batch_accumulation_per_replica = 4 * 1 = 4 micro-batches does not split over "
            "3 data-parallel replicas; the job cannot continue with the same batch at this size");
  // tp 4 does not fit 6 processes.
  EXPECT_NE(ErrorOf(Layout(2, 4, 1), 6, "1")
                .find("WORLD_SIZE=6 is not a multiple of "
                      "parallelism.tp * parallelism.pp = 4 * 1"),
            std::string::npos);
  // strund's idea of the layout differs from the job's.
  EXPECT_NE(ErrorOf(Layout(4, 1, 1), 2, "1").find("STRUN_ELASTIC_DP=1 but WORLD_SIZE=2"),
            std::string::npos);
  // strund's --micro-batches differs from the config's dp * accumulation.
  {
    Config c = Layout(2, 1, 2);
    auto r = ApplyElasticDp(c, 2, "2", "2");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message,
              "STRUN_ELASTIC_MICRO_BATCHES=2 but parallelism.dp * "
              "tokens.batch_accumulation_per_replica = 2 * 2 = 4: strund's --micro-batches must "
              "be the config's micro-batches per step");
    EXPECT_TRUE(ApplyElasticDp(c, 2, "2", "4").ok());
  }
  // Products past int64 (tests/fuzz/regressions/fuzz_elastic_dp/) are errors, not wrapped.
  {
    Config c = Layout(2, 2, 1);
    c.parallelism.pp = (int64_t{1} << 62) + 1;
    EXPECT_NE(ErrorOf(c, 2, "1").find("WORLD_SIZE=2 is not a multiple of parallelism.tp * "
                                      "parallelism.pp = 2 * 4611686018427387905"),
              std::string::npos);
    EXPECT_EQ(ErrorOf(Layout(int64_t{1} << 62, 1, 4), 1, "1"),
              "STRUN_ELASTIC_DP=1: parallelism.dp * tokens.batch_accumulation_per_replica = "
              "4611686018427387904 * 4 micro-batches per step is too large to count");
  }
  // No micro-batch per step (found by fuzz_elastic_dp): not kept as 0 per replica.
  EXPECT_NE(ErrorOf(Layout(8, 1, 0), 3, "3").find("= 8 * 0 = 0 micro-batches does not split"),
            std::string::npos);
  for (const char* bad : {"", "0", "-1", "two", "1.5"})
    EXPECT_NE(ErrorOf(Layout(2, 1, 1), 1, bad).find("expected the positive data-parallel size"),
              std::string::npos)
        << bad;
}

TEST(ElasticDp, LoadForTrainingAppliesItOnlyWhenAsked) {
  // The tutorial's file: dp 2, tp 4, batch_accumulation_per_replica 1 (8 processes).
  test::ScopedEnv rank("RANK", "1");  // no log line from this test
  {
    auto r = LoadForTraining(testing::TutorialPath(), 4);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("parallelism.dp is 2 but this job has WORLD_SIZE=4"),
              std::string::npos)
        << r.error().message;
  }
  test::ScopedEnv elastic(kElasticDpVariable, "1");
  auto r = LoadForTraining(testing::TutorialPath(), 4);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->parallelism.dp, 1);
  EXPECT_EQ(r->tokens->batch_accumulation_per_replica, 2);
  auto bad = LoadForTraining(testing::TutorialPath(), 8);  // 8 processes are dp 2, not 1
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("config_tiny_llama_wikitext.yaml: STRUN_ELASTIC_DP=1 but"),
            std::string::npos)
      << bad.error().message;
}

// A split whose token at position p is p (so a sample names where it starts).
std::string WriteSplit(const data::testing::ScratchDir& dir, const std::string& name,
                       int64_t documents) {
  const std::string base = (dir.path() / name).string();
  data::TokenFileHeader h;
  h.tokenizer = "test";
  h.vocab_size = 1 << 20;
  auto w = data::TokenFileWriter::Create(base, h);
  int32_t pos = 0;
  for (int64_t d = 0; d < documents; ++d) {
    std::vector<int32_t> doc(size_t(5 + d % 17));
    for (auto& t : doc) t = pos++;
    EXPECT_TRUE(w->AppendDocument(doc).ok());
  }
  EXPECT_TRUE(w->Finish().ok());
  return base;
}

using StepSamples = std::map<int64_t, std::vector<std::vector<int32_t>>>;  // step -> samples

// Every sample each step trains on, over all dp ranks (sorted: the order inside a step is the
// reduction's business), for steps first..last, resuming after first - 1 completed steps.
StepSamples Samples(const std::vector<data::DataStage>& stages, int64_t dp, int64_t accumulation,
                    int64_t mbs, int64_t first, int64_t last) {
  const int64_t L = 6, gbs = dp * accumulation * mbs;
  std::vector<int64_t> starts;
  for (const auto& s : stages) starts.push_back(s.start_training_step);
  const auto consumed = data::ConsumedSamplesPerStage(starts, first - 1, gbs);
  StepSamples out;
  for (int64_t rank = 0; rank < dp; ++rank) {
    data::StagedStreamOptions o;
    o.sequence_length = L;
    o.micro_batch_size = mbs;
    o.dp_rank = rank;
    o.dp_size = dp;
    auto stream = data::StagedSampleStream::Open(stages, o, consumed);
    EXPECT_TRUE(stream.ok()) << stream.error().message;
    if (!stream.ok()) return out;
    for (int64_t step = first; step <= last; ++step) {
      for (int64_t m = 0; m < accumulation; ++m) {
        auto batch = (*stream)->Next(step);
        EXPECT_TRUE(batch.ok()) << batch.error().message;
        if (!batch.ok()) return out;
        for (int64_t b = 0; b < mbs; ++b)
          out[step].emplace_back(batch->begin() + b * (L + 1), batch->begin() + (b + 1) * (L + 1));
      }
    }
  }
  for (auto& [step, samples] : out) std::sort(samples.begin(), samples.end());
  return out;
}

TEST(ElasticDp, ResumeAtAnotherDpTrainsTheSameSamplesInTheSameSteps) {
  data::testing::ScratchDir dir;
  const std::string a = WriteSplit(dir, "a", 400), b = WriteSplit(dir, "b", 400);
  // Two stages, so that the resume also crosses a stage switch (step 6).
  const std::vector<data::DataStage> stages = {{"one", 1, a, 5, 1}, {"two", 6, b, 9, 1}};
  const int64_t mbs = 2;
  const StepSamples uninterrupted = Samples(stages, 4, 1, mbs, 1, 9);  // dp 4, acc 1
  ASSERT_EQ(uninterrupted.size(), 9u);
  // Each layout of the same global batch (4 micro-batches), resumed after step 3.
  for (auto [dp, acc] : {std::pair<int64_t, int64_t>{4, 1}, {2, 2}, {1, 4}}) {
    const StepSamples resumed = Samples(stages, dp, acc, mbs, 4, 9);
    ASSERT_EQ(resumed.size(), 6u) << "dp " << dp;
    for (int64_t step = 4; step <= 9; ++step) {
      ASSERT_EQ(resumed.at(step).size(), size_t(4 * mbs)) << "dp " << dp << " step " << step;
      EXPECT_EQ(resumed.at(step), uninterrupted.at(step)) << "dp " << dp << " step " << step;
    }
  }
  // And the steps before differ from each other (the comparison can fail).
  EXPECT_NE(uninterrupted.at(4), uninterrupted.at(5));
}

}  // namespace
}  // namespace strun::train

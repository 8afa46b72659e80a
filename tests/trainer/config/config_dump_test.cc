// DumpConfig: nanotron's save_as_yaml layout, and Load(Dump(c)) == c.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "config/config.h"
#include "config/yaml_emitter.h"
#include "test_configs.h"

namespace strun::train {
namespace {

using ::testing::HasSubstr;
using testing::kMinimalConfig;
using testing::Replace;
using testing::TutorialPath;
using yaml_emitter::FormatFloat;
using yaml_emitter::QuoteString;

void ExpectRoundTrip(const Config& c) {
  std::string dumped = DumpConfig(c);
  Result<Config> again = ParseConfig(dumped, "dumped.yaml");
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << dumped;
  EXPECT_TRUE(*again == c) << dumped;
  EXPECT_EQ(DumpConfig(*again), dumped);
}

TEST(ConfigDump, TutorialRoundTrips) {
  Result<Config> r = LoadConfig(TutorialPath());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ExpectRoundTrip(*r);
}

TEST(ConfigDump, TutorialDumpReadsLikeNanotrons) {
  LoadOptions o;
  o.job_id = "99";
  Result<Config> r = LoadConfig(TutorialPath(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string d = DumpConfig(*r);
  // Sorted top-level keys; the list under data_stages is not indented (PyYAML's default).
  EXPECT_EQ(d.substr(0, d.find('\n')), "checkpoints:");
  EXPECT_THAT(
      d, HasSubstr("data_stages:\n- data:\n    dataset:\n      dataset_overwrite_cache: false\n"));
  EXPECT_THAT(d, HasSubstr("      hf_dataset_config_name: wikitext-103-v1\n"));
  EXPECT_THAT(d, HasSubstr("  name: stable training stage\n  start_training_step: 1\n"));
  EXPECT_THAT(d, HasSubstr("  rms_norm_eps: 1.0e-05\n"));
  EXPECT_THAT(d, HasSubstr("    adam_eps: 1.0e-08\n"));
  EXPECT_THAT(d, HasSubstr("    min_decay_lr: 1.0e-05\n"));
  EXPECT_THAT(d, HasSubstr("    lr_decay_steps: 1350\n"));
  EXPECT_THAT(d, HasSubstr("  tp_mode: REDUCE_SCATTER\n"));
  EXPECT_THAT(d, HasSubstr("  pp_engine: 1f1b\n"));
  EXPECT_THAT(d, HasSubstr("  dtype: bfloat16\n"));
  EXPECT_THAT(d, HasSubstr("  rope_theta: 10000.0\n"));
  EXPECT_THAT(d, HasSubstr("lighteval: null\n"));
  EXPECT_THAT(d, HasSubstr("  run: tiny_llama_"));
  EXPECT_THAT(d, HasSubstr("_99\n"));
  // strun extensions at their defaults are left out, so nanotron 5f8a52b0 can read the file.
  EXPECT_THAT(d, ::testing::Not(HasSubstr("save_final_state")));
  EXPECT_THAT(d, ::testing::Not(HasSubstr("recompute_layer")));
}

// testdata/tutorial_saved_by_nanotron.yaml is what nanotron 5f8a52b0's Config.save_as_yaml wrote
// for the tutorial's file (its own config code, run under python3 with dacite and PyYAML).
TEST(ConfigDump, TutorialDumpIsByteIdenticalToNanotronsSave) {
  LoadOptions o;
  o.job_id = "99";
  Result<Config> r = LoadConfig(TutorialPath(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Config c = *r;
  c.general.run = "tiny_llama_%date_%jobid";  // nanotron leaves it unexpanded (its bug)
  std::ifstream in(std::string(STRUN_SOURCE_DIR) +
                   "/tests/trainer/config/testdata/tutorial_saved_by_nanotron.yaml");
  std::ostringstream expected;
  expected << in.rdbuf();
  ASSERT_FALSE(expected.str().empty());
  EXPECT_EQ(DumpConfig(c), expected.str());
  // And nanotron's saved file loads back to the same config.
  Result<Config> saved = ParseConfig(expected.str(), "saved.yaml", o);
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  saved->general.run = c.general.run;
  EXPECT_TRUE(*saved == c);
}

TEST(ConfigDump, EveryOptionalFormRoundTrips) {
  std::string text = std::string(kMinimalConfig) + R"(checkpoints:
  checkpoints_path: "/scratch/my run: 1"
  checkpoint_interval: 10
  resume_checkpoint_path: null
  save_final_state: false
  load_optimizer: false
  load_lr_scheduler: false
logging:
  log_level: warning
tokens:
  sequence_length: 8
  train_steps: 20
  micro_batch_size: 1
  batch_accumulation_per_replica: 1
optimizer:
  zero_stage: 0
  weight_decay: 0.1
  clip_grad: null
  accumulate_grad_in_fp32: false
  optimizer_factory: {name: sgd}
  learning_rate_scheduler: {learning_rate: 0.5, lr_decay_starting_step: 4, lr_warmup_style: constant}
profiler:
  profiler_export_path: null
data_stages:
- name: "yes"
  start_training_step: 1
  data:
    dataset:
      hf_dataset_or_datasets: {zeta: 2, alpha: 1.5}
      hf_dataset_splits: [train, "null"]
      hf_dataset_config_name: "123"
- name: folder stage
  start_training_step: 15
  data:
    dataset:
      dataset_folder: [/a, /b]
lighteval:
  generation:
    task_b: {sampler: top_p, top_p: 0.9}
    task_a: {}
  wandb: {wandb_project: p, wandb_entity: e}
  tasks: {tasks: "x|y"}
  logging: {push_details_to_hub: true}
  parallelism: {dp: 2, pp: 1, tp: 1, recompute_layer: true}
)";
  text = Replace(text, "  project: p",
                 "  project: '%weird # project'\n  step: 12\n  consumed_train_samples: 3");
  text = Replace(text, "model_config: {}",
                 "model_config:\n    pad_token_id: 0\n    rope_scaling: {type: linear, factor: "
                 "2.0}\n    hidden_act: gelu");
  text = Replace(text, "  dp: 1", "  dp: 1\n  recompute_layer: true");
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ExpectRoundTrip(*r);
  std::string d = DumpConfig(*r);
  EXPECT_THAT(d,
              HasSubstr("      hf_dataset_or_datasets:\n        zeta: 2.0\n        alpha: 1.5\n"));
  EXPECT_THAT(d, HasSubstr("  name: 'yes'\n"));
  EXPECT_THAT(d, HasSubstr("  save_final_state: false\n"));
  EXPECT_THAT(d, HasSubstr("  recompute_layer: true\n"));
}

TEST(ConfigDump, MupAndCheckpointInitRoundTrip) {
  for (const char* init : {"use_mup: true", "path: /ckpt/5"}) {
    Result<Config> r = ParseConfig(Replace(kMinimalConfig, "std: 0.02", init), "t.yaml");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ExpectRoundTrip(*r);
  }
}

TEST(ConfigDump, FloatsAsPythonRepr) {
  EXPECT_EQ(FormatFloat(0.001), "0.001");
  EXPECT_EQ(FormatFloat(0.025), "0.025");
  EXPECT_EQ(FormatFloat(1e-5), "1.0e-05");
  EXPECT_EQ(FormatFloat(1.5e-8), "1.5e-08");
  EXPECT_EQ(FormatFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatFloat(1.0), "1.0");
  EXPECT_EQ(FormatFloat(0.0), "0.0");
  EXPECT_EQ(FormatFloat(-2.5), "-2.5");
  EXPECT_EQ(FormatFloat(10000.0), "10000.0");
  EXPECT_EQ(FormatFloat(123.456), "123.456");
  EXPECT_EQ(FormatFloat(1e16), "1.0e+16");
  EXPECT_EQ(FormatFloat(1e15), "1000000000000000.0");
  EXPECT_EQ(FormatFloat(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatFloat(std::numeric_limits<double>::infinity()), ".inf");
  EXPECT_EQ(FormatFloat(std::nan("")), ".nan");
}

TEST(ConfigDump, StringsQuotedOnlyWhenNeeded) {
  EXPECT_EQ(QuoteString("wikitext"), "wikitext");
  EXPECT_EQ(QuoteString("stable training stage"), "stable training stage");
  EXPECT_EQ(QuoteString("1f1b"), "1f1b");
  EXPECT_EQ(QuoteString("/capstor/scratch/x"), "/capstor/scratch/x");
  EXPECT_EQ(QuoteString("null"), "'null'");
  EXPECT_EQ(QuoteString("on"), "'on'");
  EXPECT_EQ(QuoteString("123"), "'123'");
  EXPECT_EQ(QuoteString("1e5"), "'1e5'");
  EXPECT_EQ(QuoteString(""), "''");
  EXPECT_EQ(QuoteString("%date"), "'%date'");
  EXPECT_EQ(QuoteString("a: b"), "'a: b'");
  EXPECT_EQ(QuoteString("it's"), "it's");
  EXPECT_EQ(QuoteString("'x'"), "'''x'''");
  EXPECT_EQ(QuoteString("two\nlines"), "\"two\\nlines\"");
}

}  // namespace
}  // namespace strun::train

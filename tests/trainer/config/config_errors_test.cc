// Invalid configs: each is rejected with a message naming the file, line and key.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "test_configs.h"

namespace strun::train {
namespace {

using ::testing::HasSubstr;
using testing::kMinimalConfig;
using testing::LineOf;
using testing::Replace;
using testing::TutorialText;

struct Variant {
  const char* name;
  const char* from;     // text of the tutorial file to replace
  const char* to;       // its replacement
  const char* message;  // expected in the error
  const char* line_of;  // the error names the line of this text in the changed file ("" to skip)
};

class InvalidTutorialVariant : public ::testing::TestWithParam<Variant> {};

TEST_P(InvalidTutorialVariant, IsRejectedWithItsKeyAndLine) {
  const Variant& v = GetParam();
  std::string text = Replace(TutorialText(), v.from, v.to);
  ASSERT_EQ(text.find("not found>>"), std::string::npos) << v.from;
  Result<Config> r = ParseConfig(text, "cfg.yaml");
  ASSERT_FALSE(r.ok()) << "accepted: " << v.name;
  EXPECT_THAT(r.error().message, HasSubstr(v.message));
  if (*v.line_of) {
    int line = LineOf(text, v.line_of);
    ASSERT_GT(line, 0);
    EXPECT_THAT(r.error().message, ::testing::StartsWith(fmt::format("cfg.yaml:{}: ", line)));
  }
}

const Variant kVariants[] = {
    {"unknown_model_key", "    hidden_size: 768", "    hiden_size: 768",
     "unknown key model.model_config.hiden_size; did you mean hidden_size?", "hiden_size"},
    {"unknown_top_level_key", "profiler: null", "profiler: null\ns3_upload: null",
     "unknown key s3_upload", "s3_upload"},
    {"unknown_stage_key", "      num_loading_workers: 1", "      num_loading_worker: 1",
     "unknown key data_stages[0].data.num_loading_worker; did you mean num_loading_workers?",
     "num_loading_worker:"},
    {"unknown_dataset_key", "        text_column_name: text", "        text_column: text",
     "unknown key data_stages[0].data.dataset.text_column", "text_column:"},
    {"unknown_adam_key", "    adam_beta1: 0.9", "    adam_beta_1: 0.9",
     "unknown key optimizer.optimizer_factory.adam_beta_1; did you mean adam_beta1?",
     "adam_beta_1"},
    {"int_as_string", "    hidden_size: 768", "    hidden_size: big",
     "model.model_config.hidden_size: expected an integer, got 'big'", "hidden_size"},
    {"int_as_float", "  sequence_length: 512", "  sequence_length: 512.5",
     "tokens.sequence_length: expected an integer, got '512.5'", "sequence_length"},
    {"quoted_int", "  train_steps: 1500", "  train_steps: \"1500\"",
     "tokens.train_steps: expected an integer, got the quoted string \"1500\"", "train_steps"},
    {"float_as_word", "    learning_rate: 0.001", "    learning_rate: fast",
     "optimizer.learning_rate_scheduler.learning_rate: expected a number, got 'fast'",
     "learning_rate:"},
    {"bool_as_word", "  tp_linear_async_communication: true",
     "  tp_linear_async_communication: maybe",
     "parallelism.tp_linear_async_communication: expected true or false, got 'maybe'",
     "tp_linear_async_communication"},
    {"section_not_mapping",
     "tokens:\n  batch_accumulation_per_replica: 1\n  limit_test_batches: 0\n  "
     "limit_val_batches: 0\n  micro_batch_size: 64\n  sequence_length: 512\n  "
     "train_steps: 1500\n  val_check_interval: -1\n",
     "tokens: 5\n", "tokens: expected a mapping (TokensArgs), got '5'", "tokens: 5"},
    {"list_where_scalar", "  project: debug", "  project: [a, b]",
     "general.project: expected a string, got a list", "project:"},
    {"bad_dtype", "  dtype: bfloat16", "  dtype: bf16", "model.dtype: dtype should be one of",
     "dtype: bf16"},
    {"bad_pp_engine", "  pp_engine: 1f1b", "  pp_engine: gpipe",
     "parallelism.pp_engine: should be one of 'afab', '1f1b', not 'gpipe'", "pp_engine"},
    {"bad_tp_mode", "  tp_mode: reduce_scatter", "  tp_mode: scatter",
     "parallelism.tp_mode: should be one of 'all_reduce', 'reduce_scatter', not 'scatter'",
     "tp_mode"},
    {"bad_decay_style", "    lr_decay_style: cosine", "    lr_decay_style: exponential",
     "lr_decay_style should be one of 'linear', 'cosine', '1-sqrt' and not exponential",
     "lr_decay_style"},
    {"bad_warmup_style", "    lr_warmup_style: linear", "    lr_warmup_style: cosine",
     "lr_warmup_style should be one of 'linear', 'constant' and not cosine", "lr_warmup_style"},
    {"bad_log_level", "  log_level: info", "  log_level: verbose",
     "logging.log_level: log_level should be one of debug, info, warning, error, critical, passive "
     "and not verbose",
     "log_level: verbose"},
    {"bad_optimizer", "    name: adamW", "    name: lion",
     "optimizer.optimizer_factory.name: Optimizer lion is not "
     "supported",
     "name: lion"},
    {"adam_missing_eps", "    adam_eps: 1.0e-08\n", "",
     "missing required key optimizer.optimizer_factory.adam_eps", "  optimizer_factory:"},
    {"missing_required_section",
     "general:\n  benchmark_csv_path: null\n  consumed_train_samples: null\n  "
     "ignore_sanity_checks: true\n  project: debug\n  run: tiny_llama_%date_%jobid\n  "
     "seed: 42\n  step: null\n",
     "", "missing required key general", ""},
    {"missing_project", "  project: debug\n", "", "missing required key general.project", ""},
    {"null_required", "  dp: 2", "  dp: null", "parallelism.dp must not be null", "dp: null"},
    {"zero_tp", "  tp: 4", "  tp: 0", "parallelism.tp: must be at least 1", "tp: 0"},
    {"no_stage_at_one", "    start_training_step: 1", "    start_training_step: 2",
     "You must have a training stage starting at 1 in the config's data_stages", "data_stages:"},
    {"negative_stage", "    start_training_step: 1", "    start_training_step: -1",
     "training_steps should be a positive integer and not -1", "start_training_step"},
    {"two_init_methods", "    std: 0.025", "    std: 0.025\n    path: /ckpt",
     "model.init_method: give exactly one of std", "  init_method:"},
    {"mup_false", "    std: 0.025", "    use_mup: false",
     "Remove `use_mup` if you don't want to use it", "use_mup"},
    {"starcoder", "    is_llama_config: true", "    is_starcoder2_config: true",
     "Starcoder2 models are not supported", "is_starcoder2_config"},
    {"profiler_long_run", "profiler: null", "profiler:\n  profiler_export_path: /tmp/prof",
     "tokens.train_steps must be below 10, not 1500", "profiler:"},
    {"zero_checkpoint_interval", "  checkpoint_interval: 1500", "  checkpoint_interval: 0",
     "checkpoints.checkpoint_interval: must be at least 1", "checkpoint_interval"},
    {"dataset_both_forms", "        text_column_name: text",
     "        text_column_name: text\n        dataset_folder: /x",
     "a dataset is either a Hugging Face dataset", ""},
    {"splits_as_mapping", "        hf_dataset_splits: train",
     "        hf_dataset_splits: {train: 1}",
     "data_stages[0].data.dataset.hf_dataset_splits: expected a name or a list of names",
     "hf_dataset_splits"},
    {"invalid_yaml", "  dp: 2", "  dp: [2", "invalid YAML", ""},
    {"tab_indented", "  seed: 42\n  step: null", "  seed: 42\n\tstep: null", "invalid YAML", ""},
};

INSTANTIATE_TEST_SUITE_P(All, InvalidTutorialVariant, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.name);
                         });

TEST(ConfigErrors, DuplicateStageNames) {
  std::string text = std::string(kMinimalConfig) + R"(data_stages:
- name: same
  start_training_step: 1
  data: {dataset: {hf_dataset_or_datasets: a}}
- name: same
  start_training_step: 5
  data: {dataset: {hf_dataset_or_datasets: a}}
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("Each stage should have a unique name; 'same' is used twice"));
}

TEST(ConfigErrors, DuplicateStageSteps) {
  std::string text = std::string(kMinimalConfig) + R"(data_stages:
- name: a
  start_training_step: 1
  data: {dataset: {hf_dataset_or_datasets: a}}
- name: b
  start_training_step: 1
  data: {dataset: {hf_dataset_or_datasets: a}}
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("stages 'a' and 'b' both start at 1"));
}

TEST(ConfigErrors, EmptyStageListHasNoFirstStage) {
  Result<Config> r = ParseConfig(std::string(kMinimalConfig) + "data_stages: []\n", "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("You must have a training stage starting at 1"));
}

TEST(ConfigErrors, DecayStepsNeedTokens) {
  std::string text = std::string(kMinimalConfig) + R"(optimizer:
  zero_stage: 0
  weight_decay: 0
  accumulate_grad_in_fp32: false
  optimizer_factory: {name: sgd}
  learning_rate_scheduler: {learning_rate: 0.1}
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("lr_decay_steps defaults to tokens.train_steps - lr_warmup_steps"));
  Result<Config> ok = ParseConfig(
      Replace(text, "{learning_rate: 0.1}", "{learning_rate: 0.1, lr_decay_steps: 9}"), "t.yaml");
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

TEST(ConfigErrors, EmptyAndNonMappingFiles) {
  Result<Config> empty = ParseConfig("", "empty.yaml");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.error().message, HasSubstr("empty.yaml: the file: expected a mapping"));
  Result<Config> list = ParseConfig("- a\n- b\n", "list.yaml");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.error().message, HasSubstr("list.yaml:1: the file: expected a mapping"));
}

TEST(ConfigErrors, UnknownKeyWithoutCloseMatchListsTheAcceptedKeys) {
  Result<Config> r =
      ParseConfig(Replace(kMinimalConfig, "  project: p", "  project: p\n  zzzzzzzz: 1"), "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("t.yaml:3: unknown key general.zzzzzzzz (GeneralArgs accepts: "));
  EXPECT_THAT(r.error().message, HasSubstr("benchmark_csv_path"));
}

TEST(ConfigErrors, WeightsMustBeNumbers) {
  std::string text = std::string(kMinimalConfig) + R"(data_stages:
- name: a
  start_training_step: 1
  data:
    dataset:
      hf_dataset_or_datasets: {x: heavy}
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(
      r.error().message,
      HasSubstr(
          "t.yaml:17: data_stages[0].data.dataset.hf_dataset_or_datasets.x: expected a number"));
}

}  // namespace
}  // namespace strun::train

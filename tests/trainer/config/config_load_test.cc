// Loading valid configs: the tutorial's file, nanotron's defaults, derived quantities.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "config/config.h"
#include "test_configs.h"

namespace strun::train {
namespace {

using testing::kMinimalConfig;
using testing::Replace;
using testing::TutorialPath;
using testing::TutorialText;

LoadOptions FixedRunOptions() {
  LoadOptions o;
  o.job_id = "4242";
  o.now = std::chrono::system_clock::from_time_t(1700000000);
  return o;
}

TEST(ConfigLoad, TutorialFileLoadsWithEveryValue) {
  Result<Config> r = LoadConfig(TutorialPath(), FixedRunOptions());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Config& c = *r;

  EXPECT_EQ(c.general.project, "debug");
  EXPECT_THAT(c.general.run, ::testing::MatchesRegex("tiny_llama_[0-9]{8}_[0-9]{6}_4242"));
  EXPECT_EQ(c.general.seed, 42);
  EXPECT_FALSE(c.general.step.has_value());
  EXPECT_FALSE(c.general.consumed_train_samples.has_value());
  EXPECT_FALSE(c.general.benchmark_csv_path.has_value());
  EXPECT_TRUE(c.general.ignore_sanity_checks);

  EXPECT_EQ(c.model.ddp_bucket_cap_mb, 25);
  EXPECT_EQ(c.model.dtype, DType::kBFloat16);
  ASSERT_TRUE(std::holds_alternative<RandomInit>(c.model.init_method));
  EXPECT_DOUBLE_EQ(std::get<RandomInit>(c.model.init_method).std, 0.025);
  EXPECT_EQ(c.model.make_vocab_size_divisible_by, 1);
  const LlamaConfig& m = c.model.model_config;
  EXPECT_EQ(m.bos_token_id, 1);
  EXPECT_EQ(m.eos_token_id, 2);
  EXPECT_EQ(m.hidden_act, "silu");
  EXPECT_EQ(m.hidden_size, 768);
  EXPECT_DOUBLE_EQ(m.initializer_range, 0.02);
  EXPECT_EQ(m.intermediate_size, 1536);
  EXPECT_TRUE(m.is_llama_config);
  EXPECT_EQ(m.max_position_embeddings, 512);
  EXPECT_EQ(m.num_attention_heads, 12);
  EXPECT_EQ(m.num_hidden_layers, 12);
  EXPECT_EQ(m.num_key_value_heads, 12);
  EXPECT_FALSE(m.pad_token_id.has_value());
  EXPECT_EQ(m.pretraining_tp, 1);
  EXPECT_DOUBLE_EQ(m.rms_norm_eps, 1e-5);
  EXPECT_FALSE(m.rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(m.rope_theta, 10000.0);  // not in the file: LlamaConfig's default
  EXPECT_TRUE(m.tie_word_embeddings);
  EXPECT_TRUE(m.use_cache);
  EXPECT_EQ(m.vocab_size, 50257);

  ASSERT_TRUE(c.optimizer.has_value());
  const OptimizerArgs& o = *c.optimizer;
  EXPECT_TRUE(o.accumulate_grad_in_fp32);
  ASSERT_TRUE(o.clip_grad.has_value());
  EXPECT_DOUBLE_EQ(*o.clip_grad, 1.0);
  EXPECT_DOUBLE_EQ(o.weight_decay, 0.01);
  EXPECT_EQ(o.zero_stage, 1);
  const LRSchedulerArgs& lr = o.learning_rate_scheduler;
  EXPECT_DOUBLE_EQ(lr.learning_rate, 0.001);
  EXPECT_FALSE(lr.lr_decay_starting_step.has_value());
  EXPECT_EQ(lr.lr_decay_steps, 1500 - 150);  // Config.__post_init__: train_steps - lr_warmup_steps
  EXPECT_EQ(lr.lr_decay_style, DecayStyle::kCosine);
  EXPECT_EQ(lr.lr_warmup_steps, 150);
  EXPECT_EQ(lr.lr_warmup_style, WarmupStyle::kLinear);
  EXPECT_DOUBLE_EQ(lr.min_decay_lr, 1e-5);
  ASSERT_TRUE(std::holds_alternative<AdamWOptimizerArgs>(o.optimizer_factory));
  const auto& adam = std::get<AdamWOptimizerArgs>(o.optimizer_factory);
  EXPECT_DOUBLE_EQ(adam.adam_beta1, 0.9);
  EXPECT_DOUBLE_EQ(adam.adam_beta2, 0.95);
  EXPECT_DOUBLE_EQ(adam.adam_eps, 1e-8);
  EXPECT_TRUE(adam.torch_adam_is_fused);

  EXPECT_EQ(c.parallelism.dp, 2);
  EXPECT_EQ(c.parallelism.expert_parallel_size, 1);
  EXPECT_EQ(c.parallelism.pp, 1);
  EXPECT_EQ(c.parallelism.pp_engine, PipelineEngine::kOneForwardOneBackward);
  EXPECT_EQ(c.parallelism.tp, 4);
  EXPECT_TRUE(c.parallelism.tp_linear_async_communication);
  EXPECT_EQ(c.parallelism.tp_mode, TensorParallelLinearMode::kReduceScatter);

  ASSERT_TRUE(c.data_stages.has_value());
  ASSERT_EQ(c.data_stages->size(), 1u);
  const DatasetStageArgs& stage = c.data_stages->front();
  EXPECT_EQ(stage.name, "stable training stage");
  EXPECT_EQ(stage.start_training_step, 1);
  EXPECT_EQ(stage.data.seed, 42);
  EXPECT_EQ(stage.data.num_loading_workers, 1);
  ASSERT_TRUE(std::holds_alternative<PretrainDatasetsArgs>(stage.data.dataset));
  const auto& ds = std::get<PretrainDatasetsArgs>(stage.data.dataset);
  EXPECT_FALSE(ds.dataset_overwrite_cache);
  EXPECT_EQ(ds.dataset_processing_num_proc_per_process, 32);
  // The tutorial gives hf_dataset_config_name twice; the later value wins, as with PyYAML.
  EXPECT_EQ(ds.hf_dataset_config_name, std::optional<std::string>("wikitext-103-v1"));
  EXPECT_EQ(ds.hf_dataset_or_datasets.form, NamesOrWeights::Form::kString);
  EXPECT_EQ(ds.hf_dataset_or_datasets.names, std::vector<std::string>{"wikitext"});
  EXPECT_EQ(ds.hf_dataset_splits.names, std::vector<std::string>{"train"});
  EXPECT_EQ(ds.text_column_name, "text");

  EXPECT_FALSE(c.lighteval.has_value());
  EXPECT_FALSE(c.profiler.has_value());
  EXPECT_EQ(c.tokenizer.tokenizer_name_or_path, std::optional<std::string>("gpt2"));
  EXPECT_FALSE(c.tokenizer.tokenizer_max_length.has_value());
  EXPECT_FALSE(c.tokenizer.tokenizer_revision.has_value());

  ASSERT_TRUE(c.tokens.has_value());
  EXPECT_EQ(c.tokens->batch_accumulation_per_replica, 1);
  EXPECT_EQ(c.tokens->limit_test_batches, 0);
  EXPECT_EQ(c.tokens->limit_val_batches, 0);
  EXPECT_EQ(c.tokens->micro_batch_size, 64);
  EXPECT_EQ(c.tokens->sequence_length, 512);
  EXPECT_EQ(c.tokens->train_steps, 1500);
  EXPECT_EQ(c.tokens->val_check_interval, -1);

  ASSERT_TRUE(c.checkpoints.has_value());
  EXPECT_EQ(c.checkpoints->checkpoint_interval, 1500);
  EXPECT_EQ(c.checkpoints->checkpoints_path, "checkpoints");
  EXPECT_FALSE(c.checkpoints->checkpoints_path_is_shared_file_system);
  EXPECT_EQ(c.checkpoints->resume_checkpoint_path, std::optional<std::string>("checkpoints"));
  EXPECT_FALSE(c.checkpoints->save_initial_state);
  EXPECT_TRUE(c.checkpoints->save_final_state);
  EXPECT_TRUE(c.checkpoints->load_optimizer);
  EXPECT_TRUE(c.checkpoints->load_lr_scheduler);

  ASSERT_TRUE(c.logging.has_value());
  EXPECT_EQ(c.logging->iteration_step_info_interval, 1);
  EXPECT_EQ(c.logging->log_level, "info");
  EXPECT_EQ(c.logging->log_level_replica, "info");

  EXPECT_TRUE(ValidateForTraining(c).ok());
}

TEST(ConfigLoad, TutorialParameterCountsMatchNanotron) {
  Result<Config> r = LoadConfig(TutorialPath());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(PaddedVocabSize(r->model, 4), 50260);
  EXPECT_EQ(PaddedVocabSize(r->model, 1), 50257);
  EXPECT_EQ(CountParameters(r->model, 4), 109'397'760);
  EXPECT_EQ(CountParameters(r->model, 1), 109'395'456);
  EXPECT_EQ(CountParameters(r->model.model_config, 4), 109'397'760);
  EXPECT_EQ(CountParameters(r->model.model_config, 1), 109'395'456);
}

TEST(ConfigLoad, DerivedBatchSizes) {
  Result<Config> r = LoadConfig(TutorialPath());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(GlobalBatchSize(*r), 64 * 1 * 2);
  EXPECT_EQ(TokensPerStep(*r), 64 * 2 * 512);
}

TEST(ConfigLoad, PaddingAndUntiedCounts) {
  EXPECT_EQ(PaddedVocabSize(50257, 8, 4), 50272);  // multiple of 32
  EXPECT_EQ(PaddedVocabSize(50272, 8, 4), 50272);  // already padded: unchanged
  EXPECT_EQ(PaddedVocabSize(7, 1, 1), 7);
  LlamaConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 64;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.num_hidden_layers = 2;
  c.vocab_size = 256;
  c.tie_word_embeddings = false;
  // Per layer: 2 norms (32) + qkv 16*(16+2*8)=512 + o 256 + gate_up 16*128=2048 + down 1024.
  const int64_t layer = 32 + 512 + 256 + 2048 + 1024;
  EXPECT_EQ(CountParameters(c, 1), 256 * 16 * 2 + 2 * layer + 16);
  c.tie_word_embeddings = true;
  EXPECT_EQ(CountParameters(c, 1), 256 * 16 + 2 * layer + 16);
}

TEST(ConfigLoad, MinimalConfigGetsNanotronDefaults) {
  Result<Config> r = ParseConfig(kMinimalConfig, "min.yaml", FixedRunOptions());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Config& c = *r;
  EXPECT_EQ(c.general.seed, 42);
  EXPECT_TRUE(c.general.ignore_sanity_checks);
  EXPECT_THAT(c.general.run, ::testing::MatchesRegex("[0-9]{8}_[0-9]{6}_4242"));  // "%date_%jobid"
  EXPECT_EQ(c.parallelism.pp_engine, PipelineEngine::kAllForwardAllBackward);
  EXPECT_EQ(c.parallelism.tp_mode, TensorParallelLinearMode::kAllReduce);
  EXPECT_FALSE(c.parallelism.tp_linear_async_communication);
  EXPECT_EQ(c.parallelism.expert_parallel_size, 1);
  EXPECT_EQ(c.model.dtype, DType::kBFloat16);
  EXPECT_EQ(c.model.make_vocab_size_divisible_by, 1);
  EXPECT_EQ(c.model.ddp_bucket_cap_mb, 25);
  EXPECT_EQ(c.model.model_config, LlamaConfig{});
  EXPECT_EQ(c.model.model_config.hidden_size, 4096);
  EXPECT_EQ(c.model.model_config.num_key_value_heads, 32);
  EXPECT_EQ(c.model.model_config.vocab_size, 32000);
  EXPECT_FALSE(c.checkpoints || c.logging || c.tokens || c.optimizer || c.data_stages ||
               c.profiler || c.lighteval);
  // A training run needs more than nanotron's loader does.
  Status s = ValidateForTraining(c, "min.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              ::testing::HasSubstr("min.yaml: the checkpoints section is missing"));
}

TEST(ConfigLoad, KeyValueHeadsDefaultToAttentionHeads) {
  std::string text =
      Replace(kMinimalConfig, "model_config: {}", "model_config:\n    num_attention_heads: 6");
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model.model_config.num_key_value_heads, 6);
}

TEST(ConfigLoad, SchedulerDefaults) {
  std::string text = std::string(kMinimalConfig) + R"(tokens:
  sequence_length: 8
  train_steps: 100
  micro_batch_size: 2
  batch_accumulation_per_replica: 3
optimizer:
  zero_stage: 0
  weight_decay: 0
  accumulate_grad_in_fp32: false
  optimizer_factory: {}
  learning_rate_scheduler:
    learning_rate: 3
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const LRSchedulerArgs& s = r->optimizer->learning_rate_scheduler;
  EXPECT_DOUBLE_EQ(s.learning_rate, 3.0);  // an integer is accepted for a float
  EXPECT_EQ(s.lr_warmup_steps, 0);
  EXPECT_EQ(s.lr_warmup_style, WarmupStyle::kLinear);  // nanotron intended; it raises here
  EXPECT_EQ(s.lr_decay_style, DecayStyle::kLinear);
  EXPECT_EQ(s.lr_decay_steps, 100);
  EXPECT_DOUBLE_EQ(s.min_decay_lr, 3.0);  // = learning_rate
  EXPECT_FALSE(r->optimizer->clip_grad.has_value());
  EXPECT_TRUE(
      std::holds_alternative<SGDOptimizerArgs>(r->optimizer->optimizer_factory));  // {} is sgd
  EXPECT_EQ(r->tokens->val_check_interval, -1);
  EXPECT_EQ(GlobalBatchSize(*r), 6);
}

TEST(ConfigLoad, ExplicitDecayStepsAreKept) {
  std::string text = Replace(TutorialText(), "lr_decay_steps: null", "lr_decay_steps: 77");
  text = Replace(text, "lr_decay_starting_step: null", "lr_decay_starting_step: 300");
  text = Replace(text, "lr_decay_style: cosine", "lr_decay_style: 1-sqrt");
  text = Replace(text, "lr_warmup_style: linear", "lr_warmup_style: constant");
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const LRSchedulerArgs& s = r->optimizer->learning_rate_scheduler;
  EXPECT_EQ(s.lr_decay_steps, 77);
  EXPECT_EQ(s.lr_decay_starting_step, std::optional<int64_t>(300));
  EXPECT_EQ(s.lr_decay_style, DecayStyle::kOneMinusSqrt);
  EXPECT_EQ(s.lr_warmup_style, WarmupStyle::kConstant);
}

TEST(ConfigLoad, RunShorterThanWarmupIsAccepted) {
  // A shortened test run of the tutorial: nanotron trains it (all steps in warm-up).
  Result<Config> r =
      ParseConfig(Replace(TutorialText(), "train_steps: 1500", "train_steps: 100"), "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->optimizer->learning_rate_scheduler.lr_decay_steps, -50);
  Result<Config> again = ParseConfig(DumpConfig(*r), "dumped.yaml");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(*again == *r);
}

TEST(ConfigLoad, SgdIgnoresAdamKeys) {
  Result<Config> r = ParseConfig(Replace(TutorialText(), "name: adamW", "name: sgd"), "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(std::holds_alternative<SGDOptimizerArgs>(r->optimizer->optimizer_factory));
}

TEST(ConfigLoad, PathsAreNormalizedAsPathlibDoes) {
  std::string text = Replace(TutorialText(), "  checkpoints_path: checkpoints",
                             "  checkpoints_path: ./out//ckpt/");
  text =
      Replace(text, "  resume_checkpoint_path: checkpoints", "  resume_checkpoint_path: /abs/./x/");
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->checkpoints->checkpoints_path, "out/ckpt");
  EXPECT_EQ(r->checkpoints->resume_checkpoint_path, std::optional<std::string>("/abs/x"));
}

TEST(ConfigLoad, DataStagesAreSortedByStartStep) {
  std::string text = std::string(kMinimalConfig) + R"(data_stages:
- name: anneal
  start_training_step: 10
  data:
    dataset:
      hf_dataset_or_datasets: [a, b]
      hf_dataset_splits: [train, validation]
    seed: null
- name: stable
  start_training_step: 1
  data:
    dataset:
      hf_dataset_or_datasets: {corpus_a: 0.7, corpus_b: 0.3}
    seed: 7
    num_loading_workers: 4
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->data_stages->size(), 2u);
  const DatasetStageArgs& first = (*r->data_stages)[0];
  const DatasetStageArgs& second = (*r->data_stages)[1];
  EXPECT_EQ(first.name, "stable");
  EXPECT_EQ(first.data.seed, 7);
  EXPECT_EQ(first.data.num_loading_workers, 4);
  const auto& weighted = std::get<PretrainDatasetsArgs>(first.data.dataset).hf_dataset_or_datasets;
  EXPECT_EQ(weighted.form, NamesOrWeights::Form::kWeights);
  EXPECT_EQ(weighted.names, (std::vector<std::string>{"corpus_a", "corpus_b"}));
  EXPECT_EQ(weighted.weights, (std::vector<double>{0.7, 0.3}));
  EXPECT_EQ(second.name, "anneal");
  EXPECT_EQ(second.data.seed, 42);  // null seed: DEFAULT_SEED
  const auto& listed = std::get<PretrainDatasetsArgs>(second.data.dataset);
  EXPECT_EQ(listed.hf_dataset_or_datasets.form, NamesOrWeights::Form::kList);
  EXPECT_EQ(listed.hf_dataset_splits.names, (std::vector<std::string>{"train", "validation"}));
}

TEST(ConfigLoad, OtherInitMethodsAndNanoset) {
  std::string text = Replace(kMinimalConfig, "std: 0.02", "path: /ckpt/10");
  text += R"(data_stages:
- name: s
  start_training_step: 1
  data:
    dataset:
      dataset_folder: /data/tokens
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(std::holds_alternative<ExistingCheckpointInit>(r->model.init_method));
  EXPECT_EQ(std::get<ExistingCheckpointInit>(r->model.init_method).path, "/ckpt/10");
  const auto& nanoset = std::get<NanosetDatasetsArgs>(r->data_stages->front().data.dataset);
  EXPECT_EQ(nanoset.dataset_folder.names, std::vector<std::string>{"/data/tokens"});

  Result<Config> mup = ParseConfig(Replace(kMinimalConfig, "std: 0.02", "use_mup: true"), "t.yaml");
  ASSERT_TRUE(mup.ok()) << mup.error().message;
  EXPECT_TRUE(std::holds_alternative<SpectralMupInit>(mup->model.init_method));
}

TEST(ConfigLoad, DTypeNames) {
  for (const char* name : {"float32", "float16", "bfloat16", "float64"}) {
    Result<Config> r = ParseConfig(
        Replace(kMinimalConfig, "model:\n", std::string("model:\n  dtype: ") + name + "\n"),
        "t.yaml");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(DTypeName(r->model.dtype), name);
  }
}

TEST(ConfigLoad, TpModeIsCaseInsensitiveAndParallelismIsNotLimitedHere) {
  std::string text = Replace(TutorialText(), "tp_mode: reduce_scatter", "tp_mode: ALL_REDUCE");
  text = Replace(text, "pp: 1", "pp: 2");
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->parallelism.tp_mode, TensorParallelLinearMode::kAllReduce);
  EXPECT_EQ(r->parallelism.pp, 2);
  EXPECT_EQ(r->parallelism.tp, 4);
  EXPECT_TRUE(ValidateForTraining(*r).ok());  // tp/pp support is the trainer's to decide
}

TEST(ConfigLoad, RunNameExpansion) {
  LoadOptions o = FixedRunOptions();
  EXPECT_EQ(ExpandRunName("plain", o), "plain");
  EXPECT_EQ(ExpandRunName("%jobid-%jobid", o), "4242-4242");
  std::string date = ExpandRunName("%date", o);
  EXPECT_THAT(date, ::testing::MatchesRegex("[0-9]{8}_[0-9]{6}"));
  setenv("SLURM_JOB_ID", "777", 1);
  EXPECT_EQ(ExpandRunName("run_%jobid"), "run_777");
  unsetenv("SLURM_JOB_ID");
  EXPECT_EQ(ExpandRunName("run_%jobid"), "run_local");
}

TEST(ConfigLoad, NullForDefaultedKeysMeansDefault) {
  std::string text = std::string(kMinimalConfig) + R"(logging:
  log_level: null
  iteration_step_info_interval: null
checkpoints:
  checkpoints_path: ck
  checkpoint_interval: 5
  save_initial_state: null
  save_final_state: false
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->logging->log_level, "info");
  EXPECT_EQ(r->logging->iteration_step_info_interval, 1);
  EXPECT_FALSE(r->checkpoints->save_initial_state);
  EXPECT_FALSE(r->checkpoints->save_final_state);
}

TEST(ConfigLoad, YamlNumberForms) {
  std::string text = Replace(
      kMinimalConfig, "model_config: {}",
      "model_config:\n    rms_norm_eps: 1e-5\n    vocab_size: 50_257\n    rope_theta: 500000");
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_DOUBLE_EQ(r->model.model_config.rms_norm_eps, 1e-5);
  EXPECT_EQ(r->model.model_config.vocab_size, 50257);
  EXPECT_DOUBLE_EQ(r->model.model_config.rope_theta, 500000.0);
}

TEST(ConfigLoad, LightEvalSection) {
  std::string text = std::string(kMinimalConfig) + R"(lighteval:
  batch_size: 16
  checkpoints_path: ck
  generation:
    sampler: greedy
    temperature: 0.5
  parallelism:
    dp: 1
    pp: 1
    tp: 1
  tasks:
    tasks: "custom|hellaswag|0|1"
  logging:
    local_output_path: /tmp/eval
    push_results_to_hub: false
  wandb:
    wandb_project: proj
)";
  Result<Config> r = ParseConfig(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const LightEvalConfig& l = *r->lighteval;
  EXPECT_EQ(l.batch_size, std::optional<int64_t>(16));
  const auto& g = std::get<GenerationArgs>(*l.generation);
  EXPECT_EQ(g.sampler, std::optional<SamplerType>(SamplerType::kGreedy));
  EXPECT_EQ(g.seed, 42);
  EXPECT_EQ(l.tasks->dataset_loading_processes, 8);
  EXPECT_EQ(l.tasks->tasks, std::optional<std::string>("custom|hellaswag|0|1"));
  EXPECT_EQ(l.logging->push_results_to_hub, std::optional<bool>(false));
  EXPECT_EQ(l.wandb->wandb_project, "proj");

  std::string per_task = Replace(text, "    sampler: greedy\n    temperature: 0.5",
                                 "    hellaswag:\n      sampler: top_k\n      top_k: 5");
  Result<Config> p = ParseConfig(per_task, "t.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto& tasks = std::get<std::map<std::string, GenerationArgs>>(*p->lighteval->generation);
  EXPECT_EQ(tasks.at("hellaswag").top_k, std::optional<int64_t>(5));
}

TEST(ConfigLoad, ValidateForTrainingChecksShapes) {
  Result<Config> r = LoadConfig(TutorialPath());
  ASSERT_TRUE(r.ok()) << r.error().message;
  Config c = *r;
  c.tokens->sequence_length = 256;
  Status s = ValidateForTraining(c, "cfg.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              ::testing::HasSubstr("tokens.sequence_length (256) does not match "
                                   "model.model_config.max_position_embeddings (512)"));
  c.model.init_method = ExistingCheckpointInit{"ck/10"};
  EXPECT_TRUE(ValidateForTraining(c).ok());  // fine-tuning may change the length

  c = *r;
  c.model.model_config.num_key_value_heads = 5;
  s = ValidateForTraining(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              ::testing::HasSubstr("num_attention_heads (12) must be a multiple of "
                                   "num_key_value_heads (5)"));
  c = *r;
  c.model.model_config.hidden_size = 770;
  EXPECT_FALSE(ValidateForTraining(c).ok());
  c = *r;
  c.tokens->micro_batch_size = 0;
  s = ValidateForTraining(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message,
              ::testing::HasSubstr("tokens.micro_batch_size must be at least 1"));
}

TEST(ConfigLoad, MissingFileIsAnError) {
  Result<Config> r = LoadConfig("/nonexistent/cfg.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, ::testing::HasSubstr("/nonexistent/cfg.yaml: cannot open"));
}

}  // namespace
}  // namespace strun::train

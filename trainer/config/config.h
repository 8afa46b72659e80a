// config/config.h: nanotron's YAML training configuration, read and written natively.
//
// strun-train reads the same YAML files as nanotron at commit 5f8a52b0 (the commit of the CSCS
// pre-training tutorial). Each struct below is named after the nanotron dataclass it mirrors and
// each member after its YAML key, with nanotron's defaults. ParseConfig applies what nanotron's
// loader (dacite, strict) and the dataclasses' __post_init__ do:
//   * unknown keys are errors naming the full key path ("cfg.yaml:12: unknown key
//     model.model_config.hiden_size; did you mean hidden_size?"); wrong types name the key and
//     line;
//   * defaults are filled in (num_key_value_heads = num_attention_heads, min_decay_lr =
//     learning_rate, lr_decay_steps = train_steps - lr_warmup_steps, seeds = 42, ...);
//   * validation: log levels, dtype names (float32, bfloat16, ...), pp_engine (1f1b, afab), tp_mode
//     (all_reduce, reduce_scatter, any case), warm-up (linear, constant) and decay (linear, cosine,
//     1-sqrt) styles, data stages (unique names and steps, one starting at step 1; sorted by
//     start_training_step as nanotron does), profiler runs shorter than 10 steps.
//
// Where nanotron has a bug, strun does what nanotron intended (see README in this folder):
//   * %date and %jobid in general.run are expanded (nanotron computes and discards the result);
//   * lr_warmup_style defaults to "linear" when absent (nanotron raises instead);
//   * a null value for a key that has a non-null default means that default.
// And it is lenient where leniency is harmless: numbers written as integers are accepted for float
// keys, and "1e-5" is a float (PyYAML reads it as a string).
//
// strun extensions, not in nanotron 5f8a52b0 (they come from later nanotron versions, with those
// versions' defaults): checkpoints.save_final_state, load_lr_scheduler, load_optimizer and
// parallelism.recompute_layer. DumpConfig writes them only when they differ from their defaults,
// so a dumped config stays loadable by nanotron 5f8a52b0.
//
// Checks that concern a training run rather than the file (missing sections, sequence_length vs
// max_position_embeddings, head counts) are in ValidateForTraining, which the trainer calls. Which
// parallelism (tp/pp > 1) and which features it supports is the trainer's to say, not the config's.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "strun/result.h"

namespace strun::train {

// ---------------------------------------------------------------------------------------------
// Enumerations nanotron spells as strings in YAML.

// model.dtype: the names of nanotron's utils_config.str_to_dtype.
enum class DType {
  kFloat32,
  kFloat64,
  kComplex64,
  kComplex128,
  kFloat16,
  kBFloat16,
  kUInt8,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kBool
};
std::string_view DTypeName(DType dtype);                    // "bfloat16"
std::optional<DType> DTypeFromName(std::string_view name);  // exact names only

// parallelism.pp_engine: "afab" (AllForwardAllBackward, nanotron's default) or "1f1b".
enum class PipelineEngine { kAllForwardAllBackward, kOneForwardOneBackward };
// parallelism.tp_mode: "all_reduce" (default) or "reduce_scatter" (sequence parallel); any case.
enum class TensorParallelLinearMode { kAllReduce, kReduceScatter };
// learning_rate_scheduler.lr_warmup_style: "linear" or "constant".
enum class WarmupStyle { kLinear, kConstant };
// learning_rate_scheduler.lr_decay_style: "linear", "cosine" or "1-sqrt".
enum class DecayStyle { kLinear, kCosine, kOneMinusSqrt };
// lighteval generation sampler: top_p, top_k, greedy, basic (any case).
enum class SamplerType { kTopP, kTopK, kGreedy, kBasic };

// A value nanotron accepts as one string, a list of strings or a {string: weight} mapping
// (hf_dataset_or_datasets, hf_dataset_splits, dataset_folder). The form is kept so that DumpConfig
// writes what was read.
struct NamesOrWeights {
  enum class Form { kString, kList, kWeights };
  Form form = Form::kString;
  std::vector<std::string> names;  // one for kString; in file order otherwise
  std::vector<double> weights;     // kWeights only: one per name
  bool operator==(const NamesOrWeights&) const = default;
};

// ---------------------------------------------------------------------------------------------
// general

struct GeneralArgs {
  std::string project;               // required
  std::string run = "%date_%jobid";  // expanded on load (ExpandRunName)
  int64_t seed = 42;
  std::optional<int64_t> step;                    // written into checkpoints' config.yaml
  std::optional<int64_t> consumed_train_samples;  // idem
  std::optional<std::string> benchmark_csv_path;
  bool ignore_sanity_checks = true;
  bool operator==(const GeneralArgs&) const = default;
};

// ---------------------------------------------------------------------------------------------
// model

// init_method: exactly one of these, told apart by its key (std / use_mup / path).
struct RandomInit {
  double std = 0;  // required
  bool operator==(const RandomInit&) const = default;
};
struct SpectralMupInit {
  bool use_mup = true;  // must be true (nanotron asserts it)
  bool operator==(const SpectralMupInit&) const = default;
};
struct ExistingCheckpointInit {
  std::string path;  // required: a nanotron checkpoint directory
  bool operator==(const ExistingCheckpointInit&) const = default;
};
using InitMethod = std::variant<RandomInit, SpectralMupInit, ExistingCheckpointInit>;

// model.model_config. Only Llama is supported (nanotron's Starcoder2Config is rejected by name).
struct LlamaConfig {
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::string hidden_act = "silu";
  int64_t hidden_size = 4096;
  double initializer_range = 0.02;
  int64_t intermediate_size = 11008;
  bool is_llama_config = true;
  int64_t max_position_embeddings = 2048;
  int64_t num_attention_heads = 32;
  int64_t num_hidden_layers = 32;
  int64_t num_key_value_heads = 32;  // default: num_attention_heads
  std::optional<int64_t> pad_token_id;
  int64_t pretraining_tp = 1;
  double rms_norm_eps = 1e-6;
  // Unused by nanotron's Llama; kept so configs round-trip. Scalar values as written.
  std::optional<std::map<std::string, std::string>> rope_scaling;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool use_cache = true;
  int64_t vocab_size = 32000;  // as written; see PaddedVocabSize
  bool operator==(const LlamaConfig&) const = default;
};

struct ModelArgs {
  LlamaConfig model_config;  // required
  InitMethod init_method;    // required
  DType dtype = DType::kBFloat16;
  int64_t make_vocab_size_divisible_by = 1;
  int64_t ddp_bucket_cap_mb = 25;
  bool operator==(const ModelArgs&) const = default;
};

// ---------------------------------------------------------------------------------------------
// tokenizer, tokens

struct TokenizerArgs {
  std::optional<std::string> tokenizer_name_or_path;
  std::optional<std::string> tokenizer_revision;
  std::optional<int64_t> tokenizer_max_length;
  bool operator==(const TokenizerArgs&) const = default;
};

struct TokensArgs {
  int64_t sequence_length = 0;                 // required
  int64_t train_steps = 0;                     // required
  int64_t micro_batch_size = 0;                // required
  int64_t batch_accumulation_per_replica = 0;  // required
  int64_t val_check_interval = -1;
  int64_t limit_val_batches = 0;
  int64_t limit_test_batches = 0;
  bool operator==(const TokensArgs&) const = default;
};

// ---------------------------------------------------------------------------------------------
// optimizer

struct LRSchedulerArgs {
  double learning_rate = 0;  // required
  int64_t lr_warmup_steps = 0;
  WarmupStyle lr_warmup_style = WarmupStyle::kLinear;
  DecayStyle lr_decay_style = DecayStyle::kLinear;
  // Resolved on load as nanotron's Config.__post_init__ does: train_steps - lr_warmup_steps when
  // absent (regardless of lr_decay_starting_step). Negative when train_steps < lr_warmup_steps
  // (nanotron accepts that: the run then ends inside the warm-up).
  int64_t lr_decay_steps = 0;
  // Absent: decay starts after warm-up (nanotron's lr_scheduler_builder).
  std::optional<int64_t> lr_decay_starting_step;
  double min_decay_lr = 0;  // default: learning_rate
  bool operator==(const LRSchedulerArgs&) const = default;
};

// optimizer_factory: chosen by its `name` key ("sgd" or "adamW"; "adamW" when absent and Adam keys
// are present, "sgd" when the mapping is empty, as nanotron's union resolution yields). With
// name: sgd, Adam keys are ignored (nanotron builds SGD then too).
struct SGDOptimizerArgs {
  bool operator==(const SGDOptimizerArgs&) const = default;
};
struct AdamWOptimizerArgs {
  double adam_eps = 0;               // required
  double adam_beta1 = 0;             // required
  double adam_beta2 = 0;             // required
  bool torch_adam_is_fused = false;  // required
  bool operator==(const AdamWOptimizerArgs&) const = default;
};
using OptimizerFactory = std::variant<SGDOptimizerArgs, AdamWOptimizerArgs>;

struct OptimizerArgs {
  OptimizerFactory optimizer_factory;       // required
  int64_t zero_stage = 0;                   // required; nanotron: > 0 means ZeRO-1
  double weight_decay = 0;                  // required
  std::optional<double> clip_grad;          // absent/null: no clipping
  bool accumulate_grad_in_fp32 = false;     // required
  LRSchedulerArgs learning_rate_scheduler;  // required
  bool operator==(const OptimizerArgs&) const = default;
};

// ---------------------------------------------------------------------------------------------
// parallelism

struct ParallelismArgs {
  int64_t dp = 1;  // required
  int64_t pp = 1;  // required
  int64_t tp = 1;  // required
  PipelineEngine pp_engine = PipelineEngine::kAllForwardAllBackward;
  TensorParallelLinearMode tp_mode = TensorParallelLinearMode::kAllReduce;
  bool tp_linear_async_communication = false;
  int64_t expert_parallel_size = 1;
  bool recompute_layer = false;  // strun extension (later nanotron)
  bool operator==(const ParallelismArgs&) const = default;
};

// ---------------------------------------------------------------------------------------------
// data_stages

// data.dataset in the Hugging Face form (nanotron's PretrainDatasetsArgs).
struct PretrainDatasetsArgs {
  NamesOrWeights hf_dataset_or_datasets;  // required: name, list, or {name: weight}
  NamesOrWeights hf_dataset_splits{NamesOrWeights::Form::kString, {"train"}, {}};  // str or list
  std::optional<std::string> hf_dataset_config_name;
  int64_t dataset_processing_num_proc_per_process = 1;
  bool dataset_overwrite_cache = false;
  std::string text_column_name = "text";
  bool operator==(const PretrainDatasetsArgs&) const = default;
};

// data.dataset in the pre-tokenized form (nanotron's NanosetDatasetsArgs): dataset_folder is one
// folder, a list (weights absent: consume all samples) or {folder: weight}.
struct NanosetDatasetsArgs {
  NamesOrWeights dataset_folder;  // required
  bool operator==(const NanosetDatasetsArgs&) const = default;
};

struct DataArgs {
  std::variant<PretrainDatasetsArgs, NanosetDatasetsArgs> dataset;  // required
  int64_t seed = 42;
  int64_t num_loading_workers = 1;
  bool operator==(const DataArgs&) const = default;
};

struct DatasetStageArgs {
  std::string name;                 // required, unique
  int64_t start_training_step = 1;  // required, unique, >= 0; one stage starts at 1
  DataArgs data;                    // required
  bool operator==(const DatasetStageArgs&) const = default;
};

// ---------------------------------------------------------------------------------------------
// checkpoints, logging, profiler

struct CheckpointsArgs {
  std::string checkpoints_path;     // required
  int64_t checkpoint_interval = 0;  // required
  bool save_initial_state = false;
  std::optional<std::string> resume_checkpoint_path;
  bool checkpoints_path_is_shared_file_system = false;
  bool save_final_state = true;   // strun extension (later nanotron)
  bool load_lr_scheduler = true;  // strun extension (later nanotron)
  bool load_optimizer = true;     // strun extension (later nanotron)
  bool operator==(const CheckpointsArgs&) const = default;
};

// Log levels: debug, info, warning, error, critical, passive.
struct LoggingArgs {
  std::string log_level = "info";
  std::string log_level_replica = "info";
  int64_t iteration_step_info_interval = 1;
  bool operator==(const LoggingArgs&) const = default;
};

struct ProfilerArgs {
  std::optional<std::string> profiler_export_path;
  bool operator==(const ProfilerArgs&) const = default;
};

// ---------------------------------------------------------------------------------------------
// lighteval (read, validated and written back; strun-train does not run evaluations)

struct GenerationArgs {
  std::optional<SamplerType> sampler;
  std::optional<double> temperature;
  std::optional<int64_t> top_k;
  std::optional<double> top_p;
  std::optional<int64_t> n_samples;
  std::optional<std::string> eos;
  int64_t seed = 42;
  bool use_cache = false;
  bool operator==(const GenerationArgs&) const = default;
};

struct LightEvalLoggingArgs {
  std::optional<std::string> local_output_path;
  std::optional<bool> push_results_to_hub;
  std::optional<bool> push_details_to_hub;
  std::optional<bool> push_results_to_tensorboard;
  std::optional<std::string> hub_repo_results;
  std::optional<std::string> hub_repo_details;
  std::optional<std::string> hub_repo_tensorboard;
  std::optional<std::string> tensorboard_metric_prefix;
  bool operator==(const LightEvalLoggingArgs&) const = default;
};

struct LightEvalTasksArgs {
  std::optional<std::string> tasks;
  std::optional<std::string> custom_tasks;
  std::optional<int64_t> max_samples;
  std::optional<int64_t> num_fewshot_seeds;
  int64_t dataset_loading_processes = 8;
  std::optional<bool> multichoice_continuations_start_space;
  std::optional<bool> no_multichoice_continuations_start_space;
  bool operator==(const LightEvalTasksArgs&) const = default;
};

struct LightEvalWandbLoggerConfig {
  std::string wandb_project;  // must not be empty
  std::optional<std::string> wandb_entity;
  std::optional<std::string> wandb_run_name;
  bool operator==(const LightEvalWandbLoggerConfig&) const = default;
};

struct LightEvalConfig {
  std::optional<std::string> slurm_template;
  std::optional<std::string> slurm_script_dir;
  std::optional<std::string> checkpoints_path;
  std::optional<ParallelismArgs> parallelism;
  std::optional<int64_t> batch_size;
  // One GenerationArgs, or one per task name.
  std::optional<std::variant<GenerationArgs, std::map<std::string, GenerationArgs>>> generation;
  std::optional<LightEvalTasksArgs> tasks;
  std::optional<LightEvalLoggingArgs> logging;
  std::optional<LightEvalWandbLoggerConfig> wandb;
  bool operator==(const LightEvalConfig&) const = default;
};

// ---------------------------------------------------------------------------------------------
// The whole file. Sections nanotron makes optional are std::optional here too; a training run
// needs checkpoints, logging, tokens, optimizer and data_stages (ValidateForTraining says so).

struct Config {
  GeneralArgs general;          // required
  ParallelismArgs parallelism;  // required
  ModelArgs model;              // required
  TokenizerArgs tokenizer;      // required
  std::optional<CheckpointsArgs> checkpoints;
  std::optional<LoggingArgs> logging;
  std::optional<TokensArgs> tokens;
  std::optional<OptimizerArgs> optimizer;
  std::optional<std::vector<DatasetStageArgs>> data_stages;  // sorted by start_training_step
  std::optional<ProfilerArgs> profiler;
  std::optional<LightEvalConfig> lighteval;
  bool operator==(const Config&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Reading and writing.

struct LoadOptions {
  // The time %date stands for (local time, formatted %Y%m%d_%H%M%S as nanotron does); unset: now.
  // Ranks of one job that parse the file separately should pass the same value.
  std::optional<std::chrono::system_clock::time_point> now;
  // The value of %jobid; unset: $SLURM_JOB_ID, or "local" where that is unset (as nanotron).
  std::optional<std::string> job_id;
};

// Reads and validates the YAML file at `path`. Errors name the file, line and key path.
Result<Config> LoadConfig(const std::string& path, const LoadOptions& options = {});

// Same, from text; `source_name` prefixes error messages (usually the file name).
Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source_name,
                           const LoadOptions& options = {});

// YAML text of `config` in nanotron's save_as_yaml layout (keys sorted, resolved values, null for
// absent ones). ParseConfig(DumpConfig(c)) == c for every loaded config.
std::string DumpConfig(const Config& config);

// `run` with %date and %jobid replaced (see LoadOptions).
std::string ExpandRunName(const std::string& run, const LoadOptions& options = {});

// Checks a training run needs beyond the file's own validity, in nanotron's words where it has
// them: the checkpoints, logging, tokens, optimizer and data_stages sections are present; tokens'
// sizes are positive; sequence_length == max_position_embeddings unless initialising from a
// checkpoint; heads divide hidden_size and key/value heads divide heads; rates, epsilons and scales
// are finite; products of sizes (embedding, layers, logits, batches, tokens trained) stay below
// 2^60 elements. tp/pp > 1 are not checked here (the trainer says what it supports).
// `source_name` prefixes messages, which name the keys.
Status ValidateForTraining(const Config& config, const std::string& source_name = "config");

// ---------------------------------------------------------------------------------------------
// Derived quantities.

// nanotron's _vocab_size_with_padding: vocab_size rounded up to a multiple of
// make_vocab_size_divisible_by * tp. The tutorial's 50257 becomes 50260 at tp=4.
int64_t PaddedVocabSize(int64_t vocab_size, int64_t make_vocab_size_divisible_by, int64_t tp);
int64_t PaddedVocabSize(const ModelArgs& model, int64_t tp);

// Number of trainable parameters of nanotron's Llama with the vocabulary padded as above (tied
// embeddings counted once; no biases). The tutorial model: 109,397,760 at tp=4, 109,395,456 at
// tp=1.
int64_t CountParameters(const LlamaConfig& config, int64_t tp,
                        int64_t make_vocab_size_divisible_by = 1);
int64_t CountParameters(const ModelArgs& model, int64_t tp);

// micro_batch_size * batch_accumulation_per_replica * dp (samples per optimizer step), and that
// times sequence_length. Both need the tokens section (0 without it).
int64_t GlobalBatchSize(const Config& config);
int64_t TokensPerStep(const Config& config);

}  // namespace strun::train

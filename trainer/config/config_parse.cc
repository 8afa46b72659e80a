// Reading nanotron's YAML config into Config: one function per dataclass, each declaring the keys
// it accepts (Fields::Expect) and applying that dataclass's defaults and __post_init__ checks.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "config/yaml_fields.h"

namespace strun::train {
namespace {

using yaml_fields::ConfigError;
using yaml_fields::Fields;
using yaml_fields::IsAbsent;
using yaml_fields::Where;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// nanotron stores these keys as pathlib.Path, whose text drops "." parts, repeated and trailing
// slashes ("./ckpt//" is "ckpt"); strun keeps the same text so dumped configs match nanotron's.
std::string NormalizePath(const std::string& path) {
  std::string out = !path.empty() && path[0] == '/' ? "/" : "";
  size_t start = 0;
  bool any = false;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (!part.empty() && part != ".") {
      if (any) out += "/";
      out += part;
      any = true;
    }
    start = end + 1;
  }
  return out.empty() ? "." : out;
}

void PathKey(Fields& f, const std::string& key, std::optional<std::string>* out) {
  f.OptString(key, out);
  if (*out) **out = NormalizePath(**out);
}

// A sub-mapping of `f` at `key`, for a required section.
Fields Section(Fields& f, const std::string& key, const std::string& what) {
  YAML::Node node = f.Get(key);
  if (IsAbsent(node)) f.FailMissing(key);
  return Fields(node, f.ChildWhere(key), what);
}

// One name, a list of names, or (when `weights_allowed`) a {name: weight} mapping.
NamesOrWeights ParseNamesOrWeights(Fields& f, const std::string& key, bool weights_allowed) {
  YAML::Node node = f.Get(key);
  const Where& w = f.where();
  NamesOrWeights out;
  if (node.IsScalar()) {
    out.form = NamesOrWeights::Form::kString;
    out.names = {yaml_fields::ToString(node, w, key)};
  } else if (node.IsSequence()) {
    out.form = NamesOrWeights::Form::kList;
    for (size_t i = 0; i < node.size(); ++i) {
      out.names.push_back(yaml_fields::ToString(node[i], w, fmt::format("{}[{}]", key, i)));
    }
  } else if (node.IsMap() && weights_allowed) {
    out.form = NamesOrWeights::Form::kWeights;
    Fields weights(node, f.ChildWhere(key), "a {name: weight} mapping");
    for (const std::string& name : weights.Keys()) {
      out.names.push_back(name);
      out.weights.push_back(yaml_fields::ToFloat(weights.Get(name), weights.where(), name));
    }
  } else {
    f.FailValue(key, weights_allowed
                         ? "expected a name, a list of names or a {name: weight} mapping"
                         : "expected a name or a list of names");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

GeneralArgs ParseGeneral(Fields f, const LoadOptions& options) {
  f.Expect({"project", "run", "seed", "step", "consumed_train_samples", "benchmark_csv_path",
            "ignore_sanity_checks"});
  GeneralArgs g;
  g.project = f.RequiredString("project");
  f.String("run", &g.run);
  g.run = ExpandRunName(g.run, options);
  f.Int("seed", &g.seed);
  f.OptInt("step", &g.step);
  f.OptInt("consumed_train_samples", &g.consumed_train_samples);
  PathKey(f, "benchmark_csv_path", &g.benchmark_csv_path);
  f.Bool("ignore_sanity_checks", &g.ignore_sanity_checks);
  return g;
}

ParallelismArgs ParseParallelism(Fields f) {
  f.Expect({"dp", "pp", "tp", "pp_engine", "tp_mode", "tp_linear_async_communication",
            "expert_parallel_size", "recompute_layer"});
  ParallelismArgs p;
  p.dp = f.RequiredInt("dp");
  p.pp = f.RequiredInt("pp");
  p.tp = f.RequiredInt("tp");
  for (const char* key : {"dp", "pp", "tp"}) {
    if ((key == std::string("dp") ? p.dp : key == std::string("pp") ? p.pp : p.tp) < 1) {
      f.FailValue(key, "must be at least 1");
    }
  }
  std::optional<std::string> engine;
  f.OptString("pp_engine", &engine);
  if (engine) {
    if (*engine == "afab") {
      p.pp_engine = PipelineEngine::kAllForwardAllBackward;
    } else if (*engine == "1f1b") {
      p.pp_engine = PipelineEngine::kOneForwardOneBackward;
    } else {
      f.FailValue("pp_engine", fmt::format("should be one of 'afab', '1f1b', not '{}'", *engine));
    }
  }
  std::optional<std::string> mode;
  f.OptString("tp_mode", &mode);
  if (mode) {
    if (Upper(*mode) == "ALL_REDUCE") {
      p.tp_mode = TensorParallelLinearMode::kAllReduce;
    } else if (Upper(*mode) == "REDUCE_SCATTER") {
      p.tp_mode = TensorParallelLinearMode::kReduceScatter;
    } else {
      f.FailValue("tp_mode",
                  fmt::format("should be one of 'all_reduce', 'reduce_scatter', not '{}'", *mode));
    }
  }
  f.Bool("tp_linear_async_communication", &p.tp_linear_async_communication);
  f.Int("expert_parallel_size", &p.expert_parallel_size);
  if (p.expert_parallel_size < 1) f.FailValue("expert_parallel_size", "must be at least 1");
  f.Bool("recompute_layer", &p.recompute_layer);
  return p;
}

LlamaConfig ParseLlama(Fields f) {
  std::vector<std::string> keys = f.Keys();
  if (std::find(keys.begin(), keys.end(), "is_starcoder2_config") != keys.end()) {
    f.FailValue("is_starcoder2_config",
                "Starcoder2 models are not supported by strun-train; only Llama (LlamaConfig) is");
  }
  f.Expect({"bos_token_id", "eos_token_id", "hidden_act", "hidden_size", "initializer_range",
            "intermediate_size", "is_llama_config", "max_position_embeddings",
            "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "pad_token_id",
            "pretraining_tp", "rms_norm_eps", "rope_scaling", "rope_theta", "tie_word_embeddings",
            "use_cache", "vocab_size"});
  LlamaConfig c;
  f.Int("bos_token_id", &c.bos_token_id);
  f.Int("eos_token_id", &c.eos_token_id);
  f.String("hidden_act", &c.hidden_act);
  f.Int("hidden_size", &c.hidden_size);
  f.Float("initializer_range", &c.initializer_range);
  f.Int("intermediate_size", &c.intermediate_size);
  f.Bool("is_llama_config", &c.is_llama_config);
  f.Int("max_position_embeddings", &c.max_position_embeddings);
  f.Int("num_attention_heads", &c.num_attention_heads);
  f.Int("num_hidden_layers", &c.num_hidden_layers);
  std::optional<int64_t> kv_heads;
  f.OptInt("num_key_value_heads", &kv_heads);
  c.num_key_value_heads =
      kv_heads.value_or(c.num_attention_heads);  // nanotron's back-compat default
  f.OptInt("pad_token_id", &c.pad_token_id);
  f.Int("pretraining_tp", &c.pretraining_tp);
  f.Float("rms_norm_eps", &c.rms_norm_eps);
  if (f.HasValue("rope_scaling")) {
    YAML::Node node = f.Get("rope_scaling");
    if (!node.IsMap()) f.FailValue("rope_scaling", "expected a mapping or null");
    Fields scaling(node, f.ChildWhere("rope_scaling"), "rope_scaling");
    std::map<std::string, std::string> values;
    for (const std::string& key : scaling.Keys()) {
      values[key] = yaml_fields::ToString(scaling.Get(key), scaling.where(), key);
    }
    // nanotron serializes an empty mapping as null.
    if (!values.empty()) c.rope_scaling = std::move(values);
  }
  f.Float("rope_theta", &c.rope_theta);
  f.Bool("tie_word_embeddings", &c.tie_word_embeddings);
  f.Bool("use_cache", &c.use_cache);
  f.Int("vocab_size", &c.vocab_size);
  for (const char* key :
       {"hidden_size", "intermediate_size", "max_position_embeddings", "num_attention_heads",
        "num_hidden_layers", "num_key_value_heads", "vocab_size"}) {
    const std::string k = key;
    int64_t v = k == "hidden_size"               ? c.hidden_size
                : k == "intermediate_size"       ? c.intermediate_size
                : k == "max_position_embeddings" ? c.max_position_embeddings
                : k == "num_attention_heads"     ? c.num_attention_heads
                : k == "num_hidden_layers"       ? c.num_hidden_layers
                : k == "num_key_value_heads"     ? c.num_key_value_heads
                                                 : c.vocab_size;
    if (v < 1) f.FailValue(key, "must be at least 1");
  }
  return c;
}

InitMethod ParseInitMethod(Fields f) {
  f.Expect({"std", "use_mup", "path"});
  int given = f.Has("std") + f.Has("use_mup") + f.Has("path");
  if (given > 1) {
    f.FailHere(
        fmt::format("{}: give exactly one of std (random init), use_mup (spectral muP) or path "
                    "(existing checkpoint)",
                    f.where().path));
  }
  if (f.Has("path")) return ExistingCheckpointInit{NormalizePath(f.RequiredString("path"))};
  if (f.Has("use_mup")) {
    if (!f.RequiredBool("use_mup"))
      f.FailValue("use_mup", "Remove `use_mup` if you don't want to use it");
    return SpectralMupInit{true};
  }
  if (!f.Has("std")) {
    f.FailHere(
        fmt::format("{}: give one of std (random init), use_mup (spectral muP) or path (existing "
                    "checkpoint)",
                    f.where().path));
  }
  return RandomInit{f.RequiredFloat("std")};
}

ModelArgs ParseModel(Fields f) {
  f.Expect({"model_config", "init_method", "dtype", "make_vocab_size_divisible_by",
            "ddp_bucket_cap_mb"});
  ModelArgs m;
  m.model_config = ParseLlama(Section(f, "model_config", "LlamaConfig"));
  m.init_method = ParseInitMethod(Section(f, "init_method", "init_method"));
  std::optional<std::string> dtype;
  f.OptString("dtype", &dtype);
  if (dtype) {
    std::optional<DType> parsed = DTypeFromName(*dtype);
    if (!parsed) {
      f.FailValue(
          "dtype",
          fmt::format("dtype should be one of float32, float64, complex64, complex128, float16, "
                      "bfloat16, uint8, int8, int16, int32, int64, bool and not {}",
                      *dtype));
    }
    m.dtype = *parsed;
  }
  f.Int("make_vocab_size_divisible_by", &m.make_vocab_size_divisible_by);
  if (m.make_vocab_size_divisible_by < 1)
    f.FailValue("make_vocab_size_divisible_by", "must be at least 1");
  f.Int("ddp_bucket_cap_mb", &m.ddp_bucket_cap_mb);
  return m;
}

TokenizerArgs ParseTokenizer(Fields f) {
  f.Expect({"tokenizer_name_or_path", "tokenizer_revision", "tokenizer_max_length"});
  TokenizerArgs t;
  f.OptString("tokenizer_name_or_path", &t.tokenizer_name_or_path);
  f.OptString("tokenizer_revision", &t.tokenizer_revision);
  f.OptInt("tokenizer_max_length", &t.tokenizer_max_length);
  return t;
}

TokensArgs ParseTokens(Fields f) {
  f.Expect({"sequence_length", "train_steps", "micro_batch_size", "batch_accumulation_per_replica",
            "val_check_interval", "limit_val_batches", "limit_test_batches"});
  TokensArgs t;
  t.sequence_length = f.RequiredInt("sequence_length");
  t.train_steps = f.RequiredInt("train_steps");
  t.micro_batch_size = f.RequiredInt("micro_batch_size");
  t.batch_accumulation_per_replica = f.RequiredInt("batch_accumulation_per_replica");
  f.Int("val_check_interval", &t.val_check_interval);
  f.Int("limit_val_batches", &t.limit_val_batches);
  f.Int("limit_test_batches", &t.limit_test_batches);
  return t;
}

// The lr_decay_steps default needs tokens.train_steps: the caller fills it (has_decay_steps false).
LRSchedulerArgs ParseLRScheduler(Fields f, bool* has_decay_steps) {
  f.Expect({"learning_rate", "lr_warmup_steps", "lr_warmup_style", "lr_decay_style",
            "lr_decay_steps", "lr_decay_starting_step", "min_decay_lr"});
  LRSchedulerArgs s;
  s.learning_rate = f.RequiredFloat("learning_rate");
  f.Int("lr_warmup_steps", &s.lr_warmup_steps);
  if (s.lr_warmup_steps < 0) f.FailValue("lr_warmup_steps", "must not be negative");
  std::optional<std::string> warmup;
  f.OptString("lr_warmup_style", &warmup);
  if (warmup) {
    if (*warmup == "linear") {
      s.lr_warmup_style = WarmupStyle::kLinear;
    } else if (*warmup == "constant") {
      s.lr_warmup_style = WarmupStyle::kConstant;
    } else {
      f.FailValue(
          "lr_warmup_style",
          fmt::format("lr_warmup_style should be one of 'linear', 'constant' and not {}", *warmup));
    }
  }
  std::optional<std::string> decay;
  f.OptString("lr_decay_style", &decay);
  if (decay) {
    if (*decay == "linear") {
      s.lr_decay_style = DecayStyle::kLinear;
    } else if (*decay == "cosine") {
      s.lr_decay_style = DecayStyle::kCosine;
    } else if (*decay == "1-sqrt") {
      s.lr_decay_style = DecayStyle::kOneMinusSqrt;
    } else {
      f.FailValue(
          "lr_decay_style",
          fmt::format("lr_decay_style should be one of 'linear', 'cosine', '1-sqrt' and not {}",
                      *decay));
    }
  }
  std::optional<int64_t> decay_steps;
  f.OptInt("lr_decay_steps", &decay_steps);
  *has_decay_steps = decay_steps.has_value();
  s.lr_decay_steps = decay_steps.value_or(0);
  f.OptInt("lr_decay_starting_step", &s.lr_decay_starting_step);
  if (s.lr_decay_starting_step && *s.lr_decay_starting_step < 0) {
    f.FailValue("lr_decay_starting_step", "must not be negative");
  }
  std::optional<double> min_lr;
  f.OptFloat("min_decay_lr", &min_lr);
  s.min_decay_lr = min_lr.value_or(s.learning_rate);
  return s;
}

OptimizerFactory ParseOptimizerFactory(Fields f) {
  f.Expect({"name", "adam_eps", "adam_beta1", "adam_beta2", "torch_adam_is_fused"});
  bool adam_keys = f.Has("adam_eps") || f.Has("adam_beta1") || f.Has("adam_beta2") ||
                   f.Has("torch_adam_is_fused");
  std::optional<std::string> name;
  f.OptString("name", &name);
  if (!name) name = adam_keys ? "adamW" : "sgd";
  // With name: sgd, nanotron builds SGD and ignores any Adam keys; so does strun.
  if (*name == "sgd") return SGDOptimizerArgs{};
  if (*name != "adamW")
    f.FailValue("name", fmt::format("Optimizer {} is not supported (use adamW or sgd)", *name));
  AdamWOptimizerArgs a;
  a.adam_eps = f.RequiredFloat("adam_eps");
  a.adam_beta1 = f.RequiredFloat("adam_beta1");
  a.adam_beta2 = f.RequiredFloat("adam_beta2");
  a.torch_adam_is_fused = f.RequiredBool("torch_adam_is_fused");
  return a;
}

OptimizerArgs ParseOptimizer(Fields f, bool* has_decay_steps) {
  f.Expect({"optimizer_factory", "zero_stage", "weight_decay", "clip_grad",
            "accumulate_grad_in_fp32", "learning_rate_scheduler"});
  OptimizerArgs o;
  o.optimizer_factory = ParseOptimizerFactory(Section(f, "optimizer_factory", "optimizer_factory"));
  o.zero_stage = f.RequiredInt("zero_stage");
  if (o.zero_stage < 0) f.FailValue("zero_stage", "must not be negative");
  o.weight_decay = f.RequiredFloat("weight_decay");
  f.OptFloat("clip_grad", &o.clip_grad);
  o.accumulate_grad_in_fp32 = f.RequiredBool("accumulate_grad_in_fp32");
  o.learning_rate_scheduler =
      ParseLRScheduler(Section(f, "learning_rate_scheduler", "LRSchedulerArgs"), has_decay_steps);
  return o;
}

std::variant<PretrainDatasetsArgs, NanosetDatasetsArgs> ParseDataset(Fields f) {
  f.Expect({"hf_dataset_or_datasets", "hf_dataset_splits", "hf_dataset_config_name",
            "dataset_processing_num_proc_per_process", "dataset_overwrite_cache",
            "text_column_name", "dataset_folder"});
  if (f.Has("dataset_folder")) {
    for (const std::string& key : f.Keys()) {
      if (key != "dataset_folder") {
        f.FailValue(key,
                    "a dataset is either a Hugging Face dataset (hf_dataset_or_datasets, ...) or "
                    "a Nanoset (dataset_folder alone), not both");
      }
    }
    if (!f.HasValue("dataset_folder")) f.FailMissing("dataset_folder");
    return NanosetDatasetsArgs{ParseNamesOrWeights(f, "dataset_folder", true)};
  }
  PretrainDatasetsArgs d;
  if (!f.HasValue("hf_dataset_or_datasets")) f.FailMissing("hf_dataset_or_datasets");
  d.hf_dataset_or_datasets = ParseNamesOrWeights(f, "hf_dataset_or_datasets", true);
  if (f.HasValue("hf_dataset_splits"))
    d.hf_dataset_splits = ParseNamesOrWeights(f, "hf_dataset_splits", false);
  f.OptString("hf_dataset_config_name", &d.hf_dataset_config_name);
  f.Int("dataset_processing_num_proc_per_process", &d.dataset_processing_num_proc_per_process);
  f.Bool("dataset_overwrite_cache", &d.dataset_overwrite_cache);
  f.String("text_column_name", &d.text_column_name);
  return d;
}

DataArgs ParseData(Fields f) {
  f.Expect({"dataset", "seed", "num_loading_workers"});
  DataArgs d;
  d.dataset = ParseDataset(Section(f, "dataset", "the dataset"));
  f.Int("seed", &d.seed);
  f.Int("num_loading_workers", &d.num_loading_workers);
  return d;
}

std::vector<DatasetStageArgs> ParseDataStages(Fields& root) {
  YAML::Node node = root.Get("data_stages");
  if (!node.IsSequence()) root.FailValue("data_stages", "expected a list of stages");
  Where list = root.ChildWhere("data_stages");
  std::vector<DatasetStageArgs> stages;
  std::vector<int> lines;
  for (size_t i = 0; i < node.size(); ++i) {
    Fields f(node[i], Where{list.source, list.Index(i), yaml_fields::LineOf(node[i])},
             "a data stage");
    f.Expect({"name", "start_training_step", "data"});
    DatasetStageArgs s;
    s.name = f.RequiredString("name");
    s.start_training_step = f.RequiredInt("start_training_step");
    if (s.start_training_step < 0) {
      f.FailValue("start_training_step",
                  fmt::format("training_steps should be a positive integer and not {}",
                              s.start_training_step));
    }
    s.data = ParseData(Section(f, "data", "DataArgs"));
    stages.push_back(std::move(s));
  }
  // nanotron sorts the stages by start step, then requires one at step 1 and unique names/steps.
  std::stable_sort(stages.begin(), stages.end(),
                   [](const DatasetStageArgs& a, const DatasetStageArgs& b) {
                     return a.start_training_step < b.start_training_step;
                   });
  for (size_t i = 0; i < stages.size(); ++i) {
    for (size_t j = i + 1; j < stages.size(); ++j) {
      if (stages[i].name == stages[j].name) {
        root.FailValue("data_stages",
                       fmt::format("Each stage should have a unique name; '{}' is used twice",
                                   stages[i].name));
      }
      if (stages[i].start_training_step == stages[j].start_training_step) {
        root.FailValue(
            "data_stages",
            fmt::format("Each stage should have a unique starting training step; stages '{}' and "
                        "'{}' both start at {}",
                        stages[i].name, stages[j].name, stages[i].start_training_step));
      }
    }
  }
  bool has_first = std::any_of(stages.begin(), stages.end(), [](const DatasetStageArgs& s) {
    return s.start_training_step == 1;
  });
  if (!has_first) {
    root.FailValue("data_stages",
                   "You must have a training stage starting at 1 in the config's data_stages");
  }
  return stages;
}

CheckpointsArgs ParseCheckpoints(Fields f) {
  f.Expect({"checkpoints_path", "checkpoint_interval", "save_initial_state",
            "resume_checkpoint_path", "checkpoints_path_is_shared_file_system", "save_final_state",
            "load_lr_scheduler", "load_optimizer"});
  CheckpointsArgs c;
  c.checkpoints_path = NormalizePath(f.RequiredString("checkpoints_path"));
  c.checkpoint_interval = f.RequiredInt("checkpoint_interval");
  if (c.checkpoint_interval < 1) f.FailValue("checkpoint_interval", "must be at least 1");
  f.Bool("save_initial_state", &c.save_initial_state);
  PathKey(f, "resume_checkpoint_path", &c.resume_checkpoint_path);
  f.Bool("checkpoints_path_is_shared_file_system", &c.checkpoints_path_is_shared_file_system);
  f.Bool("save_final_state", &c.save_final_state);
  f.Bool("load_lr_scheduler", &c.load_lr_scheduler);
  f.Bool("load_optimizer", &c.load_optimizer);
  return c;
}

LoggingArgs ParseLogging(Fields f) {
  f.Expect({"log_level", "log_level_replica", "iteration_step_info_interval"});
  LoggingArgs l;
  for (const char* key : {"log_level", "log_level_replica"}) {
    std::string* out = key == std::string("log_level") ? &l.log_level : &l.log_level_replica;
    f.String(key, out);
    static const char* const kLevels[] = {"debug", "info",     "warning",
                                          "error", "critical", "passive"};
    if (std::none_of(std::begin(kLevels), std::end(kLevels),
                     [&](const char* v) { return *out == v; })) {
      f.FailValue(
          key, fmt::format("{} should be one of debug, info, warning, error, critical, passive and "
                           "not {}",
                           key, *out));
    }
  }
  f.Int("iteration_step_info_interval", &l.iteration_step_info_interval);
  if (l.iteration_step_info_interval < 1)
    f.FailValue("iteration_step_info_interval", "must be at least 1");
  return l;
}

ProfilerArgs ParseProfiler(Fields f) {
  f.Expect({"profiler_export_path"});
  ProfilerArgs p;
  PathKey(f, "profiler_export_path", &p.profiler_export_path);
  return p;
}

GenerationArgs ParseGeneration(Fields f) {
  f.Expect({"sampler", "temperature", "top_k", "top_p", "n_samples", "eos", "seed", "use_cache"});
  GenerationArgs g;
  std::optional<std::string> sampler;
  f.OptString("sampler", &sampler);
  if (sampler) {
    std::string s = Upper(*sampler);
    if (s == "TOP_P") {
      g.sampler = SamplerType::kTopP;
    } else if (s == "TOP_K") {
      g.sampler = SamplerType::kTopK;
    } else if (s == "GREEDY") {
      g.sampler = SamplerType::kGreedy;
    } else if (s == "BASIC") {
      g.sampler = SamplerType::kBasic;
    } else {
      f.FailValue("sampler",
                  fmt::format("should be one of top_p, top_k, greedy, basic, not '{}'", *sampler));
    }
  }
  f.OptFloat("temperature", &g.temperature);
  f.OptInt("top_k", &g.top_k);
  f.OptFloat("top_p", &g.top_p);
  f.OptInt("n_samples", &g.n_samples);
  f.OptString("eos", &g.eos);
  f.Int("seed", &g.seed);
  f.Bool("use_cache", &g.use_cache);
  return g;
}

LightEvalConfig ParseLightEval(Fields f) {
  f.Expect({"slurm_template", "slurm_script_dir", "checkpoints_path", "parallelism", "batch_size",
            "generation", "tasks", "logging", "wandb"});
  LightEvalConfig c;
  f.OptString("slurm_template", &c.slurm_template);
  f.OptString("slurm_script_dir", &c.slurm_script_dir);
  f.OptString("checkpoints_path", &c.checkpoints_path);
  if (f.HasValue("parallelism"))
    c.parallelism = ParseParallelism(Section(f, "parallelism", "ParallelismArgs"));
  f.OptInt("batch_size", &c.batch_size);
  if (f.HasValue("generation")) {
    YAML::Node node = f.Get("generation");
    if (!node.IsMap()) f.FailValue("generation", "expected a mapping");
    // nanotron's union tries GenerationArgs first, then {task: GenerationArgs}.
    static const std::vector<std::string> kGenerationKeys = {
        "sampler", "temperature", "top_k", "top_p", "n_samples", "eos", "seed", "use_cache"};
    Fields gen(node, f.ChildWhere("generation"), "GenerationArgs");
    std::vector<std::string> keys = gen.Keys();
    bool single = std::all_of(keys.begin(), keys.end(), [](const std::string& k) {
      return std::find(kGenerationKeys.begin(), kGenerationKeys.end(), k) != kGenerationKeys.end();
    });
    if (single) {
      c.generation = ParseGeneration(gen);
    } else {
      std::map<std::string, GenerationArgs> per_task;
      for (const std::string& task : keys) {
        YAML::Node value = gen.Get(task);
        if (!value.IsMap()) {
          gen.FailValue(task, "expected GenerationArgs (sampler, temperature, ...) for this task");
        }
        per_task[task] = ParseGeneration(Fields(value, gen.ChildWhere(task), "GenerationArgs"));
      }
      c.generation = std::move(per_task);
    }
  }
  if (f.HasValue("tasks")) {
    Fields t = Section(f, "tasks", "LightEvalTasksArgs");
    t.Expect({"tasks", "custom_tasks", "max_samples", "num_fewshot_seeds",
              "dataset_loading_processes", "multichoice_continuations_start_space",
              "no_multichoice_continuations_start_space"});
    LightEvalTasksArgs a;
    t.OptString("tasks", &a.tasks);
    t.OptString("custom_tasks", &a.custom_tasks);
    t.OptInt("max_samples", &a.max_samples);
    t.OptInt("num_fewshot_seeds", &a.num_fewshot_seeds);
    t.Int("dataset_loading_processes", &a.dataset_loading_processes);
    t.OptBool("multichoice_continuations_start_space", &a.multichoice_continuations_start_space);
    t.OptBool("no_multichoice_continuations_start_space",
              &a.no_multichoice_continuations_start_space);
    c.tasks = a;
  }
  if (f.HasValue("logging")) {
    Fields l = Section(f, "logging", "LightEvalLoggingArgs");
    l.Expect({"local_output_path", "push_results_to_hub", "push_details_to_hub",
              "push_results_to_tensorboard", "hub_repo_results", "hub_repo_details",
              "hub_repo_tensorboard", "tensorboard_metric_prefix"});
    LightEvalLoggingArgs a;
    PathKey(l, "local_output_path", &a.local_output_path);
    l.OptBool("push_results_to_hub", &a.push_results_to_hub);
    l.OptBool("push_details_to_hub", &a.push_details_to_hub);
    l.OptBool("push_results_to_tensorboard", &a.push_results_to_tensorboard);
    l.OptString("hub_repo_results", &a.hub_repo_results);
    l.OptString("hub_repo_details", &a.hub_repo_details);
    l.OptString("hub_repo_tensorboard", &a.hub_repo_tensorboard);
    l.OptString("tensorboard_metric_prefix", &a.tensorboard_metric_prefix);
    c.logging = a;
  }
  if (f.HasValue("wandb")) {
    Fields l = Section(f, "wandb", "LightEvalWandbLoggerConfig");
    l.Expect({"wandb_project", "wandb_entity", "wandb_run_name"});
    LightEvalWandbLoggerConfig a;
    l.String("wandb_project", &a.wandb_project);
    if (a.wandb_project.empty()) l.FailMissing("wandb_project");
    l.OptString("wandb_entity", &a.wandb_entity);
    l.OptString("wandb_run_name", &a.wandb_run_name);
    c.wandb = a;
  }
  return c;
}

Config ParseRoot(const YAML::Node& doc, const std::string& source, const LoadOptions& options) {
  Fields root(doc, Where{&source, ""}, "a nanotron config");
  root.Expect({"general", "parallelism", "model", "tokenizer", "checkpoints", "logging", "tokens",
               "optimizer", "data_stages", "profiler", "lighteval"});
  Config c;
  c.general = ParseGeneral(Section(root, "general", "GeneralArgs"), options);
  c.parallelism = ParseParallelism(Section(root, "parallelism", "ParallelismArgs"));
  c.model = ParseModel(Section(root, "model", "ModelArgs"));
  c.tokenizer = ParseTokenizer(Section(root, "tokenizer", "TokenizerArgs"));
  if (root.HasValue("checkpoints"))
    c.checkpoints = ParseCheckpoints(Section(root, "checkpoints", "CheckpointsArgs"));
  if (root.HasValue("logging")) c.logging = ParseLogging(Section(root, "logging", "LoggingArgs"));
  if (root.HasValue("tokens")) c.tokens = ParseTokens(Section(root, "tokens", "TokensArgs"));
  bool has_decay_steps = true;
  if (root.HasValue("optimizer"))
    c.optimizer = ParseOptimizer(Section(root, "optimizer", "OptimizerArgs"), &has_decay_steps);
  if (root.HasValue("data_stages")) c.data_stages = ParseDataStages(root);
  if (root.HasValue("profiler"))
    c.profiler = ParseProfiler(Section(root, "profiler", "ProfilerArgs"));
  if (root.HasValue("lighteval"))
    c.lighteval = ParseLightEval(Section(root, "lighteval", "LightEvalConfig"));

  // Config.__post_init__: checks across sections.
  if (c.profiler && c.profiler->profiler_export_path) {
    if (!c.tokens)
      root.FailValue("profiler", "profiling needs the tokens section (train_steps < 10)");
    if (c.tokens->train_steps >= 10) {
      root.FailValue(
          "profiler",
          fmt::format("profiling is for short runs: tokens.train_steps must be below 10, "
                      "not {}",
                      c.tokens->train_steps));
    }
  }
  if (c.optimizer && !has_decay_steps) {
    LRSchedulerArgs& s = c.optimizer->learning_rate_scheduler;
    if (!c.tokens) {
      root.FailValue("optimizer",
                     "optimizer.learning_rate_scheduler.lr_decay_steps defaults to "
                     "tokens.train_steps - lr_warmup_steps: give one or the tokens section");
    }
    // Negative when the run is shorter than the warm-up (a shortened test run): the schedule then
    // never leaves warm-up, as in nanotron.
    s.lr_decay_steps = c.tokens->train_steps - s.lr_warmup_steps;
  }
  return c;
}

}  // namespace

Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source_name,
                           const LoadOptions& options) {
  try {
    YAML::Node doc = YAML::Load(yaml_text);
    return ParseRoot(doc, source_name, options);
  } catch (const ConfigError& e) {
    return MakeError(e.what());
  } catch (const YAML::ParserException& e) {
    return MakeError(
        fmt::format("{}:{}:{}: invalid YAML: {} (check the indentation, colons and brackets around "
                    "this line)",
                    source_name, e.mark.line + 1, e.mark.column + 1, e.msg));
  } catch (const YAML::Exception& e) {
    return MakeError(fmt::format("{}: invalid YAML: {}", source_name, e.what()));
  } catch (const std::exception& e) {
    return MakeError(fmt::format("{}: cannot read the config: {}", source_name, e.what()));
  }
}

Result<Config> LoadConfig(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return MakeError(
        fmt::format("{}: cannot open the config file (does it exist and is it readable?)", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return MakeError(fmt::format("{}: cannot read the config file", path));
  return ParseConfig(text.str(), path, options);
}

}  // namespace strun::train

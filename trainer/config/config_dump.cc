// Config to YAML in the layout of nanotron's Config.save_as_yaml: every dataclass field, resolved
// values, null for absent ones, keys sorted. strun extensions appear only when not at their
// default.
#include <string>

#include "config/config.h"
#include "config/yaml_emitter.h"

namespace strun::train {
namespace {

using yaml_emitter::Value;

Value Str(const std::string& s) { return Value::String(s); }
Value Int(int64_t v) { return Value::Int(v); }
Value Float(double v) { return Value::Float(v); }
Value Bool(bool v) { return Value::Bool(v); }
Value OptStr(const std::optional<std::string>& v) { return Value::Optional(v, Str); }
Value OptInt(const std::optional<int64_t>& v) { return Value::Optional(v, Int); }
Value OptFloat(const std::optional<double>& v) { return Value::Optional(v, Float); }
Value OptBool(const std::optional<bool>& v) { return Value::Optional(v, Bool); }

Value Names(const NamesOrWeights& n) {
  switch (n.form) {
    case NamesOrWeights::Form::kString:
      return Str(n.names.empty() ? "" : n.names.front());
    case NamesOrWeights::Form::kList: {
      Value list = Value::List();
      for (const std::string& name : n.names) list.Append(Str(name));
      return list;
    }
    case NamesOrWeights::Form::kWeights: {
      Value map = Value::Map(/*sorted=*/false);  // file order is the order of the mixture
      for (size_t i = 0; i < n.names.size(); ++i)
        map.Set(n.names[i], Float(i < n.weights.size() ? n.weights[i] : 0));
      return map;
    }
  }
  return Value::Null();
}

Value DumpGeneral(const GeneralArgs& g) {
  Value v = Value::Map();
  v.Set("benchmark_csv_path", OptStr(g.benchmark_csv_path));
  v.Set("consumed_train_samples", OptInt(g.consumed_train_samples));
  v.Set("ignore_sanity_checks", Bool(g.ignore_sanity_checks));
  v.Set("project", Str(g.project));
  v.Set("run", Str(g.run));
  v.Set("seed", Int(g.seed));
  v.Set("step", OptInt(g.step));
  return v;
}

Value DumpParallelism(const ParallelismArgs& p) {
  Value v = Value::Map();
  v.Set("dp", Int(p.dp));
  v.Set("expert_parallel_size", Int(p.expert_parallel_size));
  v.Set("pp", Int(p.pp));
  v.Set("pp_engine", Str(p.pp_engine == PipelineEngine::kOneForwardOneBackward ? "1f1b" : "afab"));
  v.Set("tp", Int(p.tp));
  v.Set("tp_linear_async_communication", Bool(p.tp_linear_async_communication));
  // nanotron writes the enum member's name.
  v.Set("tp_mode", Str(p.tp_mode == TensorParallelLinearMode::kReduceScatter ? "REDUCE_SCATTER"
                                                                             : "ALL_REDUCE"));
  if (p.recompute_layer) v.Set("recompute_layer", Bool(true));
  return v;
}

Value DumpLlama(const LlamaConfig& c) {
  Value v = Value::Map();
  v.Set("bos_token_id", Int(c.bos_token_id));
  v.Set("eos_token_id", Int(c.eos_token_id));
  v.Set("hidden_act", Str(c.hidden_act));
  v.Set("hidden_size", Int(c.hidden_size));
  v.Set("initializer_range", Float(c.initializer_range));
  v.Set("intermediate_size", Int(c.intermediate_size));
  v.Set("is_llama_config", Bool(c.is_llama_config));
  v.Set("max_position_embeddings", Int(c.max_position_embeddings));
  v.Set("num_attention_heads", Int(c.num_attention_heads));
  v.Set("num_hidden_layers", Int(c.num_hidden_layers));
  v.Set("num_key_value_heads", Int(c.num_key_value_heads));
  v.Set("pad_token_id", OptInt(c.pad_token_id));
  v.Set("pretraining_tp", Int(c.pretraining_tp));
  v.Set("rms_norm_eps", Float(c.rms_norm_eps));
  if (c.rope_scaling) {
    Value scaling = Value::Map();
    for (const auto& [key, value] : *c.rope_scaling) scaling.Set(key, Str(value));
    v.Set("rope_scaling", std::move(scaling));
  } else {
    v.Set("rope_scaling", Value::Null());
  }
  v.Set("rope_theta", Float(c.rope_theta));
  v.Set("tie_word_embeddings", Bool(c.tie_word_embeddings));
  v.Set("use_cache", Bool(c.use_cache));
  v.Set("vocab_size", Int(c.vocab_size));
  return v;
}

Value DumpModel(const ModelArgs& m) {
  Value v = Value::Map();
  v.Set("ddp_bucket_cap_mb", Int(m.ddp_bucket_cap_mb));
  v.Set("dtype", Str(std::string(DTypeName(m.dtype))));
  Value init = Value::Map();
  if (const auto* r = std::get_if<RandomInit>(&m.init_method)) {
    init.Set("std", Float(r->std));
  } else if (std::holds_alternative<SpectralMupInit>(m.init_method)) {
    init.Set("use_mup", Bool(true));
  } else {
    init.Set("path", Str(std::get<ExistingCheckpointInit>(m.init_method).path));
  }
  v.Set("init_method", std::move(init));
  v.Set("make_vocab_size_divisible_by", Int(m.make_vocab_size_divisible_by));
  v.Set("model_config", DumpLlama(m.model_config));
  return v;
}

Value DumpTokenizer(const TokenizerArgs& t) {
  Value v = Value::Map();
  v.Set("tokenizer_max_length", OptInt(t.tokenizer_max_length));
  v.Set("tokenizer_name_or_path", OptStr(t.tokenizer_name_or_path));
  v.Set("tokenizer_revision", OptStr(t.tokenizer_revision));
  return v;
}

Value DumpCheckpoints(const CheckpointsArgs& c) {
  Value v = Value::Map();
  v.Set("checkpoint_interval", Int(c.checkpoint_interval));
  v.Set("checkpoints_path", Str(c.checkpoints_path));
  v.Set("checkpoints_path_is_shared_file_system", Bool(c.checkpoints_path_is_shared_file_system));
  v.Set("resume_checkpoint_path", OptStr(c.resume_checkpoint_path));
  v.Set("save_initial_state", Bool(c.save_initial_state));
  if (!c.save_final_state) v.Set("save_final_state", Bool(false));
  if (!c.load_lr_scheduler) v.Set("load_lr_scheduler", Bool(false));
  if (!c.load_optimizer) v.Set("load_optimizer", Bool(false));
  return v;
}

Value DumpLogging(const LoggingArgs& l) {
  Value v = Value::Map();
  v.Set("iteration_step_info_interval", Int(l.iteration_step_info_interval));
  v.Set("log_level", Str(l.log_level));
  v.Set("log_level_replica", Str(l.log_level_replica));
  return v;
}

Value DumpTokens(const TokensArgs& t) {
  Value v = Value::Map();
  v.Set("batch_accumulation_per_replica", Int(t.batch_accumulation_per_replica));
  v.Set("limit_test_batches", Int(t.limit_test_batches));
  v.Set("limit_val_batches", Int(t.limit_val_batches));
  v.Set("micro_batch_size", Int(t.micro_batch_size));
  v.Set("sequence_length", Int(t.sequence_length));
  v.Set("train_steps", Int(t.train_steps));
  v.Set("val_check_interval", Int(t.val_check_interval));
  return v;
}

const char* WarmupName(WarmupStyle s) {
  return s == WarmupStyle::kConstant ? "constant" : "linear";
}

const char* DecayName(DecayStyle s) {
  switch (s) {
    case DecayStyle::kCosine:
      return "cosine";
    case DecayStyle::kOneMinusSqrt:
      return "1-sqrt";
    case DecayStyle::kLinear:
      break;
  }
  return "linear";
}

Value DumpOptimizer(const OptimizerArgs& o) {
  Value v = Value::Map();
  v.Set("accumulate_grad_in_fp32", Bool(o.accumulate_grad_in_fp32));
  v.Set("clip_grad", OptFloat(o.clip_grad));
  const LRSchedulerArgs& s = o.learning_rate_scheduler;
  Value lr = Value::Map();
  lr.Set("learning_rate", Float(s.learning_rate));
  lr.Set("lr_decay_starting_step", OptInt(s.lr_decay_starting_step));
  lr.Set("lr_decay_steps", Int(s.lr_decay_steps));
  lr.Set("lr_decay_style", Str(DecayName(s.lr_decay_style)));
  lr.Set("lr_warmup_steps", Int(s.lr_warmup_steps));
  lr.Set("lr_warmup_style", Str(WarmupName(s.lr_warmup_style)));
  lr.Set("min_decay_lr", Float(s.min_decay_lr));
  v.Set("learning_rate_scheduler", std::move(lr));
  Value factory = Value::Map();
  if (const auto* a = std::get_if<AdamWOptimizerArgs>(&o.optimizer_factory)) {
    factory.Set("adam_beta1", Float(a->adam_beta1));
    factory.Set("adam_beta2", Float(a->adam_beta2));
    factory.Set("adam_eps", Float(a->adam_eps));
    factory.Set("name", Str("adamW"));
    factory.Set("torch_adam_is_fused", Bool(a->torch_adam_is_fused));
  } else {
    factory.Set("name", Str("sgd"));
  }
  v.Set("optimizer_factory", std::move(factory));
  v.Set("weight_decay", Float(o.weight_decay));
  v.Set("zero_stage", Int(o.zero_stage));
  return v;
}

Value DumpDataStage(const DatasetStageArgs& s) {
  Value dataset = Value::Map();
  if (const auto* p = std::get_if<PretrainDatasetsArgs>(&s.data.dataset)) {
    dataset.Set("dataset_overwrite_cache", Bool(p->dataset_overwrite_cache));
    dataset.Set("dataset_processing_num_proc_per_process",
                Int(p->dataset_processing_num_proc_per_process));
    dataset.Set("hf_dataset_config_name", OptStr(p->hf_dataset_config_name));
    dataset.Set("hf_dataset_or_datasets", Names(p->hf_dataset_or_datasets));
    dataset.Set("hf_dataset_splits", Names(p->hf_dataset_splits));
    dataset.Set("text_column_name", Str(p->text_column_name));
  } else {
    dataset.Set("dataset_folder",
                Names(std::get<NanosetDatasetsArgs>(s.data.dataset).dataset_folder));
  }
  Value data = Value::Map();
  data.Set("dataset", std::move(dataset));
  data.Set("num_loading_workers", Int(s.data.num_loading_workers));
  data.Set("seed", Int(s.data.seed));
  Value v = Value::Map();
  v.Set("data", std::move(data));
  v.Set("name", Str(s.name));
  v.Set("start_training_step", Int(s.start_training_step));
  return v;
}

Value DumpGeneration(const GenerationArgs& g) {
  static const char* const kSamplers[] = {"TOP_P", "TOP_K", "GREEDY", "BASIC"};
  Value v = Value::Map();
  v.Set("eos", OptStr(g.eos));
  v.Set("n_samples", OptInt(g.n_samples));
  v.Set("sampler", g.sampler ? Str(kSamplers[static_cast<int>(*g.sampler)]) : Value::Null());
  v.Set("seed", Int(g.seed));
  v.Set("temperature", OptFloat(g.temperature));
  v.Set("top_k", OptInt(g.top_k));
  v.Set("top_p", OptFloat(g.top_p));
  v.Set("use_cache", Bool(g.use_cache));
  return v;
}

Value DumpLightEval(const LightEvalConfig& c) {
  Value v = Value::Map();
  v.Set("batch_size", OptInt(c.batch_size));
  v.Set("checkpoints_path", OptStr(c.checkpoints_path));
  if (!c.generation) {
    v.Set("generation", Value::Null());
  } else if (const auto* g = std::get_if<GenerationArgs>(&*c.generation)) {
    v.Set("generation", DumpGeneration(*g));
  } else {
    Value per_task = Value::Map();
    for (const auto& [task, g] : std::get<std::map<std::string, GenerationArgs>>(*c.generation)) {
      per_task.Set(task, DumpGeneration(g));
    }
    v.Set("generation", std::move(per_task));
  }
  if (c.logging) {
    const LightEvalLoggingArgs& l = *c.logging;
    Value logging = Value::Map();
    logging.Set("hub_repo_details", OptStr(l.hub_repo_details));
    logging.Set("hub_repo_results", OptStr(l.hub_repo_results));
    logging.Set("hub_repo_tensorboard", OptStr(l.hub_repo_tensorboard));
    logging.Set("local_output_path", OptStr(l.local_output_path));
    logging.Set("push_details_to_hub", OptBool(l.push_details_to_hub));
    logging.Set("push_results_to_hub", OptBool(l.push_results_to_hub));
    logging.Set("push_results_to_tensorboard", OptBool(l.push_results_to_tensorboard));
    logging.Set("tensorboard_metric_prefix", OptStr(l.tensorboard_metric_prefix));
    v.Set("logging", std::move(logging));
  } else {
    v.Set("logging", Value::Null());
  }
  v.Set("parallelism", c.parallelism ? DumpParallelism(*c.parallelism) : Value::Null());
  v.Set("slurm_script_dir", OptStr(c.slurm_script_dir));
  v.Set("slurm_template", OptStr(c.slurm_template));
  if (c.tasks) {
    const LightEvalTasksArgs& t = *c.tasks;
    Value tasks = Value::Map();
    tasks.Set("custom_tasks", OptStr(t.custom_tasks));
    tasks.Set("dataset_loading_processes", Int(t.dataset_loading_processes));
    tasks.Set("max_samples", OptInt(t.max_samples));
    tasks.Set("multichoice_continuations_start_space",
              OptBool(t.multichoice_continuations_start_space));
    tasks.Set("no_multichoice_continuations_start_space",
              OptBool(t.no_multichoice_continuations_start_space));
    tasks.Set("num_fewshot_seeds", OptInt(t.num_fewshot_seeds));
    tasks.Set("tasks", OptStr(t.tasks));
    v.Set("tasks", std::move(tasks));
  } else {
    v.Set("tasks", Value::Null());
  }
  if (c.wandb) {
    Value wandb = Value::Map();
    wandb.Set("wandb_entity", OptStr(c.wandb->wandb_entity));
    wandb.Set("wandb_project", Str(c.wandb->wandb_project));
    wandb.Set("wandb_run_name", OptStr(c.wandb->wandb_run_name));
    v.Set("wandb", std::move(wandb));
  } else {
    v.Set("wandb", Value::Null());
  }
  return v;
}

}  // namespace

std::string DumpConfig(const Config& c) {
  Value root = Value::Map();
  root.Set("checkpoints", c.checkpoints ? DumpCheckpoints(*c.checkpoints) : Value::Null());
  if (c.data_stages) {
    Value stages = Value::List();
    for (const DatasetStageArgs& s : *c.data_stages) stages.Append(DumpDataStage(s));
    root.Set("data_stages", std::move(stages));
  } else {
    root.Set("data_stages", Value::Null());
  }
  root.Set("general", DumpGeneral(c.general));
  root.Set("lighteval", c.lighteval ? DumpLightEval(*c.lighteval) : Value::Null());
  root.Set("logging", c.logging ? DumpLogging(*c.logging) : Value::Null());
  root.Set("model", DumpModel(c.model));
  root.Set("optimizer", c.optimizer ? DumpOptimizer(*c.optimizer) : Value::Null());
  root.Set("parallelism", DumpParallelism(c.parallelism));
  if (c.profiler) {
    Value profiler = Value::Map();
    profiler.Set("profiler_export_path", OptStr(c.profiler->profiler_export_path));
    root.Set("profiler", std::move(profiler));
  } else {
    root.Set("profiler", Value::Null());
  }
  root.Set("tokenizer", DumpTokenizer(c.tokenizer));
  root.Set("tokens", c.tokens ? DumpTokens(*c.tokens) : Value::Null());
  return root.Emit();
}

}  // namespace strun::train

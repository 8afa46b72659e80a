#include "train/setup.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <variant>

#include "checkpoint/load_model.h"
#include "checkpoint/model_config.h"
#include "data/dataset_store.h"
#include "train/metrics.h"

namespace strun::train {
namespace {

optim::LrScheduleOptions ScheduleOptionsFrom(const Config& c) {
  const LRSchedulerArgs& s = c.optimizer->learning_rate_scheduler;
  optim::LrScheduleOptions o;
  o.learning_rate = s.learning_rate;
  o.lr_warmup_steps = s.lr_warmup_steps;
  o.lr_warmup_style = s.lr_warmup_style == WarmupStyle::kLinear ? optim::WarmupStyle::kLinear
                                                                : optim::WarmupStyle::kConstant;
  switch (s.lr_decay_style) {
    case DecayStyle::kLinear:
      o.lr_decay_style = optim::DecayStyle::kLinear;
      break;
    case DecayStyle::kCosine:
      o.lr_decay_style = optim::DecayStyle::kCosine;
      break;
    case DecayStyle::kOneMinusSqrt:
      o.lr_decay_style = optim::DecayStyle::kOneMinusSqrt;
      break;
  }
  o.lr_decay_steps = s.lr_decay_steps;
  o.lr_decay_starting_step = s.lr_decay_starting_step;
  o.min_decay_lr = s.min_decay_lr;
  o.total_training_steps = c.tokens->train_steps;
  return o;
}

optim::OptimizerOptions OptimizerOptionsFrom(const Config& c) {
  optim::OptimizerOptions o;
  o.weight_decay = c.optimizer->weight_decay;
  if (const auto* adam = std::get_if<AdamWOptimizerArgs>(&c.optimizer->optimizer_factory)) {
    o.kind = optim::OptimizerKind::kAdamW;
    o.adam_beta1 = adam->adam_beta1;
    o.adam_beta2 = adam->adam_beta2;
    o.adam_eps = adam->adam_eps;
  } else {
    o.kind = optim::OptimizerKind::kSgd;
  }
  return o;
}

// The prepared split of every stage (the config's stages are checked to be one prepared dataset
// each: config/load_for_training.h).
Result<std::vector<data::DataStage>> DataStagesFrom(const Config& c) {
  std::vector<data::DataStage> out;
  for (const auto& stage : *c.data_stages) {
    const auto& hf = std::get<PretrainDatasetsArgs>(stage.data.dataset);
    auto base = data::ResolvePreparedDataset(hf.hf_dataset_or_datasets.names[0],
                                             hf.hf_dataset_config_name, hf.hf_dataset_splits.names);
    if (!base) {
      return MakeError("data_stages[" + stage.name + "]: " + base.error().message);
    }
    data::DataStage d;
    d.name = stage.name;
    d.start_training_step = stage.start_training_step;
    d.split_base = *base;
    d.seed = static_cast<uint64_t>(stage.data.seed);
    d.num_proc = hf.dataset_processing_num_proc_per_process;
    out.push_back(std::move(d));
  }
  return out;
}

void SetCpuRngState(const at::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// The checkpoint to resume from and the data position it saved. Ok(false): already finished.
Result<bool> FindResumePoint(Run& run) {
  const CheckpointsArgs& ckpt = *run.config.checkpoints;
  for (const auto& s : *run.config.data_stages) {
    run.meta.data_stages.push_back({s.name, s.start_training_step, 0});
  }
  if (ckpt.resume_checkpoint_path) {
    auto r = ResolveResumeDirectory(*ckpt.resume_checkpoint_path);
    if (!r) return MakeError("checkpoints.resume_checkpoint_path: " + r.error().message);
    run.resume_dir = *r;
    if (!run.resume_dir) {
      run.Info0("No previous checkpoint found in: " + *ckpt.resume_checkpoint_path + "/latest.txt");
    }
  }
  if (!run.resume_dir) return true;
  auto m = ReadTrainingMetadata(*run.resume_dir);
  if (!m) return m.error();
  if (m->last_train_step >= run.train_steps) {
    run.Info0(fmt::format(
        "Training already finished: checkpoint {} is at step {} and tokens.train_steps is {}; "
        "nothing to do (raise tokens.train_steps to train further)",
        *run.resume_dir, m->last_train_step, run.train_steps));
    return false;
  }
  if (m->data_stages.size() != run.meta.data_stages.size()) {
    return MakeError(
        fmt::format("checkpoint {} has {} data stages but the config has {}; resume "
                    "with the data_stages it was trained with",
                    *run.resume_dir, m->data_stages.size(), run.meta.data_stages.size()));
  }
  run.meta = *m;
  return true;
}

// tp or pp > 1: nanotron's process grid and its groups; data parallelism then runs over the dp
// group.
Status BuildProcessGroups(Run& run) {
  if (run.tp == 1 && run.pp == 1) return {};
  auto grid = parallel::ProcessGrid::Create({run.dp, run.tp, run.pp, 1}, run.comm->size());
  if (!grid) return MakeError("parallelism: " + grid.error().message);
  run.Info0(parallel::DescribeGrid(*grid));
  auto groups = run.comm->CreateGridGroups(*grid);
  if (!groups)
    return MakeError("cannot create the tp/dp/pp process groups: " + groups.error().message);
  run.groups = std::move(*groups);
  run.dp_group_comm = run.comm->ForGroup(*run.groups->dp());
  run.dp_comm = run.dp_group_comm.get();
  return {};
}

model::TensorParallelOptions TensorParallelOptionsOf(const Run& run) {
  model::TensorParallelOptions tp;
  if (run.tp == 1) return tp;
  const ParallelismArgs& p = run.config.parallelism;
  tp.group = run.groups->tp();
  tp.mode = p.tp_mode == TensorParallelLinearMode::kReduceScatter ? parallel::TpMode::kReduceScatter
                                                                  : parallel::TpMode::kAllReduce;
  tp.async_communication = p.tp_linear_async_communication;
  return tp;
}

// The Llama with its weights: the resumed checkpoint's, init_method.path's or random ones.
// Returns the rest of the resumed state (optimizer, RNG), empty without a resume.
Result<CheckpointState> BuildModel(Run& run) {
  run.Info0("Config:\n" + DumpConfig(run.config));
  auto llama = model::Llama::Create(run.shape, run.device.dtype(run.dtype),
                                    TensorParallelOptionsOf(run), {run.pp_rank, run.pp});
  if (!llama) return MakeError(run.config_path + ": " + llama.error().message);
  if (run.pp > 1) {
    run.Info0("Pipeline stages: " + model::DescribePipelineSplit(run.shape, run.pp).value());
  }
  run.llama.emplace(std::move(*llama));
  const int64_t nparams = run.llama->NumParameters();
  const int64_t element_size = static_cast<int64_t>(c10::elementSize(run.dtype));
  run.Info0("Model Config:\n" + ModelConfigJson(run.config));
  run.Info0(ParameterCountLine(
      "Total", run.tp == 1 && run.pp == 1 ? nparams : model::CountParameters(run.shape),
      element_size));
  run.Info0(ParameterCountLine("Local", nparams, element_size));

  CheckpointState loaded;
  if (run.resume_dir) {
    run.Info0("Loading weights from " + *run.resume_dir);
    CheckpointLoadOptions lo;
    lo.rank = run.rank;
    lo.dp_rank = run.dp_rank;
    lo.dp = run.dp;
    lo.pp_rank = run.pp_rank;
    lo.pp = run.pp;
    lo.zero_sharded_optimizer = run.zero;
    lo.load_optimizer = run.config.checkpoints->load_optimizer;
    auto st = LoadModel(*run.resume_dir, lo, *run.llama);
    if (!st) return st.error();
    loaded = std::move(*st);
    if (!loaded.checksums_verified) {
      run.log.Warning("checkpoint " + *run.resume_dir +
                      " has no checksums/ (written by an older "
                      "strun-train): its files are loaded without verifying them");
    }
  } else if (const auto* existing =
                 std::get_if<ExistingCheckpointInit>(&run.config.model.init_method)) {
    auto dir = ResolveResumeDirectory(existing->path);
    if (!dir || !*dir)
      return MakeError("model.init_method.path: no checkpoint at " + existing->path);
    run.Info0("Loading weights from " + **dir);
    CheckpointLoadOptions lo;
    lo.load_optimizer = false;
    if (auto st = LoadModel(**dir, lo, *run.llama); !st) return st.error();
  } else {
    // Spectral µP is refused when the config is loaded (config/load_for_training.h).
    const auto& init = std::get<RandomInit>(run.config.model.init_method);
    run.Info0("No checkpoint path provided.");
    run.llama->InitRandomly({init.std, static_cast<uint64_t>(run.config.general.seed)});
  }
  run.params = run.llama->Parameters();
  const model::PipelineStage& stage = run.llama->pipeline_stage();
  const bool tied_across_stages = run.llama->tied() && !(stage.embedding && stage.head);
  for (const auto& [name, t] : run.llama->NamedParameters()) {
    if (tied_across_stages &&
        name == "model.token_position_embeddings.pp_block.token_embedding.weight") {
      run.tied_index = static_cast<int>(run.tp_sharded.size());
    }
    run.tp_sharded.push_back(run.llama->ShardSpecOf(name).has_value());
  }
  run.tied_copy = run.llama->TiedEmbeddingCopy();
  return loaded;
}

// Flat fp32 master weights and gradients, this rank's ZeRO-1 shard and its optimizer; the resumed
// optimizer state and RNG.
Status BuildOptimizer(Run& run, const CheckpointState& loaded) {
  const optim::OptimizerOptions options = OptimizerOptionsFrom(run.config);
  const at::TensorOptions f32 = run.device.dtype(at::kFloat);
  run.layout = optim::FlatLayout(run.llama->NamedParameters(), run.zero ? run.dp : 1);
  run.master = run.layout.NewBuffer(f32);
  run.grads = run.layout.NewBuffer(f32);
  run.layout.Pack(run.params, run.master);
  const auto [begin, end] = run.zero ? run.layout.ShardRange(run.dp_rank, run.dp)
                                     : std::pair<int64_t, int64_t>(0, run.layout.numel());
  run.shard = parallel::ZeroShard(begin, end, run.zero);
  run.optimizer = std::make_unique<optim::Optimizer>(
      options, std::vector<optim::OptimizedTensor>{
                   {"flat", run.shard.Of(run.master), run.shard.Of(run.grads)}});
  run.optimizer_type = options.kind == optim::OptimizerKind::kAdamW ? "AdamW" : "SGD";
  // The fused AdamW also writes the bf16 weights where this rank updates all of them: they become
  // views of one flat buffer laid out as the master weights, and no Unpack is needed.
  run.fused = optim::Optimizer::CanFuse(options, run.llama->ops());
  if (run.fused && run.shard.numel() == run.layout.numel()) {
    run.params_flat = run.layout.NewBuffer(run.device.dtype(run.dtype));
    run.layout.Alias(run.params, run.params_flat);
  }
  run.Info0(fmt::format("Ops: {}{}", run.llama->ops().name, run.fused ? " (fused AdamW)" : ""));
  run.schedule.emplace(ScheduleOptionsFrom(run.config));
  if (run.resume_dir && run.config.checkpoints->load_optimizer) {
    optim::NamedTensors state;
    at::Tensor master_shard;
    for (auto& [n, t] : loaded.optimizer) {
      if (n == "flat.master") {
        master_shard = t;
      } else {
        state.emplace_back(n, t.to(n == "step" ? at::TensorOptions().dtype(at::kLong) : f32));
      }
    }
    if (!master_shard.defined() || master_shard.numel() != run.shard.numel()) {
      return MakeError("checkpoint " + *run.resume_dir +
                       ": optimizer master weights missing or of another size (was it written "
                       "for a different model or dp?)");
    }
    if (auto s = run.optimizer->LoadStateDict(state); !s) {
      return MakeError("checkpoint " + *run.resume_dir + ": " + s.error().message);
    }
    run.shard.Of(run.master).copy_(master_shard.to(f32));
  }
  if (run.resume_dir && loaded.rng_state.defined()) SetCpuRngState(loaded.rng_state);
  return {};
}

// Every stage's split, positioned where the resumed run stopped.
Status OpenData(Run& run) {
  auto stages = DataStagesFrom(run.config);
  if (!stages) return stages.error();
  run.stages = std::move(*stages);
  data::StagedStreamOptions so;
  so.sequence_length = run.seq;
  so.micro_batch_size = run.mbs;
  so.dp_rank = run.dp_rank;
  so.dp_size = run.dp;
  so.max_vocab_size = run.shape.vocab_size;
  std::vector<int64_t> consumed;
  for (const auto& s : run.meta.data_stages) consumed.push_back(s.consumed_train_samples);
  auto stream = data::StagedSampleStream::Open(run.stages, so, consumed);
  if (!stream) return stream.error();
  run.stream = std::move(*stream);
  run.tokens = std::make_unique<TokenStaging>(run.mbs, run.seq + 1, run.device.device());
  return run.stream->CheckSufficient(run.train_steps, run.n_micro);
}

// The checkpoint writer's fixed options, and the folder cleaned of killed writes' leftovers.
Status PrepareCheckpoints(Run& run) {
  const CheckpointsArgs& ckpt = *run.config.checkpoints;
  SaveOptions& save = run.save;
  save.checkpoints_path = ckpt.checkpoints_path;
  save.zero_sharded_optimizer = run.zero;
  save.shared_file_system = ckpt.checkpoints_path_is_shared_file_system;
  save.local_rank = run.env.local_rank;
  save.model_config_json = ModelConfigJson(run.config);
  save.q_rows = run.shape.num_attention_heads * run.shape.head_dim();
  save.kv_rows = run.shape.num_key_value_heads * run.shape.head_dim();
  save.intermediate = run.shape.intermediate_size;
  if (run.tp > 1 || run.pp > 1) {
    save.tp = run.tp;
    save.tp_rank = run.tp_rank;
    save.dp = run.dp;
    save.dp_rank = run.dp_rank;
    save.pp = run.pp;
    save.pp_rank = run.pp_rank;
  }
  // Temporary folders of writes that a killed process left would fill the disk for every retry.
  // The writer ranks remove them before any rank of this run writes; the barrier keeps it so.
  if (ckpt.checkpoints_path_is_shared_file_system ? run.rank == 0 : run.env.local_rank == 0) {
    auto removed = RemoveStaleCheckpointTemporaries(ckpt.checkpoints_path);
    if (!removed) return removed.error();
    for (const auto& n : *removed) {
      run.log.Warning(fmt::format("removed {}/{}, left by an interrupted checkpoint write",
                                  ckpt.checkpoints_path, n));
    }
  }
  run.comm->Barrier();
  return {};
}

LogLevel LevelOf(const LoggingArgs& logging, int rank) {
  auto level = ParseLogLevel(rank == 0 ? logging.log_level : logging.log_level_replica);
  return level ? *level : LogLevel::kInfo;
}

}  // namespace

Run::Run(const Config& config_in, std::string path, const parallel::TorchrunEnv& env_in,
         bool on_cuda, std::unique_ptr<parallel::Communicator> communicator)
    : config(config_in),
      config_path(std::move(path)),
      env(env_in),
      comm(std::move(communicator)),
      rank(comm->rank()),
      dp(comm->size() / static_cast<int>(config_in.parallelism.tp * config_in.parallelism.pp)),
      tp(static_cast<int>(config_in.parallelism.tp)),
      tp_rank(rank % tp),
      dp_rank(rank / tp % dp),
      pp(static_cast<int>(config_in.parallelism.pp)),
      pp_rank(rank / (tp * dp)),
      dp_comm(comm.get()),
      log(LevelOf(*config.logging, rank), dp_rank, pp_rank, tp_rank),
      cuda(on_cuda),
      device(at::TensorOptions().device(cuda ? at::Device(at::kCUDA, env.local_rank)
                                             : at::Device(at::kCPU))),
      dtype(ModelDType(config)),
      shape(ModelConfigFrom(config)) {
  const TokensArgs& tokens = *config.tokens;
  mbs = tokens.micro_batch_size;
  n_micro = tokens.batch_accumulation_per_replica;
  gbs = mbs * n_micro * dp;
  seq = tokens.sequence_length;
  train_steps = tokens.train_steps;
  zero = config.optimizer->zero_stage > 0;
  clip = config.optimizer->clip_grad;
  bucket_elems = parallel::BucketElements(config.model.ddp_bucket_cap_mb);
  const FlopsShape flops{shape.num_hidden_layers,   shape.hidden_size, shape.num_attention_heads,
                         shape.num_key_value_heads, shape.vocab_size,  shape.intermediate_size};
  step_flops = LlamaTrainingFlops(flops, seq, gbs);
}

void Run::Info0(const std::string& message) const {
  if (rank == 0) log.Info(message);
}

int Run::Fail(const std::string& message) const {
  log.Log(LogLevel::kError, message);
  std::fprintf(stderr, "strun-train: rank %d: %s\n", rank, message.c_str());
  return 1;
}

// The micro-batch step as CUDA graphs (step_graph.h) where they apply: CUDA with the kernels'
// ops table at tp = pp = 1; three steps run eagerly first.
Status PrepareGraphs(Run& run) {
  if (!run.cuda || run.tp != 1 || run.pp != 1) return {};
  if (&run.llama->ops() != model::CudaOps()) return {};
  try {
    run.graphs = MicroBatchGraphs::Create(run.device.device(), 3 * run.n_micro);
  } catch (const std::invalid_argument& e) {
    return MakeError(e.what());
  }
  if (run.graphs)
    run.Info0("The micro-batch step runs as a CUDA graph after this run's first three steps");
  return {};
}

Result<bool> Setup(Run& run) {
  if (!run.cuda && (run.dtype == at::kBFloat16 || run.dtype == at::kHalf)) {
    run.Info0(
        fmt::format("model.dtype is {} on CPU: this works but is slow; float32 is faster here",
                    DTypeName(run.config.model.dtype)));
  }
  // nanotron's set_random_seed(general.seed): libtorch seeds its default generators from
  // /dev/urandom otherwise, and two runs of one config would differ in their saved RNG states.
  at::manual_seed(static_cast<uint64_t>(run.config.general.seed));
  auto resume = FindResumePoint(run);
  if (!resume || !*resume) return resume;
  if (auto s = BuildProcessGroups(run); !s) return s.error();
  auto loaded = BuildModel(run);
  if (!loaded) return loaded.error();
  if (auto s = BuildOptimizer(run, *loaded); !s) return s.error();
  if (auto s = OpenData(run); !s) return s.error();
  if (auto s = PrepareCheckpoints(run); !s) return s.error();
  const at::TensorOptions f32 = run.device.dtype(at::kFloat);
  run.step_sums = at::zeros({2}, f32);
  run.loss_sum = run.step_sums[0];
  run.stop_votes = run.step_sums[1];
  if (auto s = PrepareGraphs(run); !s) return s.error();
  return true;
}

}  // namespace strun::train

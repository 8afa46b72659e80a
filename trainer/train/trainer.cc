#include "trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard: libtorch 2.x's ATen.h no longer brings it
#include <fmt/format.h>
#include <sys/statvfs.h>
#include <torch/version.h>

#ifdef STRUN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <chrono>
#include <cmath>
#include <ctime>
#include <mutex>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "communicator.h"
#include "data/dataset_store.h"
#include "data/sample_stream.h"
#include "file_sync.h"
#include "iteration_log.h"
#include "model/flat_buffer.h"
#include "model/grad_clip.h"
#include "model/hf_mapping.h"
#include "model/llama.h"
#include "model/lr_schedule.h"
#include "model/optimizer.h"
#include "fault_injection.h"
#include "stop_request.h"
#include "strun/launcher/progress.h"
#include "tensorboard_log.h"
#include "torchrun_env.h"

namespace strun::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// ---- devices -------------------------------------------------------------------------------

bool UseCuda() {
#ifdef STRUN_WITH_CUDA
  const char* want = std::getenv("STRUN_TRAIN_DEVICE");
  if (want && std::string(want) == "cpu") return false;
  return c10::cuda::device_count() > 0;
#else
  return false;
#endif
}

void SynchronizeDevice(bool cuda) {
#ifdef STRUN_WITH_CUDA
  if (cuda) c10::cuda::device_synchronize();
#else
  (void)cuda;
#endif
}

struct DeviceMemory {
  double allocated = 0, max_allocated = 0, max_reserved = 0;
};

DeviceMemory CudaMemory(bool cuda, int device) {
  DeviceMemory m;
#ifdef STRUN_WITH_CUDA
  if (cuda) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    m.allocated = static_cast<double>(stats.allocated_bytes[0].current);
    m.max_allocated = static_cast<double>(stats.allocated_bytes[0].peak);
    m.max_reserved = static_cast<double>(stats.reserved_bytes[0].peak);
  }
#else
  (void)cuda;
  (void)device;
#endif
  return m;
}

// ---- config -> model pieces -------------------------------------------------------------------

at::ScalarType ScalarTypeOf(DType d) {
  switch (d) {
    case DType::kFloat32: return at::kFloat;
    case DType::kFloat64: return at::kDouble;
    case DType::kFloat16: return at::kHalf;
    case DType::kBFloat16: return at::kBFloat16;
    default: return at::kFloat;
  }
}

model::LlamaModelConfig ModelConfigFrom(const Config& c) {
  const LlamaConfig& l = c.model.model_config;
  model::LlamaModelConfig m;
  m.hidden_size = l.hidden_size;
  m.intermediate_size = l.intermediate_size;
  m.num_attention_heads = l.num_attention_heads;
  m.num_key_value_heads = l.num_key_value_heads;
  m.num_hidden_layers = l.num_hidden_layers;
  m.vocab_size = PaddedVocabSize(c.model, /*tp=*/1);
  m.max_position_embeddings = l.max_position_embeddings;
  m.rms_norm_eps = l.rms_norm_eps;
  m.rope_theta = l.rope_theta;
  m.tie_word_embeddings = l.tie_word_embeddings;
  m.hidden_act = l.hidden_act;
  m.pad_token_id = l.pad_token_id;
  m.bos_token_id = l.bos_token_id;
  m.eos_token_id = l.eos_token_id;
  return m;
}

// nanotron's model_config.json (LlamaConfig as a dict), with the padded vocabulary.
std::string ModelConfigJson(const Config& c) {
  const LlamaConfig& l = c.model.model_config;
  nlohmann::json j = {{"bos_token_id", l.bos_token_id},
                      {"eos_token_id", l.eos_token_id},
                      {"hidden_act", l.hidden_act},
                      {"hidden_size", l.hidden_size},
                      {"initializer_range", l.initializer_range},
                      {"intermediate_size", l.intermediate_size},
                      {"is_llama_config", l.is_llama_config},
                      {"max_position_embeddings", l.max_position_embeddings},
                      {"num_attention_heads", l.num_attention_heads},
                      {"num_hidden_layers", l.num_hidden_layers},
                      {"num_key_value_heads", l.num_key_value_heads},
                      {"pretraining_tp", l.pretraining_tp},
                      {"rms_norm_eps", l.rms_norm_eps},
                      {"rope_theta", l.rope_theta},
                      {"tie_word_embeddings", l.tie_word_embeddings},
                      {"use_cache", l.use_cache},
                      {"vocab_size", PaddedVocabSize(c.model, 1)}};
  j["pad_token_id"] = l.pad_token_id ? nlohmann::json(*l.pad_token_id) : nlohmann::json();
  j["rope_scaling"] = nullptr;
  return j.dump(2);
}

model::LrScheduleOptions ScheduleOptionsFrom(const Config& c) {
  const LRSchedulerArgs& s = c.optimizer->learning_rate_scheduler;
  model::LrScheduleOptions o;
  o.learning_rate = s.learning_rate;
  o.lr_warmup_steps = s.lr_warmup_steps;
  o.lr_warmup_style = s.lr_warmup_style == WarmupStyle::kLinear ? model::WarmupStyle::kLinear
                                                                : model::WarmupStyle::kConstant;
  switch (s.lr_decay_style) {
    case DecayStyle::kLinear: o.lr_decay_style = model::DecayStyle::kLinear; break;
    case DecayStyle::kCosine: o.lr_decay_style = model::DecayStyle::kCosine; break;
    case DecayStyle::kOneMinusSqrt: o.lr_decay_style = model::DecayStyle::kOneMinusSqrt; break;
  }
  o.lr_decay_steps = s.lr_decay_steps;
  o.lr_decay_starting_step = s.lr_decay_starting_step;
  o.min_decay_lr = s.min_decay_lr;
  o.total_training_steps = c.tokens->train_steps;
  return o;
}

model::OptimizerOptions OptimizerOptionsFrom(const Config& c) {
  model::OptimizerOptions o;
  o.weight_decay = c.optimizer->weight_decay;
  if (const auto* adam = std::get_if<AdamWOptimizerArgs>(&c.optimizer->optimizer_factory)) {
    o.kind = model::OptimizerKind::kAdamW;
    o.adam_beta1 = adam->adam_beta1;
    o.adam_beta2 = adam->adam_beta2;
    o.adam_eps = adam->adam_eps;
  } else {
    o.kind = model::OptimizerKind::kSgd;
  }
  return o;
}

// Checks that concern how this process was started.
Status CheckParallelism(const Config& c, const TorchrunEnv& env) {
  const ParallelismArgs& p = c.parallelism;
  if (p.tp != 1) {
    return MakeError(fmt::format(
        "parallelism.tp is {}: tensor parallelism is not supported by strun-train yet; set "
        "parallelism.tp: 1 (and raise parallelism.dp to use the GPUs)",
        p.tp));
  }
  if (p.pp != 1) {
    return MakeError(fmt::format(
        "parallelism.pp is {}: pipeline parallelism is not supported by strun-train yet; set "
        "parallelism.pp: 1",
        p.pp));
  }
  if (p.expert_parallel_size != 1) {
    return MakeError(fmt::format(
        "parallelism.expert_parallel_size is {}: expert parallelism is not supported; set it to 1",
        p.expert_parallel_size));
  }
  const int64_t dp = env.world_size / (p.tp * p.pp);
  if (p.dp * p.tp * p.pp != env.world_size) {
    return MakeError(fmt::format(
        "parallelism.dp is {} but this job has WORLD_SIZE={} processes, so dp must be "
        "WORLD_SIZE / (tp * pp) = {}; set parallelism.dp: {} or start {} processes",
        p.dp, env.world_size, dp, dp, p.dp * p.tp * p.pp));
  }
  return {};
}

Result<std::vector<data::DataStage>> DataStagesFrom(const Config& c) {
  std::vector<data::DataStage> out;
  for (const auto& stage : *c.data_stages) {
    const auto* hf = std::get_if<PretrainDatasetsArgs>(&stage.data.dataset);
    if (!hf) {
      return MakeError("data_stages[" + stage.name +
                       "].data.dataset.dataset_folder (nanoset) is not supported by strun-train; "
                       "prepare the text with `strun-train prepare` and use "
                       "hf_dataset_or_datasets");
    }
    if (hf->hf_dataset_or_datasets.names.size() != 1) {
      return MakeError("data_stages[" + stage.name +
                       "].data.dataset.hf_dataset_or_datasets lists several datasets; "
                       "strun-train trains on one prepared dataset per stage");
    }
    auto base = data::ResolvePreparedDataset(hf->hf_dataset_or_datasets.names[0],
                                             hf->hf_dataset_config_name,
                                             hf->hf_dataset_splits.names);
    if (!base) {
      return MakeError("data_stages[" + stage.name + "]: " + base.error().message);
    }
    data::DataStage d;
    d.name = stage.name;
    d.start_training_step = stage.start_training_step;
    d.split_base = *base;
    d.seed = static_cast<uint64_t>(stage.data.seed);
    d.num_proc = hf->dataset_processing_num_proc_per_process;
    out.push_back(std::move(d));
  }
  return out;
}

// ---- the training state of one rank ------------------------------------------------------------

struct TrainState {
  model::FlatLayout layout;
  at::Tensor master;   // fp32, layout.numel(): the master weights (ZeRO-1: only our shard is ours)
  at::Tensor grads;    // fp32, layout.numel(): accumulated gradients
  int64_t shard_begin = 0, shard_end = 0;
  std::unique_ptr<model::Optimizer> optimizer;
  bool fused = false;     // Optimizer::FusedStep (the kernels' AdamW) instead of ATen ops
  at::Tensor params_flat;  // with `fused` and no ZeRO shard: the model's weights as one buffer
};

std::vector<at::Tensor> ParamGrads(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> g;
  g.reserve(params.size());
  for (const auto& p : params) g.push_back(p.grad());
  return g;
}

at::Tensor CpuRngState() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void SetCpuRngState(const at::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

double DiskBytes(int which) {
  struct statvfs s {};
  if (::statvfs("/", &s) != 0) return 0;
  double total = static_cast<double>(s.f_blocks) * s.f_frsize;
  double free = static_cast<double>(s.f_bavail) * s.f_frsize;
  double used = static_cast<double>(s.f_blocks - s.f_bfree) * s.f_frsize;
  return which == 0 ? total : which == 1 ? used : free;
}

}  // namespace

static int TrainImpl(const Config& config_in, const std::string& config_path,
                     const TrainOptions& options, launcher::ProgressReporter& progress) {
  using launcher::ProgressPhase;
  Config config = config_in;
  auto env = ReadTorchrunEnv();
  if (!env) {
    std::fprintf(stderr, "strun-train: %s\n", env.error().message.c_str());
    return 2;
  }
  if (auto s = ValidateForTraining(config); !s) {
    std::fprintf(stderr, "strun-train: %s: %s\n", config_path.c_str(), s.error().message.c_str());
    return 2;
  }
  if (auto s = CheckParallelism(config, *env); !s) {
    std::fprintf(stderr, "strun-train: %s: %s\n", config_path.c_str(), s.error().message.c_str());
    return 2;
  }
  const bool cuda = UseCuda();
#ifdef STRUN_WITH_CUDA
  if (cuda) c10::cuda::set_device(static_cast<c10::DeviceIndex>(env->local_rank));
#endif
  auto comm_or = Communicator::Create(
      *env, cuda ? Communicator::Backend::kNccl : Communicator::Backend::kGloo,
      std::chrono::seconds(600));
  if (!comm_or) {
    std::fprintf(stderr, "strun-train: %s\n", comm_or.error().message.c_str());
    return 3;
  }
  Communicator& comm = **comm_or;
  const int rank = comm.rank();
  const int dp = comm.size();
  const LoggingArgs& logging = *config.logging;
  auto level = ParseLogLevel(rank == 0 ? logging.log_level : logging.log_level_replica);
  TrainLogger log(level ? *level : LogLevel::kInfo, rank);
  // Errors are reported by every rank (they may differ), info by rank 0 only as nanotron does.
  auto fail = [&](const std::string& msg) {
    log.Log(LogLevel::kError, msg);
    std::fprintf(stderr, "strun-train: rank %d: %s\n", rank, msg.c_str());
    return 1;
  };
  auto info0 = [&](const std::string& msg) {
    if (rank == 0) log.Info(msg);
  };

  const TokensArgs& tokens = *config.tokens;
  const CheckpointsArgs& ckpt = *config.checkpoints;
  const bool zero = config.optimizer->zero_stage > 0;
  const int64_t mbs = tokens.micro_batch_size;
  const int64_t n_micro = tokens.batch_accumulation_per_replica;
  const int64_t gbs = mbs * n_micro * dp;
  const int64_t seq = tokens.sequence_length;
  at::TensorOptions dev = at::TensorOptions().device(cuda ? at::Device(at::kCUDA, env->local_rank)
                                                          : at::Device(at::kCPU));
  const at::ScalarType dtype = ScalarTypeOf(config.model.dtype);
  if (!cuda && (dtype == at::kBFloat16 || dtype == at::kHalf)) {
    info0(fmt::format("model.dtype is {} on CPU: this works but is slow; float32 is faster here",
                      DTypeName(config.model.dtype)));
  }
  const model::LlamaModelConfig mc = ModelConfigFrom(config);
  // nanotron's set_random_seed(general.seed): libtorch seeds its default generators from
  // /dev/urandom otherwise, and two runs of one config would differ in their saved RNG states.
  at::manual_seed(static_cast<uint64_t>(config.general.seed));

  // ---- resume point ----
  TrainingMetadata meta;
  for (const auto& s : *config.data_stages) meta.data_stages.push_back({s.name, s.start_training_step, 0});
  std::optional<std::string> resume_dir;
  if (ckpt.resume_checkpoint_path) {
    auto r = ResolveResumeDirectory(*ckpt.resume_checkpoint_path);
    if (!r) return fail("checkpoints.resume_checkpoint_path: " + r.error().message);
    resume_dir = *r;
    if (!resume_dir) {
      info0("No previous checkpoint found in: " + *ckpt.resume_checkpoint_path + "/latest.txt");
    }
  }
  if (resume_dir) {
    auto m = ReadTrainingMetadata(*resume_dir);
    if (!m) return fail(m.error().message);
    if (m->last_train_step >= tokens.train_steps) {
      info0(fmt::format(
          "Training already finished: checkpoint {} is at step {} and tokens.train_steps is {}; "
          "nothing to do (raise tokens.train_steps to train further)",
          *resume_dir, m->last_train_step, tokens.train_steps));
      comm.Barrier();
      return 0;
    }
    if (m->data_stages.size() != meta.data_stages.size()) {
      return fail(fmt::format("checkpoint {} has {} data stages but the config has {}; resume "
                              "with the data_stages it was trained with",
                              *resume_dir, m->data_stages.size(), meta.data_stages.size()));
    }
    meta = *m;
  }

  // ---- model ----
  info0("Config:\n" + DumpConfig(config));
  auto model_or = model::Llama::Create(mc, dev.dtype(dtype));
  if (!model_or) return fail(config_path + ": " + model_or.error().message);
  model::Llama& llama = *model_or;
  const int64_t nparams = llama.NumParameters();
  info0("Model Config:\n" + ModelConfigJson(config));
  info0(fmt::format("Total number of parameters: {} ({:.2f}MiB)", HumanFormat(double(nparams)),
                    double(nparams) * c10::elementSize(dtype) / (1024.0 * 1024.0)));
  if (rank == 0) {
    log.Info(fmt::format("Local number of parameters: {} ({:.2f}MiB)", HumanFormat(double(nparams)),
                         double(nparams) * c10::elementSize(dtype) / (1024.0 * 1024.0)));
  }
  std::vector<std::string> names;
  for (const auto& [n, t] : llama.NamedParameters()) names.push_back(n);

  CheckpointState loaded;
  if (resume_dir) {
    info0("Loading weights from " + *resume_dir);
    CheckpointLoadOptions lo;
    lo.rank = rank;
    lo.dp_rank = rank;
    lo.dp = dp;
    lo.zero_sharded_optimizer = zero;
    lo.load_optimizer = ckpt.load_optimizer;
    auto st = LoadCheckpoint(*resume_dir, lo, names);
    if (!st) return fail(st.error().message);
    loaded = std::move(*st);
    if (!loaded.checksums_verified) {
      log.Warning("checkpoint " + *resume_dir + " has no checksums/ (written by an older "
                  "strun-train): its files are loaded without verifying them");
    }
    if (auto s = llama.LoadNamedParameters(loaded.model); !s) {
      return fail("checkpoint " + *resume_dir + ": " + s.error().message);
    }
  } else if (const auto* init = std::get_if<RandomInit>(&config.model.init_method)) {
    info0("No checkpoint path provided.");
    llama.InitRandomly({init->std, static_cast<uint64_t>(config.general.seed)});
  } else if (const auto* existing = std::get_if<ExistingCheckpointInit>(&config.model.init_method)) {
    auto dir = ResolveResumeDirectory(existing->path);
    if (!dir || !*dir) {
      return fail("model.init_method.path: no checkpoint at " + existing->path);
    }
    info0("Loading weights from " + **dir);
    CheckpointLoadOptions lo;
    lo.load_optimizer = false;
    auto st = LoadCheckpoint(**dir, lo, names);
    if (!st) return fail(st.error().message);
    if (auto s = llama.LoadNamedParameters(st->model); !s) return fail(s.error().message);
  } else {
    return fail("model.init_method.use_mup (spectral µP) is not supported by strun-train; use "
                "init_method: {std: ...}");
  }

  // ---- optimizer over flat fp32 master weights ----
  TrainState ts;
  const std::vector<at::Tensor> params = llama.Parameters();
  ts.layout = model::FlatLayout(llama.NamedParameters(), zero ? dp : 1);
  const at::TensorOptions f32 = dev.dtype(at::kFloat);
  ts.master = ts.layout.NewBuffer(f32);
  ts.grads = ts.layout.NewBuffer(f32);
  ts.layout.Pack(params, ts.master);
  std::tie(ts.shard_begin, ts.shard_end) =
      zero ? ts.layout.ShardRange(rank, dp) : std::pair<int64_t, int64_t>(0, ts.layout.numel());
  const int64_t shard_len = ts.shard_end - ts.shard_begin;
  ts.optimizer = std::make_unique<model::Optimizer>(
      OptimizerOptionsFrom(config),
      std::vector<model::OptimizedTensor>{{"flat", ts.master.narrow(0, ts.shard_begin, shard_len),
                                           ts.grads.narrow(0, ts.shard_begin, shard_len)}});
  const std::string optimizer_type =
      OptimizerOptionsFrom(config).kind == model::OptimizerKind::kAdamW ? "AdamW" : "SGD";
  // The fused AdamW also writes the bf16 weights where this rank updates all of them: they become
  // views of one flat buffer laid out as the master weights, and no Unpack is needed.
  ts.fused = model::Optimizer::CanFuse(OptimizerOptionsFrom(config), llama.ops());
  if (ts.fused && shard_len == ts.layout.numel()) {
    ts.params_flat = ts.layout.NewBuffer(dev.dtype(dtype));
    ts.layout.Alias(params, ts.params_flat);
  }
  info0(fmt::format("Ops: {}{}", llama.ops().name, ts.fused ? " (fused AdamW)" : ""));
  model::LrSchedule schedule(ScheduleOptionsFrom(config));
  if (resume_dir && ckpt.load_optimizer) {
    model::NamedTensors state;
    at::Tensor master_shard;
    for (auto& [n, t] : loaded.optimizer) {
      if (n == "flat.master") {
        master_shard = t;
      } else {
        state.emplace_back(n, t.to(n == "step" ? at::TensorOptions().dtype(at::kLong) : f32));
      }
    }
    if (!master_shard.defined() || master_shard.numel() != shard_len) {
      return fail("checkpoint " + *resume_dir +
                  ": optimizer master weights missing or of another size (was it written for a "
                  "different model or dp?)");
    }
    if (auto s = ts.optimizer->LoadStateDict(state); !s) {
      return fail("checkpoint " + *resume_dir + ": " + s.error().message);
    }
    ts.master.narrow(0, ts.shard_begin, shard_len).copy_(master_shard.to(f32));
  }
  if (resume_dir && loaded.rng_state.defined()) SetCpuRngState(loaded.rng_state);

  // ---- data ----
  auto stages = DataStagesFrom(config);
  if (!stages) return fail(stages.error().message);
  data::StagedStreamOptions so;
  so.sequence_length = seq;
  so.micro_batch_size = mbs;
  so.dp_rank = rank;
  so.dp_size = dp;
  so.max_vocab_size = mc.vocab_size;
  std::vector<int64_t> consumed;
  for (const auto& s : meta.data_stages) consumed.push_back(s.consumed_train_samples);
  auto stream_or = data::StagedSampleStream::Open(*stages, so, consumed);
  if (!stream_or) return fail(stream_or.error().message);
  data::StagedSampleStream& stream = **stream_or;
  if (auto s = stream.CheckSufficient(tokens.train_steps, n_micro); !s) return fail(s.error().message);

  // ---- checkpoint writer ----
  SaveOptions save;
  save.checkpoints_path = ckpt.checkpoints_path;
  save.zero_sharded_optimizer = zero;
  save.shared_file_system = ckpt.checkpoints_path_is_shared_file_system;
  save.local_rank = env->local_rank;
  save.model_config_json = ModelConfigJson(config);
  save.q_rows = mc.num_attention_heads * mc.head_dim();
  save.kv_rows = mc.num_key_value_heads * mc.head_dim();
  save.intermediate = mc.intermediate_size;
  auto save_checkpoint = [&](int64_t step) -> Status {
    progress.Report(ProgressPhase::kCheckpoint, step);
    save.step = step;
    config.general.step = meta.last_train_step;
    config.general.consumed_train_samples = meta.consumed_train_samples;
    save.config_yaml = DumpConfig(config);
    info0(fmt::format("Saving checkpoint at {}/{}", ckpt.checkpoints_path, step));
    CheckpointState st;
    st.metadata = meta;
    for (auto& [n, t] : llama.NamedParameters()) st.model.emplace_back(n, t);
    for (auto& [n, t] : ts.optimizer->StateDict()) st.optimizer.emplace_back(n, t);
    st.optimizer.emplace_back("flat.master", ts.master.narrow(0, ts.shard_begin, shard_len));
    st.optimizer_step = ts.optimizer->step();
    st.optimizer_type = optimizer_type;
    st.scheduler_step = meta.last_train_step;
    st.rng_state = CpuRngState();
    return SaveCheckpoint(comm, save, st);
  };
  // Temporary folders of writes that a killed process left would fill the disk for every retry.
  // The writer ranks remove them before any rank of this run writes; the barrier keeps it so.
  if (ckpt.checkpoints_path_is_shared_file_system ? rank == 0 : env->local_rank == 0) {
    auto removed = RemoveStaleCheckpointTemporaries(ckpt.checkpoints_path);
    if (!removed) return fail(removed.error().message);
    for (const auto& n : *removed) {
      log.Warning(fmt::format("removed {}/{}, left by an interrupted checkpoint write",
                              ckpt.checkpoints_path, n));
    }
  }
  comm.Barrier();
  if (ckpt.save_initial_state && !resume_dir) {
    if (auto s = save_checkpoint(0); !s) return fail(s.error().message);
  }

  info0(fmt::format(
      "[Start training] datetime: {} | mbs: {} | grad_accum: {} | global_batch_size: {} | "
      "sequence_length: {} | train_steps: {} | start_iteration_step: {} | "
      "consumed_train_samples: {}",
      [] {
        auto now = std::chrono::system_clock::now();
        std::time_t t = std::chrono::system_clock::to_time_t(now);
        std::tm tm{};
        localtime_r(&t, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
        return fmt::format("{}.{:06d}", buf, us);
      }(),
      mbs, n_micro, gbs, seq, tokens.train_steps, meta.last_train_step,
      meta.consumed_train_samples));
  // Rank 0's loss curves (tensorboard_log.h): nothing for the steps the resumed checkpoint has.
  std::unique_ptr<TensorBoardLog> tensorboard;
  if (rank == 0 && !options.tensorboard_dir.empty()) {
    tensorboard = TensorBoardLog::Open(options.tensorboard_dir, config.general.run,
                                       resume_dir ? meta.last_train_step : -1,
                                       [&log](const std::string& m) { log.Warning(m); });
    if (tensorboard) tensorboard->Config(DumpConfig(config));
  }

  // ---- the loop ----
  FlopsShape shape{mc.num_hidden_layers, mc.hidden_size, mc.num_attention_heads,
                   mc.num_key_value_heads, mc.vocab_size, mc.intermediate_size};
  const double step_flops = LlamaTrainingFlops(shape, seq, gbs);
  const int64_t bucket_elems =
      std::max<int64_t>(1, config.model.ddp_bucket_cap_mb * 1024 * 1024 / 4);
  const std::optional<double> clip = config.optimizer->clip_grad;
  // [loss, stop votes]: the pre-emption vote rides on the loss all-reduce, so that every rank
  // stops after the same step without a collective of its own.
  at::Tensor step_sums = at::zeros({2}, f32);
  at::Tensor loss_sum = step_sums[0];
  at::Tensor stop_votes = step_sums[1];
  bool stop_noticed = false;
  at::Tensor grad_norm;
  size_t current_stage = SIZE_MAX;
  int64_t last_saved = resume_dir ? meta.last_train_step : -1;
  const int64_t resumed_step = last_saved;
  double last_tokens_per_sec = 0, last_model_tflops = 0;
  at::Tensor gathered_shard;
  for (int64_t step = meta.last_train_step + 1; step <= tokens.train_steps; ++step) {
    const auto t0 = Clock::now();
    const size_t stage = stream.StageFor(step);
    if (stage != current_stage) {
      if (current_stage != SIZE_MAX) {
        info0(fmt::format("[Training Stage: {}] Clearing the previous training stage's dataloader "
                          "and datasets from memory",
                          (*stages)[stage].name));
      }
      info0(fmt::format("[Training Stage: {}] start from step {}", (*stages)[stage].name, step));
      current_stage = stage;
    }
    loss_sum.zero_();
    for (int64_t micro = 0; micro < n_micro; ++micro) {
      auto batch = stream.Next(step);
      if (!batch) return fail(batch.error().message);
      at::Tensor cpu = at::from_blob(batch->data(), {mbs, seq + 1}, at::kInt).to(at::kLong);
      // Pinned and asynchronous: the copy does not wait for the device to drain.
      at::Tensor ids = cuda ? cpu.pin_memory().to(dev.device(), at::kLong, /*non_blocking=*/true)
                            : cpu;
      at::Tensor input = ids.narrow(1, 0, seq);
      at::Tensor labels = ids.narrow(1, 1, seq);
      at::Tensor mask = at::ones({mbs, seq}, dev.dtype(at::kBool));
      at::Tensor loss = llama.Loss(input, labels, mask).div(static_cast<double>(n_micro));
      loss.backward();
      {
        c10::NoGradGuard no_grad;
        ts.layout.Accumulate(ParamGrads(params), ts.grads);
        loss_sum.add_(loss.detach().to(at::kFloat));
      }
      llama.ZeroGrad();
    }
    c10::NoGradGuard no_grad;
    MaybeInjectWatchdogAbort(step, rank);  // tests only (fault_injection.h)
    // DP mean of the gradients, bucket by bucket, and of the loss (nanotron: ReduceOp.AVG).
    for (int64_t b = 0; b < ts.grads.numel(); b += bucket_elems) {
      at::Tensor bucket = ts.grads.narrow(0, b, std::min(bucket_elems, ts.grads.numel() - b));
      comm.AllReduceMean(bucket);
    }
    const int stop_signal = StopSignal();
    if (stop_signal != 0 && !stop_noticed) {
      stop_noticed = true;
      log.Warning(step < tokens.train_steps
                      ? fmt::format("{} received: every rank checkpoints after step {} and exits",
                                    StopSignalName(stop_signal), step)
                      : fmt::format("{} received during the last step: the run ends as usual",
                                    StopSignalName(stop_signal)));
    }
    stop_votes.fill_(stop_signal != 0 ? 1.0 : 0.0);
    comm.AllReduceMean(step_sums);  // a mean, but any rank's vote makes it > 0
    const double lr = schedule.LearningRateAt(step);
    if (ts.fused) {
      // One pass: the clipping scale (kept on the device), AdamW, grads zeroed, bf16 weights.
      at::Tensor scale;
      if (clip) {
        grad_norm = model::GradNormSquared({ts.grads}).pow(0.5);
        scale = model::ClipCoefficient(grad_norm, *clip);
      }
      ts.optimizer->FusedStep(llama.ops(), lr, scale, {ts.params_flat});
    } else {
      if (clip) grad_norm = model::ClipGradNorm({ts.grads}, *clip);
      ts.optimizer->Step(lr);
      ts.grads.zero_();
    }
    if (zero && dp > 1) {
      gathered_shard = ts.master.narrow(0, ts.shard_begin, shard_len).clone();
      comm.AllGather(gathered_shard, ts.master);
    }
    if (!ts.params_flat.defined()) ts.layout.Unpack(ts.master, params);
    // The step's one host read: [loss, stop votes, grad norm]. All three are DP-reduced, so every
    // rank sees the same values and stops after the same step.
    const at::Tensor step_host =
        (clip ? at::cat({step_sums, grad_norm.reshape({1}).to(at::kFloat)}) : step_sums).cpu();
    const float step_loss = step_host[0].item<float>();
    const bool stop_voted = step_host[1].item<float>() > 0;
    if (!std::isfinite(step_loss) || (clip && !std::isfinite(step_host[2].item<float>()))) {
      // Nothing of this step may reach a checkpoint: latest.txt keeps naming the last good one.
      return fail(fmt::format(
          "step {}: lm_loss is {}{}: training stops without writing a checkpoint (the last one "
          "is {}). If resuming from it stops here again, its weights are damaged: resume from an "
          "earlier checkpoint; otherwise training diverged: lower "
          "optimizer.learning_rate_scheduler.learning_rate (or set optimizer.clip_grad) and resume",
          step, step_loss,
          clip ? fmt::format(", grad_norm is {}", step_host[2].item<float>()) : std::string(),
          last_saved < 0                     ? std::string("none (this run wrote none yet)")
          : resume_dir && last_saved == resumed_step ? *resume_dir
                                                     : fmt::format("{}/{}", ckpt.checkpoints_path,
                                                                   last_saved)));
    }

    meta.consumed_train_samples += gbs;
    meta.last_train_step = step;
    meta.last_stage_idx = static_cast<int64_t>(stage);
    meta.data_stages[stage].consumed_train_samples += gbs;
    progress.Report(ProgressPhase::kTraining, step);

    if (log.Enabled(LogLevel::kDebug)) {
      // Full precision for comparing runs (the iteration line has 3 significant digits).
      log.Log(LogLevel::kDebug,
              fmt::format("step {} lm_loss {:.9e} grad_norm {:.9e} lr {:.9e}", step,
                          loss_sum.item<double>(), clip ? grad_norm.item<double>() : 0.0, lr));
    }
    if ((step - 1) % logging.iteration_step_info_interval == 0) {
      comm.Barrier();
      SynchronizeDevice(cuda);
      const double elapsed_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      const double tokens_per_sec = double(gbs) * double(seq) / (elapsed_ms / 1000.0);
      const double model_tflops = step_flops / ((elapsed_ms / 1000.0) * env->world_size * 1e12);
      last_tokens_per_sec = tokens_per_sec;
      last_model_tflops = model_tflops;
      std::vector<LogItem> items = {
          {"consumed_tokens", double(meta.consumed_train_samples) * double(seq)},
          {"elapsed_time_per_iteration_ms", elapsed_ms},
          {"tokens_per_sec", tokens_per_sec},
          {"tokens_per_sec_per_gpu", tokens_per_sec / env->world_size},
          {"global_batch_size", double(gbs)},
          {"lm_loss", loss_sum.item<double>()},
          {"lr", lr},
          {"model_tflops_per_gpu", model_tflops},
          {"hardware_tflops_per_gpu", model_tflops}};
      if (clip) items.push_back({"grad_norm", grad_norm.item<double>()});
      if (step < 5 || (step - 1) % ckpt.checkpoint_interval == 0) {
        if (cuda) {
          DeviceMemory m = CudaMemory(cuda, env->local_rank);
          items.push_back({"cuda_memory_allocated", m.allocated});
          items.push_back({"cuda_max_memory_reserved", m.max_reserved});
        }
        items.push_back({"hd_total_memory_tb", DiskBytes(0)});
        items.push_back({"hd_used_memory_tb", DiskBytes(1)});
        items.push_back({"hd_free_memory_tb", DiskBytes(2)});
      }
      log.Info(FormatIterationLine(step, tokens.train_steps, items));
      if (tensorboard) tensorboard->Step(step, items);
    }
    if (step % ckpt.checkpoint_interval == 0) {
      if (auto s = save_checkpoint(step); !s) return fail(s.error().message);
      last_saved = step;
    }
    // After the last step a stop request changes nothing: the run ends as it would have.
    if (step < tokens.train_steps && stop_voted) {
      if (last_saved != step) {
        if (auto s = save_checkpoint(step); !s) return fail(s.error().message);
        last_saved = step;
      }
      progress.Report(ProgressPhase::kPreempted, step);
      info0(fmt::format(
          "Pre-emption ({}): checkpoint of step {} written to {}/{}; exiting so the job can be "
          "requeued",
          StopSignal() != 0 ? StopSignalName(StopSignal()) : "signal received by another rank", step,
          ckpt.checkpoints_path, step));
      return 0;
    }
  }
  if (ckpt.save_final_state && last_saved != meta.last_train_step && meta.last_train_step > 0) {
    if (auto s = save_checkpoint(meta.last_train_step); !s) return fail(s.error().message);
  }
  if (config.general.benchmark_csv_path && rank == 0) {
    BenchmarkRow row;
    const char* job = std::getenv("SLURM_JOB_ID");
    row.job_id = job ? job : "N/A";
    row.name = config.general.run;
    row.seq_len = seq;
    row.mbs = mbs;
    row.batch_accum = n_micro;
    row.gbs = gbs;
    row.model_tflops = row.hardware_tflops = last_model_tflops;
    row.tokens_per_sec_per_gpu = last_tokens_per_sec / env->world_size;
    DeviceMemory m = CudaMemory(cuda, env->local_rank);
    row.mem_alloc_gb = m.max_allocated / (1024.0 * 1024 * 1024);
    row.mem_res_gb = m.max_reserved / (1024.0 * 1024 * 1024);
    if (auto s = AppendBenchmarkCsv(*config.general.benchmark_csv_path, row); !s) {
      return fail(s.error().message);
    }
  }
  comm.Barrier();
  info0(fmt::format("Training finished at step {} (consumed_train_samples: {})",
                    meta.last_train_step, meta.consumed_train_samples));
  return 0;
}

int Train(const Config& config, const std::string& config_path, const TrainOptions& options) {
  // Before anything slow (rendezvous, data, model): the agent's start-up timeout starts now, and a
  // pre-emption signal that comes while loading is answered after the first step.
  launcher::ProgressReporter progress;
  progress.Report(launcher::ProgressPhase::kStartup);
  if (auto s = InstallStopSignalHandlers(); !s) {
    std::fprintf(stderr, "strun-train: %s\n", s.error().message.c_str());
    return 1;
  }
  // libtorch reports failures (a peer that died during a collective, out of memory) as
  // exceptions: print them without the C++ backtrace and exit non-zero.
  try {
    return TrainImpl(config, config_path, options, progress);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "strun-train: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strun-train: %s\n", e.what());
  }
  return 1;
}

Status ExportHuggingFace(const std::string& checkpoint, const std::string& output) {
  auto dir = ResolveResumeDirectory(checkpoint);
  if (!dir) return dir.error();
  if (!*dir) {
    return MakeError("--checkpoint " + checkpoint +
                     ": not a checkpoint (no latest.txt and no checkpoint_metadata.json)");
  }
  auto config = LoadConfig(**dir + "/config.yaml");
  if (!config) return config.error();
  const model::LlamaModelConfig mc = ModelConfigFrom(*config);
  auto model = model::Llama::Create(mc, at::TensorOptions().dtype(at::kFloat));
  if (!model) return MakeError(**dir + "/config.yaml: " + model.error().message);
  std::vector<std::string> names;
  for (const auto& [n, t] : model->NamedParameters()) names.push_back(n);
  CheckpointLoadOptions lo;
  lo.load_optimizer = false;
  auto st = LoadCheckpoint(**dir, lo, names);
  if (!st) return st.error();
  model::NamedTensors nt(st->model.begin(), st->model.end());
  auto hf = model::ToHuggingFace(mc, nt);
  if (!hf) return hf.error();
  std::error_code ec;
  fs::create_directories(output, ec);
  if (ec) return MakeError("--output " + output + ": " + ec.message());
  at::ScalarType saved = st->model.empty() ? at::kFloat : st->model[0].second.scalar_type();
  std::string dtype_name = saved == at::kBFloat16 ? "bfloat16"
                           : saved == at::kHalf   ? "float16"
                           : saved == at::kDouble ? "float64"
                                                  : "float32";
  NamedTensorList out(hf->begin(), hf->end());
  if (auto s = WriteTensorsSafetensors(output + "/model.safetensors", out, {{"format", "pt"}}); !s) {
    return s;
  }
  return WriteFileSynced(output + "/config.json",
                         model::HuggingFaceConfigJson(mc, dtype_name).dump(2) + "\n");
}

Status WriteLogits(const std::string& checkpoint, const std::string& input_ids,
                   const std::string& output) {
  auto dir = ResolveResumeDirectory(checkpoint);
  if (!dir) return dir.error();
  if (!*dir) return MakeError("--checkpoint " + checkpoint + ": not a checkpoint");
  auto config = LoadConfig(**dir + "/config.yaml");
  if (!config) return config.error();
  const model::LlamaModelConfig mc = ModelConfigFrom(*config);
  const bool cuda = UseCuda();
  at::TensorOptions opts = at::TensorOptions()
                               .dtype(ScalarTypeOf(config->model.dtype))
                               .device(cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU));
  auto model = model::Llama::Create(mc, opts);
  if (!model) return model.error();
  std::vector<std::string> names;
  for (const auto& [n, t] : model->NamedParameters()) names.push_back(n);
  CheckpointLoadOptions lo;
  lo.load_optimizer = false;
  auto st = LoadCheckpoint(**dir, lo, names);
  if (!st) return st.error();
  if (auto s = model->LoadNamedParameters(st->model); !s) return s;
  auto ids = TensorFromSafetensors(input_ids, "input_ids");
  if (!ids) return ids.error();
  c10::NoGradGuard no_grad;
  at::Tensor logits = model->Logits(ids->to(at::kLong).to(opts.device())).to(at::kFloat).cpu();
  return WriteTensorsSafetensors(output, {{"logits", logits}}, {});
}

}  // namespace strun::train

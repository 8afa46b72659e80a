#include "config/load_for_training.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <variant>

#include "config/elastic_dp.h"

namespace strun::train {
namespace {

// What tensor parallelism splits must split evenly (nanotron asserts the same when it builds the
// model); the vocabulary is padded for tp (PaddedVocabSize), so it always does.
Status CheckTensorParallel(const Config& c) {
  const int64_t tp = c.parallelism.tp;
  if (tp == 1) return {};
  const LlamaConfig& m = c.model.model_config;
  auto check = [&](int64_t n, const char* key) -> Status {
    if (n % tp == 0) return {};
    return MakeError(
        fmt::format("model.model_config.{} is {} but parallelism.tp is {}: tensor parallelism "
                    "splits it evenly over the tp ranks; set parallelism.tp to a divisor of {}",
                    key, n, tp, n));
  };
  if (auto s = check(m.num_attention_heads, "num_attention_heads"); !s) return s;
  if (auto s = check(m.num_key_value_heads, "num_key_value_heads"); !s) return s;
  if (auto s = check(m.intermediate_size, "intermediate_size"); !s) return s;
  if (c.parallelism.tp_mode == TensorParallelLinearMode::kReduceScatter &&
      c.tokens->sequence_length % tp != 0) {
    return MakeError(fmt::format(
        "tokens.sequence_length is {} but parallelism.tp is {} with tp_mode reduce_scatter "
        "(sequence parallelism splits the sequence over the tp ranks); use a sequence length "
        "divisible by tp or tp_mode: all_reduce",
        c.tokens->sequence_length, tp));
  }
  return {};
}

Status CheckParallelism(const ParallelismArgs& p, int64_t world_size) {
  if (p.expert_parallel_size != 1) {
    return MakeError(fmt::format(
        "parallelism.expert_parallel_size is {}: expert parallelism is not supported; set it to 1",
        p.expert_parallel_size));
  }
  if (world_size % (p.tp * p.pp) != 0) {
    return MakeError(fmt::format(
        "parallelism.tp ({}) * parallelism.pp ({}) = {} does not divide WORLD_SIZE={}: the job "
        "needs dp * tp * pp = {} processes; start that many or lower parallelism.tp",
        p.tp, p.pp, p.tp * p.pp, world_size, p.dp * p.tp * p.pp));
  }
  const int64_t dp = world_size / (p.tp * p.pp);
  if (p.dp * p.tp * p.pp != world_size) {
    return MakeError(
        fmt::format("parallelism.dp is {} but this job has WORLD_SIZE={} processes, so dp must be "
                    "WORLD_SIZE / (tp * pp) = {}; set parallelism.dp: {} or start {} processes",
                    p.dp, world_size, dp, dp, p.dp * p.tp * p.pp));
  }
  return {};
}

// nanotron's OneForwardOneBackward asserts as many micro-batches as warm-up forwards.
Status CheckPipelineParallel(const Config& c) {
  const ParallelismArgs& p = c.parallelism;
  if (p.pp > 1 && p.pp_engine == PipelineEngine::kOneForwardOneBackward &&
      c.tokens->batch_accumulation_per_replica < p.pp - 1) {
    return MakeError(fmt::format(
        "tokens.batch_accumulation_per_replica is {} but parallelism.pp_engine 1f1b with "
        "parallelism.pp {} needs at least pp - 1 = {} micro-batches per step; raise it or use "
        "pp_engine: afab",
        c.tokens->batch_accumulation_per_replica, p.pp, p.pp - 1));
  }
  return {};
}

// strun-train reads prepared token files (data/dataset_store.h), one dataset per stage.
Status CheckDataStages(const std::vector<DatasetStageArgs>& stages) {
  for (const auto& stage : stages) {
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
  }
  return {};
}

}  // namespace

Status CheckSupported(const Config& c, int64_t world_size) {
  if (auto s = CheckParallelism(c.parallelism, world_size); !s) return s;
  if (auto s = CheckTensorParallel(c); !s) return s;
  if (auto s = CheckPipelineParallel(c); !s) return s;
  if (std::holds_alternative<SpectralMupInit>(c.model.init_method)) {
    return MakeError(
        "model.init_method.use_mup (spectral µP) is not supported by strun-train; use "
        "init_method: {std: ...}");
  }
  return CheckDataStages(*c.data_stages);
}

Result<Config> LoadForTraining(const std::string& path, std::optional<int64_t> world_size) {
  auto config = LoadConfig(path);
  if (!config) return config.error();
  // "config" as the source: the messages read "FILE: config: KEY ..." as they always did.
  if (auto s = ValidateForTraining(*config); !s) return MakeError(path + ": " + s.error().message);
  if (world_size) {
    // strund's request to train at another dp with the same global batch (elastic_dp.h).
    auto env = [](const char* name) {
      const char* v = std::getenv(name);
      return v ? std::optional<std::string>(v) : std::nullopt;
    };
    auto change = ApplyElasticDp(*config, *world_size, env(kElasticDpVariable),
                                 env(kElasticMicroBatchesVariable));
    if (!change) return MakeError(path + ": " + change.error().message);
    const char* rank = std::getenv("RANK");
    if (*change && (rank == nullptr || std::string(rank) == "0")) {
      std::fprintf(stderr, "strun-train: %s\n",
                   DescribeElasticDp(**change, config->tokens->micro_batch_size).c_str());
    }
    if (auto s = CheckSupported(*config, *world_size); !s) {
      return MakeError(path + ": " + s.error().message);
    }
  }
  return config;
}

}  // namespace strun::train

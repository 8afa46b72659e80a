// config/elastic_dp.h: running at another data-parallel size than the config says, only when
// strund asks for it.
//
// When a node is lost and no spare is left, strund (daemon/README.md, "Continuing on fewer
// nodes") relaunches the job on the remaining nodes with STRUN_ELASTIC_DP=<dp> in the launch
// environment. strun-train then trains at dp = WORLD_SIZE / (tp * pp), which must equal <dp>, and
// keeps the global batch: batch_accumulation_per_replica becomes old_dp * old_acc / new_dp
// (micro_batch_size, tp and pp stay). Because nanotron's sampler (data/sampler.h) hands step s the
// samples at positions [s * gbs, (s + 1) * gbs) of one permutation whatever dp is, the run trains
// the same samples in the same steps, from the same consumed_train_samples. Without the variable
// a WORLD_SIZE that does not match parallelism.dp stays an error (load_for_training.h): the
// layout never changes silently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"
#include "strun/result.h"

namespace strun::train {

// The variable strund sets; its value is the data-parallel size it launched for.
inline constexpr char kElasticDpVariable[] = "STRUN_ELASTIC_DP";
// Set beside it: the micro-batches per step strund keeps (its --micro-batches), which must equal
// the config's parallelism.dp * tokens.batch_accumulation_per_replica.
inline constexpr char kElasticMicroBatchesVariable[] = "STRUN_ELASTIC_MICRO_BATCHES";

struct ElasticDpChange {
  int64_t old_dp = 0, new_dp = 0;
  int64_t old_accumulation = 0, new_accumulation = 0;
};

// With `requested` (STRUN_ELASTIC_DP's value; nullopt: unset, nothing changes) rewrites
// parallelism.dp and tokens.batch_accumulation_per_replica of `config` for `world_size`
// processes. Returns the change (nullopt when unset or when dp stays). Errors name the variable,
// the keys and the numbers: a value that is not a positive integer or differs from
// WORLD_SIZE / (tp * pp), a world size that tp * pp does not divide, a global batch
// (dp * batch_accumulation_per_replica micro-batches) that the new dp does not divide or that
// differs from `micro_batches` (STRUN_ELASTIC_MICRO_BATCHES's value, checked when set).
Result<std::optional<ElasticDpChange>> ApplyElasticDp(
    Config& config, int64_t world_size, const std::optional<std::string>& requested,
    const std::optional<std::string>& micro_batches = std::nullopt);

// "STRUN_ELASTIC_DP=1 (strund continues on fewer nodes): parallelism.dp 2 -> 1,
// tokens.batch_accumulation_per_replica 1 -> 2, global batch 4 samples unchanged"
std::string DescribeElasticDp(const ElasticDpChange& change, int64_t micro_batch_size);

}  // namespace strun::train

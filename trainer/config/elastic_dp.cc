#include "config/elastic_dp.h"

#include <fmt/format.h>

namespace strun::train {

Result<std::optional<ElasticDpChange>> ApplyElasticDp(
    Config& config, int64_t world_size, const std::optional<std::string>& requested,
    const std::optional<std::string>& micro_batches_text) {
  if (!requested) return std::optional<ElasticDpChange>();
  const std::string& text = *requested;
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos || std::stoll(text) < 1) {
    return MakeError(fmt::format(
        "{}={}: expected the positive data-parallel size strund launched for; unset it to train "
        "at parallelism.dp",
        kElasticDpVariable, text));
  }
  const int64_t asked = std::stoll(text);
  ParallelismArgs& p = config.parallelism;
  if (!config.tokens) {
    return MakeError(fmt::format("{}={}: the config has no tokens section (the global batch)",
                                 kElasticDpVariable, text));
  }
  TokensArgs& tokens = *config.tokens;
  // Checked products: parsing bounds tp, pp, dp and the accumulation only from below and
  // validation does not bound tp * pp (a product past int64 was undefined behaviour; found by
  // reading the code for fuzz_elastic_dp, tests/fuzz/README.md).
  int64_t model_parallel = 0;
  if (__builtin_mul_overflow(p.tp, p.pp, &model_parallel) || model_parallel < 1 ||
      world_size % model_parallel != 0) {
    return MakeError(fmt::format(
        "{}={}: WORLD_SIZE={} is not a multiple of parallelism.tp * parallelism.pp = {} * {}; a "
        "smaller job must still hold whole model replicas",
        kElasticDpVariable, text, world_size, p.tp, p.pp));
  }
  const int64_t new_dp = world_size / model_parallel;
  if (new_dp != asked) {
    return MakeError(fmt::format(
        "{}={} but WORLD_SIZE={} with parallelism.tp * parallelism.pp = {} gives dp {}: strund "
        "and the job disagree about the layout (check strund's --procs-per-node and "
        "--model-parallel against the config)",
        kElasticDpVariable, text, world_size, model_parallel, new_dp));
  }
  int64_t micro_batches = 0;
  if (__builtin_mul_overflow(p.dp, tokens.batch_accumulation_per_replica, &micro_batches)) {
    return MakeError(fmt::format(
        "{}={}: parallelism.dp * tokens.batch_accumulation_per_replica = {} * {} micro-batches "
        "per step is too large to count",
        kElasticDpVariable, text, p.dp, tokens.batch_accumulation_per_replica));
  }
  if (micro_batches_text && *micro_batches_text != std::to_string(micro_batches)) {
    return MakeError(fmt::format(
        "{}={} but parallelism.dp * tokens.batch_accumulation_per_replica = {} * {} = {}: "
        "strund's --micro-batches must be the config's micro-batches per step",
        kElasticMicroBatchesVariable, *micro_batches_text, p.dp,
        tokens.batch_accumulation_per_replica, micro_batches));
  }
  // Not one micro-batch (an unvalidated config's accumulation 0) splits over no replica either.
  if (micro_batches < 1 || micro_batches % new_dp != 0) {
    return MakeError(fmt::format(
        "{}={}: the global batch of parallelism.dp * tokens.batch_accumulation_per_replica = "
        "{} * {} = {} micro-batches does not split over {} data-parallel replicas; the job "
        "cannot continue with the same batch at this size",
        kElasticDpVariable, text, p.dp, tokens.batch_accumulation_per_replica, micro_batches,
        new_dp));
  }
  if (new_dp == p.dp) return std::optional<ElasticDpChange>();
  ElasticDpChange change{p.dp, new_dp, tokens.batch_accumulation_per_replica,
                         micro_batches / new_dp};
  p.dp = change.new_dp;
  tokens.batch_accumulation_per_replica = change.new_accumulation;
  return std::optional<ElasticDpChange>(change);
}

std::string DescribeElasticDp(const ElasticDpChange& c, int64_t micro_batch_size) {
  return fmt::format(
      "{}={} (set by strund to continue on {} nodes): parallelism.dp {} -> {}, "
      "tokens.batch_accumulation_per_replica {} -> {}, global batch {} samples unchanged",
      kElasticDpVariable, c.new_dp, c.new_dp < c.old_dp ? "fewer" : "more", c.old_dp, c.new_dp,
      c.old_accumulation, c.new_accumulation, c.old_dp * c.old_accumulation * micro_batch_size);
}

}  // namespace strun::train

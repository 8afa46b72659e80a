// Fuzzes strund's elastic request to strun-train (trainer/config/elastic_dp.h): STRUN_ELASTIC_DP
// and STRUN_ELASTIC_MICRO_BATCHES applied to a parsed config for WORLD_SIZE processes. The input
// is `NAME=VALUE` lines for those three variables (an absent one is unset), a `#---` line, then the
// YAML config. ApplyElasticDp is applied to every config that parses (its contract asks for no
// more); DescribeElasticDp, as LoadForTraining, only to configs valid for training.
// Properties: an error leaves the config as it was and names a variable; a change keeps the
// global batch (dp * batch_accumulation_per_replica), trains at dp = WORLD_SIZE / (tp * pp) = the
// requested dp, and touches nothing else; no change leaves the config as it was.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>

#include "config/config.h"
#include "config/elastic_dp.h"
#include "fuzz_util.h"

namespace {

struct Variables {
  std::optional<std::string> world_size, elastic_dp, micro_batches;
};

Variables ParseVariables(std::string_view lines) {
  Variables v;
  for (std::string_view line : strun::fuzz::Split(lines, "\n")) {
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, eq);
    std::string value(line.substr(eq + 1));
    if (name == "WORLD_SIZE") v.world_size = value;
    if (name == strun::train::kElasticDpVariable) v.elastic_dp = value;
    if (name == strun::train::kElasticMicroBatchesVariable) v.micro_batches = value;
  }
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = strun::fuzz::AsText(data, size);
  const size_t sep = input.find("#---\n");
  if (sep == std::string_view::npos) return 0;
  const Variables vars = ParseVariables(input.substr(0, sep));
  // WORLD_SIZE as strun-train reads it (parallel/torchrun_env.cc): an integer in [1, 2^20].
  int64_t world_size = 1;
  if (vars.world_size) {
    const std::string& w = *vars.world_size;
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), world_size);
    if (ec != std::errc() || end != w.data() + w.size() || world_size < 1 ||
        world_size > (int64_t{1} << 20)) {
      return 0;
    }
  }
  strun::train::LoadOptions options;
  options.now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  options.job_id = "42";
  auto parsed = strun::train::ParseConfig(std::string(input.substr(sep + 5)), "fuzz.yaml", options);
  if (!parsed) return 0;
  const bool valid = strun::train::ValidateForTraining(*parsed, "fuzz.yaml").ok();
  strun::train::Config config = *parsed;
  auto change =
      strun::train::ApplyElasticDp(config, world_size, vars.elastic_dp, vars.micro_batches);
  if (!change) {
    const std::string& m = change.error().message;
    FUZZ_CHECK(m.find(strun::train::kElasticDpVariable) != std::string::npos ||
                   m.find(strun::train::kElasticMicroBatchesVariable) != std::string::npos,
               "an error that does not name a variable");
    FUZZ_CHECK(config == *parsed, "an error changed the config");
    return 0;
  }
  FUZZ_CHECK(vars.elastic_dp || !change->has_value(), "a change without STRUN_ELASTIC_DP");
  if (!change->has_value()) {
    FUZZ_CHECK(config == *parsed, "no change, but the config changed");
    return 0;
  }
  const strun::train::ElasticDpChange& c = **change;
  const auto& p = config.parallelism;
  const auto& before = parsed->parallelism;
  FUZZ_CHECK(c.old_dp == before.dp && c.new_dp == p.dp && c.new_dp != c.old_dp,
             "the change does not describe the config's dp");
  FUZZ_CHECK(std::to_string(c.new_dp) == *vars.elastic_dp, "another dp than requested");
  FUZZ_CHECK(p.tp == before.tp && p.pp == before.pp, "tp or pp changed");
  FUZZ_CHECK(p.tp * p.pp * p.dp == world_size, "dp * tp * pp is not WORLD_SIZE");
  FUZZ_CHECK(c.old_accumulation == parsed->tokens->batch_accumulation_per_replica &&
                 c.new_accumulation == config.tokens->batch_accumulation_per_replica,
             "the change does not describe the config's accumulation");
  FUZZ_CHECK(c.new_accumulation >= 1, "no micro-batch per replica");
  FUZZ_CHECK(c.new_dp * c.new_accumulation == c.old_dp * c.old_accumulation,
             "the global batch changed");
  strun::train::Config expected = *parsed;
  expected.parallelism.dp = p.dp;
  expected.tokens->batch_accumulation_per_replica = c.new_accumulation;
  FUZZ_CHECK(config == expected, "a field other than dp and accumulation changed");
  if (valid) {
    const std::string text = strun::train::DescribeElasticDp(c, config.tokens->micro_batch_size);
    FUZZ_CHECK(text.find(*vars.elastic_dp) != std::string::npos, "the description lacks the dp");
  }
  return 0;
}

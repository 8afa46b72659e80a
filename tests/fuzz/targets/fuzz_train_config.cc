// Fuzzes strun-train's nanotron YAML config (trainer/config/config.h) as `strun-train --check`
// uses it: parse, validate for training, print the derived sizes. A parsed config must dump to
// YAML that parses back to the same config (config.h promises ParseConfig(DumpConfig(c)) == c).
#include <chrono>
#include <cstdint>

#include "config/config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Fixed %date and %jobid, so that a run does not depend on the clock or the environment.
  strun::train::LoadOptions options;
  options.now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  options.job_id = "42";
  const std::string text(strun::fuzz::AsText(data, size));
  auto config = strun::train::ParseConfig(text, "fuzz.yaml", options);
  if (!config) {
    FUZZ_CHECK(!config.error().message.empty(), "an error without a message");
    return 0;
  }
  const std::string dumped = strun::train::DumpConfig(*config);
  auto again = strun::train::ParseConfig(dumped, "dumped.yaml", options);
  if (!again) std::fprintf(stderr, "%s\n%s\n", dumped.c_str(), again.error().message.c_str());
  FUZZ_CHECK(again.ok(), "the dumped config does not parse");
  FUZZ_CHECK(*again == *config, "the dumped config parses to another config");
  if (strun::train::ValidateForTraining(*config, "fuzz.yaml")) {
    const int64_t tp = config->parallelism.tp;
    (void)strun::train::PaddedVocabSize(config->model, tp);
    (void)strun::train::CountParameters(config->model, tp);
    (void)strun::train::GlobalBatchSize(*config);
    (void)strun::train::TokensPerStep(*config);
  }
  return 0;
}

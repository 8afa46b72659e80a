// config/load_for_training.h: the config as strun-train loads it, checked once, here.
//
// A file is valid (LoadConfig: nanotron's own checks), trainable (ValidateForTraining: what a run
// needs) and supported (CheckSupported: what this strun-train implements, and that the job's
// process count fits parallelism). `strun-train --check` runs the first two; a training run all.
// Every later stage of the trainer takes the config as given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"
#include "strun/result.h"

namespace strun::train {

// What strun-train implements of a trainable config, for a job of `world_size` processes:
// expert_parallel_size = 1, dp * tp * pp = world_size, with tp > 1 heads, key/value heads
// and intermediate size divisible by tp (and, in tp_mode reduce_scatter, the sequence length),
// with pp > 1 and pp_engine 1f1b at least pp - 1 micro-batches (the split of the model over the
// stages is checked when the model is built: model/pipeline_stage.h), an init_method other than
// spectral µP, one prepared (Hugging Face style) dataset per data stage. Messages name the key and
// the fix; they carry no file name.
Status CheckSupported(const Config& config, int64_t world_size);

// LoadConfig + ValidateForTraining, and with `world_size` (a training run) STRUN_ELASTIC_DP
// (elastic_dp.h: strund asks for another dp, same global batch) and CheckSupported. Error
// messages are complete ("FILE: config: KEY ..."; strun-train prints them after "strun-train: ").
Result<Config> LoadForTraining(const std::string& path, std::optional<int64_t> world_size);

}  // namespace strun::train

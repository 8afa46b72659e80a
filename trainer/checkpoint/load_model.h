// checkpoint/load_model.h: a model (and optionally this rank's optimizer state) from a checkpoint.
// The one way strun-train reads weights: resuming, `model.init_method.path`, `export-hf` and
// `logits` all come through LoadModel.
#pragma once

#include <c10/core/Device.h>

#include <string>

#include "checkpoint/checkpoint.h"
#include "config/config.h"
#include "model/llama.h"
#include "model/llama_config.h"
#include "strun/result.h"

namespace strun::train {

// Reads this rank's part of the step directory `step_dir` (LoadCheckpoint: verified against
// checksums/, finite) and copies the weights into `llama` (in its dtype and on its device). The
// TP layout is llama's (options.tp, tp_rank and the shard shapes are taken from it; options.pp
// and pp_rank are the caller's): a checkpoint of another tp has its shards merged, then sharded
// for llama. Returns the rest of the state: optimizer tensors (with options.load_optimizer; at
// another layout resharded for llama's parameters, options.dp, dp_rank and
// zero_sharded_optimizer), scheduler step, RNG state, checksums_verified; its `model` list is
// emptied, the weights living in `llama` now.
Result<CheckpointState> LoadModel(const std::string& step_dir, const CheckpointLoadOptions& options,
                                  model::Llama& llama);

// A checkpoint's own model, for the commands that start from nothing but the checkpoint.
struct CheckpointModel {
  Config config;                  // <step_dir>/config.yaml
  model::LlamaModelConfig shape;  // ModelConfigFrom(config)
  model::Llama llama;             // in config.model.dtype on the requested device, weights loaded
};
Result<CheckpointModel> LoadCheckpointModel(const std::string& step_dir, c10::Device device);

}  // namespace strun::train

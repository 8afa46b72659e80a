// checkpoint/checkpoint_state.h: what one rank contributes to a checkpoint (checkpoint_save.h)
// or gets back from it (checkpoint_load.h), and the shapes of the parameters it holds.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_metadata.h"
#include "checkpoint/safetensors_aten.h"

namespace strun::train {

// Everything one rank contributes to (or gets back from) a checkpoint.
struct CheckpointState {
  TrainingMetadata metadata;
  NamedTensorList model;            // this rank's live parameters (all its model holds, in its
                                    // NamedParameters order = the optimizer's flat layout),
                                    // nanotron names (written by DP rank 0, checkpoint_save.h)
  NamedTensorList optimizer;        // this rank's optimizer tensors (fp32 master, moments, ...)
  int64_t optimizer_step = 0;       // optimizer steps taken
  std::string optimizer_type;       // e.g. "AdamW", "SGD" (optimizer_config.json)
  int64_t scheduler_step = 0;       // lr scheduler steps taken
  at::Tensor rng_state;             // this rank's CPU generator state (uint8)
  bool checksums_verified = false;  // loaded: the files read matched checksums/
};

// A parameter this rank's model holds: nanotron name and its local (TP shard) shape.
struct ParameterShape {
  std::string name;
  std::vector<int64_t> shape;
};

}  // namespace strun::train

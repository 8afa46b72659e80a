// checkpoint/checkpoint_load.h: reading one rank's state from a checkpoint, at the layout it was
// saved with or any other (dp, tp, pp, zero_stage).
//
// Integrity: LoadCheckpoint verifies every file it reads against checksums/ and refuses NaN or
// infinite values in the weights and optimizer states; the error names the file and the earlier
// checkpoint to resume from. A checkpoint without checksums/ (written by an older strun-train)
// loads unverified, with CheckpointState::checksums_verified false for the caller to warn about.
//
// Resuming at another layout: weights are merged over the saved tp and read from whichever stage
// holds them; the optimizer states are resharded (reshard.h). The data position and the global
// batch are the config's business (consumed samples are global).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_state.h"
#include "strun/result.h"

namespace strun::train {

struct CheckpointLoadOptions {
  int rank = 0, dp_rank = 0, dp = 1;
  int tp_rank = 0, tp = 1;
  int pp_rank = 0, pp = 1;
  bool zero_sharded_optimizer = false;
  bool load_optimizer = true;
  // Shapes of the fused projections' chunks (SaveOptions has the same), for merging shards.
  int64_t q_rows = 0, kv_rows = 0, intermediate = 0;
};

// Reads this rank's state: model tensors by nanotron name (CPU, their saved dtype: this TP rank's
// shards when the checkpoint has this run's tp, else full tensors), the optimizer tensors of this
// rank (its file at the saved layout; at another layout resharded, reshard.h, for the flat layout
// of `params` padded as the trainer pads it), the scheduler step and the RNG state (this rank's
// file where the saved layout has one). `params`: the rank's parameters in NamedParameters order.
Result<CheckpointState> LoadCheckpoint(const std::string& step_dir,
                                       const CheckpointLoadOptions& options,
                                       const std::vector<ParameterShape>& params);

}  // namespace strun::train

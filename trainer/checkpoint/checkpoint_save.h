// checkpoint/checkpoint_save.h: writing a checkpoint, collectively and atomically.
//
// Who writes a tensor: exactly one rank. A parameter's weight file is written by DP rank 0 of the
// stage that holds it (replicated ones: also TP rank 0); a parameter that several stages hold
// under one name (nanotron's tied embedding / lm_head: the last stage lists it under the
// embedding's name) by the first of them, as nanotron's save_weights does. Rank 0 writes the
// metadata files (checkpoint_metadata.h) and config.yaml; the optimizer files are written by every
// (PP, DP, TP) rank under ZeRO-1, else by the ranks of DP rank 0; every rank writes its random
// state (when it has one) and its checksums (checkpoint_manifest.h).
//
// Atomicity: everything is written into <step>.tmp-<nonce>, every file and directory is fsynced,
// and the directory is committed (checkpoint_commit.h) only once every rank's files are written.
// A write that fails (e.g. ENOSPC) removes its temporary directory; one that a killed process left
// is removed when the next run starts (RemoveStaleCheckpointTemporaries) and by the next
// successful save, so that the leftovers of one failure cannot fill the disk for every retry.
#pragma once

#include <cstdint>
#include <string>

#include "checkpoint/checkpoint_state.h"
#include "parallel/communicator.h"
#include "strun/result.h"

namespace strun::train {

struct SaveOptions {
  std::string checkpoints_path;
  int64_t step = 0;
  bool zero_sharded_optimizer = false;  // ZeRO-1: every DP rank writes its optimizer shard
  bool shared_file_system = false;      // checkpoints_path_is_shared_file_system
  int local_rank = 0;
  std::string config_yaml;        // written by rank 0
  std::string model_config_json;  // written by rank 0
  // Shapes needed for nanotron's slices metadata.
  int64_t q_rows = 0, kv_rows = 0, intermediate = 0;
  // This rank's place in the grid. dp = 0: tp = pp = 1 and every rank of the communicator is a
  // DP rank.
  int tp = 1, tp_rank = 0, dp = 0, dp_rank = 0;
  int pp = 1, pp_rank = 0;
};

// Collective: every rank calls it with its state. Errors name the path.
Status SaveCheckpoint(parallel::Communicator& comm, const SaveOptions& options,
                      const CheckpointState& state);

}  // namespace strun::train

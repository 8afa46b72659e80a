// checkpoint/checkpoint.h: nanotron's checkpoint layout, written atomically, and resuming from
// it.
//
//   <checkpoints_path>/latest.txt                 the last complete step, e.g. "200"
//   <checkpoints_path>/<step>/config.yaml         the resolved config (general.step and
//                                                 general.consumed_train_samples updated)
//   <step>/model_config.json                      the Llama shape (nanotron's LlamaConfig fields)
//   <step>/checkpoint_metadata.json               version 1.4, tp, dp, metas (consumed samples,
//                                                 last step, per data stage) = the data position
//   <step>/model/<name with / for .>/model_weight[_pp-rank-0-of-1_tp-rank-T-of-TP].safetensors
//                                                 one tensor "data" per file, nanotron's metadata;
//                                                 TP-sharded tensors: one file per TP rank (its
//                                                 shard), written by the TP ranks of DP rank 0;
//                                                 replicated ones (norms) by world rank 0
//   <step>/optimizer/optimizer_config.json        type, parallelism
//   <step>/optimizer/optimizer_pp-0-of-1[_dp-R-of-D]_tp-T-of-TP_exp-0-of-1.safetensors
//                                                 ZeRO-1: one shard per (DP, TP) rank; otherwise
//                                                 the TP ranks of DP rank 0
//   <step>/lr_scheduler/lr_scheduler.json         scheduler step
//   <step>/random/tp-T-of-TP_dp-R-of-D_pp-0-of-1.safetensors   each rank's CPU generator state
//   <step>/checksums/rank-W-of-N.json             CRC-32C of each file world rank W wrote (all
//                                                 but config.yaml; checkpoint_manifest.h)
//
// Differences from nanotron: optimizer, scheduler and random states are safetensors/JSON instead of
// pickles (torch.save), so that they are readable without Python; the layout and names are the
// same.
//
// Atomicity: everything is written into <step>.tmp-<nonce>, every file and directory is fsynced,
// the directory is renamed to <step> (exchanged atomically with an existing <step>), and only then
// latest.txt is replaced (temp file + fsync + rename + fsync of the directory). A process killed at
// any point leaves the previous checkpoint and latest.txt intact. A write that fails (e.g. ENOSPC)
// removes its temporary directory; one that a killed process left is removed when the next run
// starts (RemoveStaleCheckpointTemporaries) and by the next successful save, so that the leftovers
// of one failure cannot fill the disk for every retry.
//
// Integrity: LoadCheckpoint verifies every file it reads against checksums/ and refuses NaN or
// infinite values in the weights and optimizer states; the error names the file and the earlier
// checkpoint to resume from. A checkpoint without checksums/ (written by an older strun-train)
// loads unverified, with CheckpointState::checksums_verified false for the caller to warn about.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "parallel/communicator.h"
#include "strun/result.h"

namespace strun::train {

using NamedTensorList = std::vector<std::pair<std::string, at::Tensor>>;

inline constexpr const char* kCheckpointVersion = "1.4";

struct DataStageMetadata {
  std::string name;
  int64_t start_training_step = 1;
  int64_t consumed_train_samples = 0;
};

// nanotron's TrainingMetadata.
struct TrainingMetadata {
  int64_t consumed_train_samples = 0;
  int64_t last_train_step = 0;
  std::optional<int64_t> last_stage_idx;
  std::vector<DataStageMetadata> data_stages;
};

// Which tensors are TP-sharded in nanotron (and so carry slices metadata and the rank suffix).
struct ShardInfo {
  int split_dim = 0;
  std::vector<int64_t> contiguous_chunks;  // empty: one chunk
};
// nanotron's sharding of a Llama parameter by name; nullopt for replicated ones (norms).
std::optional<ShardInfo> NanotronShardInfo(const std::string& name, int64_t q_rows, int64_t kv_rows,
                                           int64_t intermediate);

// The model file of a parameter (relative to the step directory) and its safetensors metadata
// (nanotron's local/global slices of TP rank `tp_rank` of `tp`; `shape` is the shard's).
std::string ModelWeightPath(const std::string& name, bool sharded, int tp_rank = 0, int tp = 1);
std::map<std::string, std::string> ShardedTensorMetadata(const ShardInfo& info,
                                                         const std::vector<int64_t>& shape,
                                                         int tp_rank = 0, int tp = 1);

// Everything one rank contributes to (or gets back from) a checkpoint.
struct CheckpointState {
  TrainingMetadata metadata;
  NamedTensorList model;            // live parameters, nanotron names (written by DP rank 0)
  NamedTensorList optimizer;        // this rank's optimizer tensors (fp32 master, moments, ...)
  int64_t optimizer_step = 0;       // optimizer steps taken
  std::string optimizer_type;       // e.g. "AdamW", "SGD" (optimizer_config.json)
  int64_t scheduler_step = 0;       // lr scheduler steps taken
  at::Tensor rng_state;             // this rank's CPU generator state (uint8)
  bool checksums_verified = false;  // loaded: the files read matched checksums/
};

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
  // The grid (pp = 1; world rank = dp_rank * tp + tp_rank). dp = 0: tp = 1 and every rank of
  // the communicator is a DP rank.
  int tp = 1, tp_rank = 0, dp = 0, dp_rank = 0;
};

// Collective: every rank calls it with its state. Errors name the path.
Status SaveCheckpoint(parallel::Communicator& comm, const SaveOptions& options,
                      const CheckpointState& state);

// Removes the <step>.tmp-* directories in `checkpoints_path` that an interrupted write left (never
// a finished <step>); returns their names. Only safe while no process writes a checkpoint there:
// the trainer calls it on the owner ranks at start, before any rank writes, then waits for all.
Result<std::vector<std::string>> RemoveStaleCheckpointTemporaries(
    const std::string& checkpoints_path);

// nanotron's parse_ckpt_path: `resume` containing latest.txt -> resume/<latest>; a step directory
// (with checkpoint_metadata.json) -> itself; neither -> nullopt (start from scratch).
Result<std::optional<std::string>> ResolveResumeDirectory(const std::string& resume);

// Reads the metadata of a step directory (verified against checksums/ when it has them).
Result<TrainingMetadata> ReadTrainingMetadata(const std::string& step_dir, int64_t* dp = nullptr,
                                              int64_t* tp = nullptr);

struct CheckpointLoadOptions {
  int rank = 0, dp_rank = 0, dp = 1;
  int tp_rank = 0, tp = 1;
  bool zero_sharded_optimizer = false;
  bool load_optimizer = true;
  // Resuming: a checkpoint of another tp is refused, naming both layouts (resharding on resume
  // is not implemented). Otherwise weights of another tp are merged (UnshardTensor) into full
  // tensors, which the model shards for itself (model/llama.h LoadNamedParameters).
  bool same_tp_layout = false;
  // Shapes of the fused projections' chunks (SaveOptions has the same), for merging shards.
  int64_t q_rows = 0, kv_rows = 0, intermediate = 0;
};

// Reads this rank's state: model tensors by nanotron name (CPU, their saved dtype: this TP rank's
// shards when the checkpoint has this run's tp, else full tensors), the optimizer tensors of this
// rank's file, the scheduler step and the RNG state.
Result<CheckpointState> LoadCheckpoint(const std::string& step_dir,
                                       const CheckpointLoadOptions& options,
                                       const std::vector<std::string>& model_names);

// Tensor <-> safetensors helpers.
Result<at::Tensor> TensorFromSafetensors(const std::string& path, const std::string& name);
Status WriteTensorsSafetensors(const std::string& path, const NamedTensorList& tensors,
                               const std::map<std::string, std::string>& metadata);

}  // namespace strun::train

// checkpoint/checkpoint.h: nanotron's checkpoint layout, written atomically, and resuming from
// it at the same or any other parallel layout (dp, tp, pp, zero_stage).
//
//   <checkpoints_path>/latest.txt                 the last complete step, e.g. "200"
//   <checkpoints_path>/<step>/config.yaml         the resolved config (general.step and
//                                                 general.consumed_train_samples updated)
//   <step>/model_config.json                      the Llama shape (nanotron's LlamaConfig fields)
//   <step>/checkpoint_metadata.json               version 1.4, tp, dp, pp, metas (consumed
//                                                 samples, last step, per data stage) = the data
//                                                 position
//   <step>/model/<name with / for .>/model_weight[_pp-rank-R-of-P_tp-rank-T-of-TP].safetensors
//                                                 one tensor "data" per file, nanotron's metadata;
//                                                 TP-sharded tensors: one file per TP rank (its
//                                                 shard, R = the pipeline stage that holds it),
//                                                 replicated ones (norms) without the suffix
//   <step>/optimizer/optimizer_config.json        type, parallelism
//   <step>/optimizer/optimizer_pp-R-of-P[_dp-D-of-DP]_tp-T-of-TP_exp-0-of-1.safetensors
//                                                 the flat fp32 states (optim/flat_buffer.h) of
//                                                 stage R's parameters; ZeRO-1: one shard per
//                                                 (PP, DP, TP) rank, else the ranks of DP rank 0;
//                                                 metadata "flat_layout" (reshard.h) describes it
//   <step>/lr_scheduler/lr_scheduler.json         scheduler step
//   <step>/random/tp-T-of-TP_dp-D-of-DP_pp-R-of-P.safetensors   each rank's CPU generator state
//   <step>/checksums/rank-W-of-N.json             CRC-32C of each file world rank W wrote (all
//                                                 but config.yaml; checkpoint_manifest.h)
//
// Who writes a tensor: exactly one rank. A parameter's weight file is written by DP rank 0 of the
// stage that holds it (replicated ones: also TP rank 0); a parameter that several stages hold
// under one name (nanotron's tied embedding / lm_head: the last stage lists it under the
// embedding's name) by the first of them, as nanotron's save_weights does.
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
//
// Resuming at another layout: weights are merged over the saved tp and read from whichever stage
// holds them; the optimizer states are resharded (reshard.h). The data position and the global
// batch are the config's business (consumed samples are global).
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
// Replicated tensors have no suffix (nanotron), so their path does not depend on the layout.
std::string ModelWeightPath(const std::string& name, bool sharded, int tp_rank = 0, int tp = 1,
                            int pp_rank = 0, int pp = 1);
// The optimizer file of a rank (relative to <step>/optimizer/) and its random state file
// (relative to <step>/random/).
std::string OptimizerFileName(bool zero, int dp_rank, int dp, int tp_rank, int tp, int pp_rank = 0,
                              int pp = 1);
std::string RandomFileName(int dp_rank, int dp, int tp_rank, int tp, int pp_rank = 0, int pp = 1);
std::map<std::string, std::string> ShardedTensorMetadata(const ShardInfo& info,
                                                         const std::vector<int64_t>& shape,
                                                         int tp_rank = 0, int tp = 1);

// Everything one rank contributes to (or gets back from) a checkpoint.
struct CheckpointState {
  TrainingMetadata metadata;
  NamedTensorList model;            // this rank's live parameters (all its model holds, in its
                                    // NamedParameters order = the optimizer's flat layout),
                                    // nanotron names (written by DP rank 0, see above)
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
  // This rank's place in the grid. dp = 0: tp = pp = 1 and every rank of the communicator is a
  // DP rank.
  int tp = 1, tp_rank = 0, dp = 0, dp_rank = 0;
  int pp = 1, pp_rank = 0;
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

// The parallel layout a checkpoint was written with (checkpoint_metadata.json; pp 1 when absent,
// zero from its optimizer files).
struct SavedLayout {
  int64_t dp = 1, tp = 1, pp = 1;
  bool zero = false;  // ZeRO-1 optimizer shards (one file per DP rank)
};

// Reads the metadata of a step directory (verified against checksums/ when it has them).
Result<TrainingMetadata> ReadTrainingMetadata(const std::string& step_dir,
                                              SavedLayout* layout = nullptr);

struct CheckpointLoadOptions {
  int rank = 0, dp_rank = 0, dp = 1;
  int tp_rank = 0, tp = 1;
  int pp_rank = 0, pp = 1;
  bool zero_sharded_optimizer = false;
  bool load_optimizer = true;
  // Shapes of the fused projections' chunks (SaveOptions has the same), for merging shards.
  int64_t q_rows = 0, kv_rows = 0, intermediate = 0;
};

// A parameter this rank's model holds: nanotron name and its local (TP shard) shape.
struct ParameterShape {
  std::string name;
  std::vector<int64_t> shape;
};

// Reads this rank's state: model tensors by nanotron name (CPU, their saved dtype: this TP rank's
// shards when the checkpoint has this run's tp, else full tensors), the optimizer tensors of this
// rank (its file at the saved layout; at another layout resharded, reshard.h, for the flat layout
// of `params` padded as the trainer pads it), the scheduler step and the RNG state (this rank's
// file where the saved layout has one). `params`: the rank's parameters in NamedParameters order.
Result<CheckpointState> LoadCheckpoint(const std::string& step_dir,
                                       const CheckpointLoadOptions& options,
                                       const std::vector<ParameterShape>& params);

// Tensor <-> safetensors helpers.
class SafetensorsFile;
// Every tensor of a file read from `path` (CPU copies, in name order).
Result<NamedTensorList> TensorsOfSafetensors(const SafetensorsFile& file, const std::string& path);
Result<at::Tensor> TensorFromSafetensors(const std::string& path, const std::string& name);
Status WriteTensorsSafetensors(const std::string& path, const NamedTensorList& tensors,
                               const std::map<std::string, std::string>& metadata);

}  // namespace strun::train

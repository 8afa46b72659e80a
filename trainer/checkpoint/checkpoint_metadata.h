// checkpoint/checkpoint_metadata.h: the small JSON and text files that describe a checkpoint,
// written and read without torch.
//
//   <checkpoints_path>/latest.txt            the last complete step; ResolveResumeDirectory
//   <step>/checkpoint_metadata.json          version, tp, dp, pp and nanotron's TrainingMetadata
//                                            ("metas": the data position); the saved layout
//   <step>/lr_scheduler/lr_scheduler.json    the scheduler step (torch's last_epoch, _step_count)
//   <step>/optimizer/optimizer_config.json   the optimizer type, parallelism and step
//
// The writers return the files' contents (the caller writes them durably, checkpoint_save.h); the
// readers name the file in every error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::train {

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

// The parallel layout a checkpoint was written with (checkpoint_metadata.json; pp 1 when absent,
// zero from its optimizer files).
struct SavedLayout {
  int64_t dp = 1, tp = 1, pp = 1;
  bool zero = false;  // ZeRO-1 optimizer shards (one file per DP rank)
};

// "dp=D tp=T pp=P zero_stage=Z", as errors name a layout.
std::string SavedLayoutString(const SavedLayout& layout);

// checkpoint_metadata.json of a checkpoint written at (tp, dp, pp).
std::string CheckpointMetadataJson(const TrainingMetadata& metadata, int tp, int dp, int pp);

// Reads the metadata of a step directory (verified against checksums/ when it has them).
Result<TrainingMetadata> ReadTrainingMetadata(const std::string& step_dir,
                                              SavedLayout* layout = nullptr);

// nanotron's parse_ckpt_path: `resume` containing latest.txt -> resume/<latest>; a step directory
// (with checkpoint_metadata.json) -> itself; neither -> nullopt (start from scratch).
Result<std::optional<std::string>> ResolveResumeDirectory(const std::string& resume);

// lr_scheduler/lr_scheduler.json after `scheduler_step` steps, and the step it holds (unverified:
// the caller checks the file against checksums/ first).
std::string SchedulerJson(int64_t scheduler_step);
Result<int64_t> ReadSchedulerStep(const std::string& step_dir);

// optimizer/optimizer_config.json (nanotron's fields; strun reads the step from the optimizer
// files, not from here).
std::string OptimizerConfigJson(const std::string& optimizer_type, int tp, int dp, int pp,
                                int64_t optimizer_step);

}  // namespace strun::train

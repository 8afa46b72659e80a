// train/setup.h: everything one rank trains with, built from the validated config
// (config/load_for_training.h): the process group (with tp or pp > 1 also the grid's groups),
// the model (fresh, from init_method.path or resumed; with tp > 1 this rank's shards, with pp > 1
// its pipeline stage's blocks), the flat
// fp32 master weights of this rank's parameters and their optimizer (ZeRO-1 shard over the dp
// group), the data stream and the checkpoint writer's options. No checks of the config here: it
// arrives validated.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "config/config.h"
#include "data/sample_stream.h"
#include "model/llama.h"
#include "optim/flat_buffer.h"
#include "optim/lr_schedule.h"
#include "optim/optimizer.h"
#include "parallel/communicator.h"
#include "parallel/data_parallel.h"
#include "parallel/process_grid_groups.h"
#include "parallel/torchrun_env.h"
#include "strun/result.h"
#include "train/iteration_log.h"
#include "train/step_graph.h"
#include "train/tensorboard_log.h"
#include "train/token_staging.h"

namespace strun::train {

struct Run {
  Run(const Config& config, std::string config_path, const parallel::TorchrunEnv& env, bool cuda,
      std::unique_ptr<parallel::Communicator> comm);

  // Info from rank 0 only, as nanotron logs; errors from every rank (they may differ).
  void Info0(const std::string& message) const;
  // Logs `message` as an error, prints it on stderr and returns the exit status 1.
  int Fail(const std::string& message) const;

  // ---- the job ----
  Config config;            // general.step / consumed_train_samples follow the saved checkpoints
  std::string config_path;  // for messages
  parallel::TorchrunEnv env;
  std::unique_ptr<parallel::Communicator> comm;  // the world
  int rank = 0, dp = 1;
  // Tensor and pipeline parallelism, nanotron's grid:
  //   world rank = (pp_rank * dp + dp_rank) * tp + tp_rank.
  int tp = 1, tp_rank = 0, dp_rank = 0, pp = 1, pp_rank = 0;
  std::unique_ptr<parallel::ProcessGroups> groups;        // tp or pp > 1 only
  std::unique_ptr<parallel::Communicator> dp_group_comm;  // tp or pp > 1: over groups->dp()
  // The DP group of this rank's (pp, tp) coordinate: gradients, ZeRO-1 (comm at tp = pp = 1).
  parallel::Communicator* dp_comm = nullptr;
  TrainLogger log;
  bool cuda = false;
  at::TensorOptions device;  // the model's device
  at::ScalarType dtype;      // model.dtype
  model::LlamaModelConfig shape;
  int64_t mbs = 0, n_micro = 0, gbs = 0, seq = 0, train_steps = 0;
  bool zero = false;           // optimizer.zero_stage > 0
  std::optional<double> clip;  // optimizer.clip_grad
  int64_t bucket_elems = 0;    // model.ddp_bucket_cap_mb in fp32 elements
  double step_flops = 0;       // model FLOPs of one step

  // ---- where training starts ----
  TrainingMetadata meta;                  // the data position; advanced by every step
  std::optional<std::string> resume_dir;  // the checkpoint resumed from

  // ---- model and optimizer ----
  std::optional<model::Llama> llama;
  std::vector<at::Tensor> params;  // llama's parameters, in NamedParameters order
  std::vector<bool> tp_sharded;    // per parameter: split over TP (else replicated)
  // pp > 1 with tied embeddings: the index in params of the tied embedding / lm_head on the first
  // and last stage (-1 elsewhere), whose gradients are summed over the pp group; tied_copy: this
  // rank holds the last stage's copy (not counted again in the gradient norm).
  int tied_index = -1;
  bool tied_copy = false;
  optim::FlatLayout layout;
  at::Tensor master;  // fp32 master weights (ZeRO-1: only `shard` of them is this rank's)
  at::Tensor grads;   // fp32 accumulated gradients
  parallel::ZeroShard shard;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::string optimizer_type;  // "AdamW" / "SGD" (optimizer_config.json)
  bool fused = false;          // Optimizer::FusedStep (the kernels' AdamW) instead of ATen ops
  at::Tensor params_flat;      // fused and unsharded: the model's weights as one buffer
  std::optional<optim::LrSchedule> schedule;

  // ---- data, checkpoints, logs ----
  std::vector<data::DataStage> stages;
  std::unique_ptr<data::StagedSampleStream> stream;
  std::unique_ptr<TokenStaging> tokens;      // micro-batches to the device
  std::unique_ptr<MicroBatchGraphs> graphs;  // CUDA graphs of the micro-batch step, or null
  SaveOptions save;
  std::unique_ptr<TensorBoardLog> tensorboard;

  // ---- per step: [lm loss, stop votes] in one tensor, all-reduced together ----
  at::Tensor step_sums, loss_sum, stop_votes;
  bool grads_empty = true;  // no micro-batch of this step has reached `grads` yet (Assign, not add)
  at::Tensor grad_norm;     // with clip: the last step's global norm before clipping
};

// Builds `run` after the process group exists. Returns false when the resumed checkpoint already
// reached tokens.train_steps (nothing to train); errors are messages for Run::Fail.
Result<bool> Setup(Run& run);

}  // namespace strun::train

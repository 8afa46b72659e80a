// train/trainer.h: strun-train's entry points. No torch in this header: main.cc stays light.
//
// Train runs nanotron's training loop (trainer.py at 5f8a52b0) for one process of a data-parallel
// job started by strun or torchrun: setup.h builds the run, step.h is one step, metrics.h what it
// logs, stop_vote.h how a pre-emption signal ends it after a checkpoint.
#pragma once

#include <string>

#include "config/config.h"
#include "parallel/torchrun_env.h"
#include "strun/result.h"

namespace strun::train {

// What the command line adds to the config.
struct TrainOptions {
  std::string tensorboard_dir;  // "" = none; rank 0 writes DIR/<general.run> (tensorboard_log.h)
};

// Trains with `config`, loaded and validated by LoadForTraining (config/load_for_training.h) for
// this job's `env`; `config_path` is only for messages. Returns the process exit code (0: trained,
// or nothing left to train; 1: failed; 3: the process group could not be formed).
int Train(const Config& config, const std::string& config_path, const parallel::TorchrunEnv& env,
          const TrainOptions& options = {});

// `strun-train logits`: the model's fp32 logits for the int64 tensor "input_ids" [B, S] of a
// safetensors file, written as tensor "logits" [B, S, vocab] to `output` (checks of export-hf
// against transformers). Runs on the GPU when there is one, in the checkpoint's model.dtype.
Status WriteLogits(const std::string& checkpoint, const std::string& input_ids,
                   const std::string& output);

}  // namespace strun::train

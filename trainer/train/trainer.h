// trainer.h: strun-train's entry points. No torch in this header: main.cc stays light.
//
// Train(config) runs nanotron's training loop (trainer.py at 5f8a52b0) for one process of a
// data-parallel job started by strun or torchrun:
//   for each step: batch_accumulation_per_replica micro-batches (each loss divided by their
//   number, gradients accumulated in fp32) -> DP all-reduce (mean) of the gradients in buckets of
//   model.ddp_bucket_cap_mb -> clip by global norm -> AdamW/SGD on the fp32 master weights
//   (ZeRO-1: this rank's shard, then all-gather) -> copy into the model -> consumed samples,
//   logs every logging.iteration_step_info_interval, checkpoint every checkpoint_interval and at
//   the end.
#pragma once

#include <string>

#include "config/config.h"
#include "strun/result.h"

namespace strun::train {

// What the command line adds to the config.
struct TrainOptions {
  std::string tensorboard_dir;  // "" = none; rank 0 writes DIR/<general.run> (tensorboard_log.h)
};

// Trains with `config` (already loaded and validated); `config_path` is only for messages.
// Returns the process exit code (0: trained, or nothing left to train).
int Train(const Config& config, const std::string& config_path, const TrainOptions& options = {});

// `strun-train export-hf`: a Hugging Face Llama (config.json + model.safetensors) from a
// checkpoint step directory (or a checkpoints directory with latest.txt).
Status ExportHuggingFace(const std::string& checkpoint, const std::string& output);

// `strun-train logits`: the model's fp32 logits for the int64 tensor "input_ids" [B, S] of a
// safetensors file, written as tensor "logits" [B, S, vocab] to `output` (checks of export-hf
// against transformers). Runs on the GPU when there is one, in the checkpoint's model.dtype.
Status WriteLogits(const std::string& checkpoint, const std::string& input_ids,
                   const std::string& output);

}  // namespace strun::train

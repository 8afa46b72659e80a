// train/step.h: one optimizer step of one rank, nanotron's training_step as a dozen named calls
// (the shape of llm.c's train_gpt2.cu loop):
//
//   forward/backward of batch_accumulation_per_replica micro-batches, fp32 gradients accumulated
//   (pp > 1: the stage's pipeline schedule, pipeline_step.h)
//   -> DP mean of the gradients (buckets) -> (pp > 1, tied) the embedding's gradient summed
//   between the first and last stage -> stop vote + loss all-reduced together
//   -> clip by global norm + AdamW/SGD on this rank's fp32 master shard (grads zeroed)
//   -> ZeRO-1 all-gather -> weights copied into the model -> one host read of loss / vote / norm.
#pragma once

#include <cstdint>
#include <optional>

#include "strun/result.h"
#include "train/setup.h"
#include "train/stop_vote.h"

namespace strun::train {

// What the loop needs of a step; every value is DP-reduced, so every rank sees the same.
struct StepResult {
  double lr = 0;
  float lm_loss = 0;
  std::optional<float> grad_norm;  // with optimizer.clip_grad
  double stop_vote = 0;            // DP mean of the ranks' votes (StopVote::Carried)
};

// Trains step `step` (1-based) of `run`; errors are data errors (messages for Run::Fail).
Result<StepResult> TrainStep(Run& run, int64_t step, StopVote& vote);

}  // namespace strun::train

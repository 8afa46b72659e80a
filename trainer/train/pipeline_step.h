// train/pipeline_step.h: the forward and backward of one step's micro-batches on a pipeline stage
// (parallelism.pp > 1), as nanotron's PipelineEngine (pipeline_parallel/engine.py at 5f8a52b0).
//
// The stage runs its schedule (parallel/pipeline_schedule.h: pp_engine afab or 1f1b over
// batch_accumulation_per_replica micro-batches): its blocks of the model (Llama::StageForward),
// the hidden states sent to the next stage and their gradients back over the pp group (every
// tp rank to its peer of the same tp rank), and on the last stage the loss of each micro-batch
// divided by their number, whose backward starts the pipeline's. Sends are non-blocking
// (c10d send; a send never waits for its receive) and receives blocking: with the schedules'
// order this cannot deadlock (pipeline_schedule.h). Activations travel over the pp group,
// gradients over its twin pp_backward (process_grid_groups.h), under separate tags.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "strun/result.h"
#include "train/setup.h"

namespace strun::train {

// What the step provides around the schedule: the next micro-batch's tokens ([mbs, seq + 1] ids on
// the model's device; every stage reads every micro-batch, in order, so the data position stays
// the same on all stages) and, after each micro-batch's backward, the taking of the parameters'
// gradients (`loss`: that micro-batch's scaled loss on the last stage, undefined elsewhere).
struct MicroBatchHooks {
  std::function<Result<at::Tensor>()> next_tokens;
  std::function<void(const at::Tensor& loss)> after_backward;
};

// Runs this stage's schedule for one step. Errors: the schedule's (too few micro-batches for
// 1f1b) and the data's.
Status PipelineForwardBackward(Run& run, const MicroBatchHooks& hooks);

}  // namespace strun::train

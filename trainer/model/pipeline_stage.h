// model/pipeline_stage.h: which part of nanotron's Llama one pipeline stage holds
// (parallelism.pp > 1).
//
// nanotron (models/base.py build_model at 5f8a52b0) splits the model's pipeline blocks
//   token embedding, decoder layer 0 .. L-1, final norm, lm_head, cast to fp32, loss
// greedily by cumulative compute cost (parallel/pipeline_schedule.h: AssignBlocksToStages of
// LlamaBlockCosts). strun-train runs the splits in which every boundary between stages carries a
// hidden state [B, S, hidden] (sequence-first with tp > 1), which is exactly the splits that put
// the lm_head on the last stage. nanotron puts it on an earlier stage when the lm_head outweighs
// the decoder layers (a small model with a large vocabulary): the later stages then hold only the
// cast and the loss, or nothing at all; such a split is refused with an error that says so.
//
// Pure arithmetic, no libtorch.
#pragma once

#include <cstdint>
#include <string>

#include "model/llama_config.h"
#include "strun/result.h"

namespace strun::model {

struct PipelineStage {
  int stage = 0;
  int num_stages = 1;
  // Decoder layers [first_layer, end_layer) (model indices: parameter names keep them).
  int64_t first_layer = 0;
  int64_t end_layer = 0;
  bool embedding = true;   // the token embedding: the stage's input is token ids
  bool final_norm = true;  // the final RMSNorm
  bool head = true;        // lm_head, cast and loss: the stage's output is the loss

  bool first() const { return stage == 0; }
  bool last() const { return stage == num_stages - 1; }
  // The whole model (pp = 1).
  bool whole() const { return num_stages == 1; }
};

// The part of `config` (its vocab_size already padded) that stage `stage` of `num_stages` holds.
// num_stages = 1: the whole model. Fails naming the split when the lm_head is not on the last
// stage (see above) or num_stages < 1.
Result<PipelineStage> LlamaPipelineStage(const LlamaModelConfig& config, int stage, int num_stages);

// "stage 0: token embedding, decoder layers 0-2; stage 1: decoder layer 3, final norm, lm_head,
// loss" for logs and `--check`.
Result<std::string> DescribePipelineSplit(const LlamaModelConfig& config, int num_stages);

}  // namespace strun::model

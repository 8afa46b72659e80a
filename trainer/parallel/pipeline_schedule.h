// parallel/pipeline_schedule.h: nanotron's pipeline engines (pipeline_parallel/engine.py) and its
// split of the model over pipeline stages (models/base.py build_model), as pure functions.
//
// A schedule is, per stage, the ordered list of what the stage does in one optimizer step:
//   forward i:  [recv activation i from stage - 1]  F i  [send activation i to stage + 1]
//   backward i: [recv grad i from stage + 1]        B i  [send grad i to stage - 1]
// (the first stage receives no activations and sends no gradients; the last stage computes the
// loss and receives no gradients). Backwards run in micro-batch order, as nanotron pops the oldest
// activations first.
//   AllForwardAllBackward (afab, nanotron's default): every forward, then every backward.
//   OneForwardOneBackward (1f1b): pp - stage - 1 warm-up forwards, then forward/backward pairs
//     (forward i, backward i - warmup), then the remaining backwards; at most pp - stage
//     micro-batches hold activations at once. Needs num_micro_batches >= pp - 1 (nanotron asserts).
// Executing a schedule with non-blocking sends (c10d isend; a send never waits for its receive)
// and blocking receives cannot deadlock, on every stage at once: the tests simulate it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::parallel {

enum class PipelineSchedule { kAllForwardAllBackward, kOneForwardOneBackward };

struct PipelineAction {
  enum class Kind { kRecvActivation, kForward, kSendActivation, kRecvGrad, kBackward, kSendGrad };
  Kind kind;
  int micro_batch;
  int peer_stage;  // the other stage of a send or receive; -1 for compute
  bool operator==(const PipelineAction&) const = default;
};

// "F3", "B0", "recv_act 2<-1", "send_grad 0->0", ... for logs and test messages.
std::string FormatAction(const PipelineAction& action);
std::string FormatSchedule(const std::vector<PipelineAction>& actions);

// The actions of `stage` (0 <= stage < num_stages) for num_micro_batches (>= 1) micro-batches.
Result<std::vector<PipelineAction>> StageSchedule(PipelineSchedule schedule, int num_stages,
                                                  int stage, int num_micro_batches);

// The stage of each pipeline block, by nanotron's greedy split of cumulative compute cost: a block
// goes to the current stage, and the stage advances after the block whose cumulative cost
// exceeds total * (stage + 1) / num_stages. block_costs are in model order (0 for blocks nanotron
// does not cost: embedding, norms, casts, loss).
std::vector<int> AssignBlocksToStages(const std::vector<int64_t>& block_costs, int num_stages);

// nanotron's Llama pipeline blocks, in model order: token embedding, num_layers decoder layers,
// final norm, lm_head, cast to fp32, loss; their costs (get_block_compute_costs): a decoder layer
// 4 heads * head_dim * hidden + 3 intermediate * hidden, the lm_head padded_vocab * hidden,
// the others 0. AssignBlocksToStages of these gives each stage's layers.
struct LlamaPipelineShape {
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t padded_vocab_size = 0;
};
std::vector<int64_t> LlamaBlockCosts(const LlamaPipelineShape& shape);

}  // namespace strun::parallel

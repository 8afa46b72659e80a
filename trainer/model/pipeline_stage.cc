#include "model/pipeline_stage.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

#include "parallel/pipeline_schedule.h"

namespace strun::model {
namespace {

std::vector<int> BlockStages(const LlamaModelConfig& c, int num_stages) {
  const parallel::LlamaPipelineShape shape{
      c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, c.vocab_size};
  return parallel::AssignBlocksToStages(parallel::LlamaBlockCosts(shape), num_stages);
}

}  // namespace

Result<PipelineStage> LlamaPipelineStage(const LlamaModelConfig& c, int stage, int num_stages) {
  if (num_stages < 1 || stage < 0 || stage >= num_stages) {
    return MakeError(fmt::format("no pipeline stage {} of {}", stage, num_stages));
  }
  PipelineStage out;
  out.stage = stage;
  out.num_stages = num_stages;
  out.end_layer = c.num_hidden_layers;
  if (num_stages == 1) return out;
  // Blocks: 0 embedding, 1..L layers, L+1 final norm, L+2 lm_head, L+3 cast, L+4 loss.
  const std::vector<int> stages = BlockStages(c, num_stages);
  const int64_t layers = c.num_hidden_layers;
  const int head_stage = stages[static_cast<size_t>(layers + 2)];
  if (head_stage != num_stages - 1) {
    return MakeError(fmt::format(
        "parallelism.pp is {}: nanotron's split by compute cost puts the lm_head (cost "
        "vocab_size * hidden_size = {}, against {} for all {} decoder layers) on stage {}, "
        "leaving the later stages no weights (only the cast and the loss, or nothing); "
        "strun-train needs every stage to hold model weights: lower parallelism.pp or use more "
        "or larger decoder layers",
        num_stages, c.vocab_size * c.hidden_size,
        layers * (4 * c.num_attention_heads * c.head_dim() * c.hidden_size +
                  3 * c.intermediate_size * c.hidden_size),
        layers, head_stage));
  }
  out.embedding = stages[0] == stage;
  out.first_layer = layers;
  out.end_layer = layers;
  for (int64_t i = 0; i < layers; ++i) {
    if (stages[static_cast<size_t>(i + 1)] != stage) continue;
    if (out.first_layer == layers) out.first_layer = i;
    out.end_layer = i + 1;
  }
  if (out.first_layer == layers) {  // no layer: an empty range after the previous stage's
    int64_t before = 0;
    for (int64_t i = 0; i < layers; ++i) {
      if (stages[static_cast<size_t>(i + 1)] < stage) before = i + 1;
    }
    out.first_layer = out.end_layer = before;
  }
  out.final_norm = stages[static_cast<size_t>(layers + 1)] == stage;
  out.head = head_stage == stage;
  return out;
}

Result<std::string> DescribePipelineSplit(const LlamaModelConfig& c, int num_stages) {
  std::string out;
  for (int s = 0; s < num_stages; ++s) {
    auto st = LlamaPipelineStage(c, s, num_stages);
    if (!st) return st.error();
    std::vector<std::string> parts;
    if (st->embedding) parts.push_back("token embedding");
    const int64_t n = st->end_layer - st->first_layer;
    if (n == 1) parts.push_back(fmt::format("decoder layer {}", st->first_layer));
    if (n > 1) {
      parts.push_back(fmt::format("decoder layers {}-{}", st->first_layer, st->end_layer - 1));
    }
    if (st->final_norm) parts.push_back("final norm");
    if (st->head) parts.push_back("lm_head, loss");
    out += fmt::format("{}stage {}: {}", s == 0 ? "" : "; ", s, fmt::join(parts, ", "));
  }
  return out;
}

}  // namespace strun::model

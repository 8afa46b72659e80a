#include "parallel/pipeline_schedule.h"

#include <fmt/format.h>

#include <algorithm>

namespace strun::parallel {
namespace {

using Kind = PipelineAction::Kind;

void AppendForward(std::vector<PipelineAction>& out, int stage, int last, int i) {
  if (stage > 0) out.push_back({Kind::kRecvActivation, i, stage - 1});
  out.push_back({Kind::kForward, i, -1});
  if (stage < last) out.push_back({Kind::kSendActivation, i, stage + 1});
}

void AppendBackward(std::vector<PipelineAction>& out, int stage, int last, int i) {
  if (stage < last) out.push_back({Kind::kRecvGrad, i, stage + 1});
  out.push_back({Kind::kBackward, i, -1});
  if (stage > 0) out.push_back({Kind::kSendGrad, i, stage - 1});
}

}  // namespace

std::string FormatAction(const PipelineAction& a) {
  switch (a.kind) {
    case Kind::kForward:
      return fmt::format("F{}", a.micro_batch);
    case Kind::kBackward:
      return fmt::format("B{}", a.micro_batch);
    case Kind::kRecvActivation:
      return fmt::format("recv_act {}<-{}", a.micro_batch, a.peer_stage);
    case Kind::kSendActivation:
      return fmt::format("send_act {}->{}", a.micro_batch, a.peer_stage);
    case Kind::kRecvGrad:
      return fmt::format("recv_grad {}<-{}", a.micro_batch, a.peer_stage);
    case Kind::kSendGrad:
      return fmt::format("send_grad {}->{}", a.micro_batch, a.peer_stage);
  }
  return "?";
}

std::string FormatSchedule(const std::vector<PipelineAction>& actions) {
  std::string out;
  for (const auto& a : actions) out += (out.empty() ? "" : ", ") + FormatAction(a);
  return out;
}

Result<std::vector<PipelineAction>> StageSchedule(PipelineSchedule schedule, int num_stages,
                                                  int stage, int num_micro_batches) {
  if (num_stages < 1 || stage < 0 || stage >= num_stages || num_micro_batches < 1) {
    return MakeError(fmt::format("no pipeline schedule for stage {} of {} with {} micro-batches",
                                 stage, num_stages, num_micro_batches));
  }
  const int last = num_stages - 1;
  std::vector<PipelineAction> out;
  if (schedule == PipelineSchedule::kAllForwardAllBackward) {
    for (int i = 0; i < num_micro_batches; ++i) AppendForward(out, stage, last, i);
    for (int i = 0; i < num_micro_batches; ++i) AppendBackward(out, stage, last, i);
    return out;
  }
  if (num_micro_batches < num_stages - 1) {
    return MakeError(fmt::format(
        "the 1f1b pipeline engine needs at least pp - 1 = {} micro-batches per step, got {} "
        "(batch_accumulation_per_replica); raise it or use pp_engine: afab",
        num_stages - 1, num_micro_batches));
  }
  const int warmup = num_stages - stage - 1;
  for (int i = 0; i < warmup; ++i) AppendForward(out, stage, last, i);
  for (int i = warmup; i < num_micro_batches; ++i) {
    AppendForward(out, stage, last, i);
    AppendBackward(out, stage, last, i - warmup);
  }
  for (int i = num_micro_batches - warmup; i < num_micro_batches; ++i) {
    AppendBackward(out, stage, last, i);
  }
  return out;
}

std::vector<int> AssignBlocksToStages(const std::vector<int64_t>& block_costs, int num_stages) {
  int64_t total = 0;
  for (int64_t c : block_costs) total += c;
  std::vector<int> stages;
  int stage = 0;
  int64_t cumulative = 0;
  for (int64_t c : block_costs) {
    cumulative += c;
    stages.push_back(stage);
    // nanotron: cumulative > total * (stage + 1) / pp, compared exactly in integers.
    if (stage + 1 < num_stages && static_cast<__int128>(cumulative) * num_stages >
                                      static_cast<__int128>(total) * (stage + 1)) {
      ++stage;
    }
  }
  return stages;
}

std::vector<int64_t> LlamaBlockCosts(const LlamaPipelineShape& s) {
  const int64_t head_dim = s.num_attention_heads > 0 ? s.hidden_size / s.num_attention_heads : 0;
  const int64_t layer = 4 * s.num_attention_heads * head_dim * s.hidden_size +
                        3 * s.intermediate_size * s.hidden_size;
  std::vector<int64_t> costs{0};  // token embedding
  costs.insert(costs.end(), static_cast<size_t>(s.num_layers), layer);
  costs.push_back(0);                                    // final norm
  costs.push_back(s.padded_vocab_size * s.hidden_size);  // lm_head
  costs.push_back(0);                                    // cast to fp32
  costs.push_back(0);                                    // loss
  return costs;
}

}  // namespace strun::parallel

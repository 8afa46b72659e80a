#include "parallel/vocab_parallel.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

namespace strun::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// nanotron's _ShardedCrossEntropy: the max, the target logit and the sum of exponentials are
// reduced over the TP group; backward is local (softmax minus the one-hot of owned targets).
struct ShardedCrossEntropyFn : torch::autograd::Function<ShardedCrossEntropyFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits,
                            const at::Tensor& target, const CommGroupPtr& group) {
    const int64_t shard = logits.size(-1);
    const VocabRange range = VocabRangeOf(shard * group->size(), group->rank(), group->size());
    at::Tensor max = std::get<0>(logits.max(-1));
    group->AllReduce(max, ::c10d::ReduceOp::MAX).Wait();
    const at::Tensor shifted = logits - max.unsqueeze(-1);

    const at::Tensor not_owned = target.lt(range.start).logical_or(target.ge(range.end));
    const at::Tensor local_target = (target - range.start).masked_fill(not_owned, 0);
    at::Tensor predicted = shifted.gather(-1, local_target.unsqueeze(-1))
                               .squeeze(-1)
                               .masked_fill(not_owned, 0.0)
                               .contiguous();
    group->AllReduce(predicted).Wait();

    const at::Tensor exp = shifted.exp();
    at::Tensor sum_exp = exp.sum(-1).contiguous();
    group->AllReduce(sum_exp).Wait();

    ctx->save_for_backward({exp.div(sum_exp.unsqueeze(-1)), not_owned, local_target});
    return sum_exp.log() - predicted;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& softmax = saved[0];
    const at::Tensor& not_owned = saved[1];
    const at::Tensor& local_target = saved[2];
    at::Tensor grad = softmax.clone();
    // d loss / d logit = softmax - 1[target], the one-hot only where this rank owns the target.
    grad.scatter_add_(-1, local_target.unsqueeze(-1),
                      not_owned.logical_not().to(grad.scalar_type()).neg().unsqueeze(-1));
    grad.mul_(grads[0].unsqueeze(-1));
    return {grad, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

VocabRange VocabRangeOf(int64_t padded_vocab_size, int rank, int size) {
  const int64_t block = padded_vocab_size / size;
  return {rank * block, (rank + 1) * block};
}

Result<VocabParallelEmbedding> VocabParallelEmbedding::Create(int64_t padded_vocab_size,
                                                              int64_t hidden_size,
                                                              CommGroupPtr group, TpMode mode,
                                                              std::optional<int64_t> padding_idx) {
  const int size = group->size();
  if (padded_vocab_size < 1 || padded_vocab_size % size != 0) {
    return MakeError(fmt::format(
        "the vocabulary ({} rows) must be padded to a multiple of tp={} before sharding (nanotron "
        "pads vocab_size to a multiple of make_vocab_size_divisible_by * tp)",
        padded_vocab_size, size));
  }
  if (padding_idx && (*padding_idx < 0 || *padding_idx >= padded_vocab_size / size)) {
    return MakeError(fmt::format(
        "pad_token_id {} must be below the per-rank vocabulary {} (nanotron's embedding takes it "
        "as an index into each tp rank's shard)",
        *padding_idx, padded_vocab_size / size));
  }
  return VocabParallelEmbedding(padded_vocab_size, hidden_size, std::move(group), mode,
                                padding_idx);
}

at::Tensor VocabParallelEmbedding::Forward(const at::Tensor& input_ids,
                                           const at::Tensor& weight) const {
  TORCH_CHECK(
      weight.dim() == 2 && weight.size(0) == local_vocab_size() && weight.size(1) == hidden_,
      "VocabParallelEmbedding: weight must be [", local_vocab_size(), ", ", hidden_, "], got ",
      weight.sizes());
  const int64_t padding = padding_idx_ ? *padding_idx_ : -1;
  at::Tensor out;
  if (group_->size() == 1) {
    out = at::embedding(weight, input_ids, padding);
  } else {
    const VocabRange r = range();
    const at::Tensor not_owned = input_ids.lt(r.start).logical_or(input_ids.ge(r.end));
    const at::Tensor local_ids = (input_ids - r.start).masked_fill(not_owned, 0);
    out = at::embedding(weight, local_ids, padding)
              .mul(not_owned.logical_not().unsqueeze(-1).to(weight.scalar_type()));
  }
  return mode_ == TpMode::kAllReduce ? ReduceFromTpRegion(out, group_)
                                     : ReduceScatterSequence(out, group_);
}

at::Tensor VocabParallelCrossEntropy(const at::Tensor& sharded_logits, const at::Tensor& target,
                                     const CommGroupPtr& group) {
  TORCH_CHECK(sharded_logits.dim() == target.dim() + 1,
              "VocabParallelCrossEntropy: logits [..., V/tp] "
              "and target [...] do not match: ",
              sharded_logits.sizes(), " vs ", target.sizes());
  return ShardedCrossEntropyFn::apply(sharded_logits.to(at::kFloat), target, group);
}

at::Tensor VocabParallelMaskedLoss(const at::Tensor& sharded_logits, const at::Tensor& label_ids,
                                   const at::Tensor& label_mask, const CommGroupPtr& group) {
  const at::Tensor loss =
      VocabParallelCrossEntropy(sharded_logits, label_ids.transpose(0, 1).contiguous(), group)
          .transpose(0, 1);  // [B, S]
  const at::Tensor mask = label_mask.to(at::kFloat);
  return loss.mul(mask).sum().div(mask.sum());
}

}  // namespace strun::parallel

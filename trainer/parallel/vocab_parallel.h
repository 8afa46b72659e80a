// parallel/vocab_parallel.h: the vocabulary-parallel embedding and cross entropy of nanotron
// (TensorParallelEmbedding in tensor_parallel/nn.py, sharded_cross_entropy in functional.py).
//
// The vocabulary is padded first (config::PaddedVocabSize: vocab_size rounded up to a multiple of
// make_vocab_size_divisible_by * tp, 50257 -> 50260 at tp=4), so every TP rank holds V/tp rows:
// rank r owns token ids [r V/tp, (r+1) V/tp). The padded rows are real parameters, as nanotron's:
// input ids never select them (ids < the tokenizer's vocabulary), but their lm_head logits take
// part in the softmax, so the loss equals the unsharded cross entropy over the padded logits.
// The lm_head itself is a ColumnParallelLinear (tp_linear.h) producing the sharded logits.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

#include "parallel/process_grid_groups.h"
#include "parallel/tp_primitives.h"
#include "strun/result.h"

namespace strun::parallel {

// The token ids [start, end) a rank's shard holds.
struct VocabRange {
  int64_t start = 0;
  int64_t end = 0;
};
VocabRange VocabRangeOf(int64_t padded_vocab_size, int rank, int size);

class VocabParallelEmbedding {
 public:
  // padded_vocab_size must divide by the group size. padding_idx (model pad_token_id) is, as in
  // nanotron, an index into each rank's shard (nn.Embedding(V/tp, padding_idx=pad_token_id)):
  // that local row gets no gradient on every rank; it must be < V/tp.
  static Result<VocabParallelEmbedding> Create(int64_t padded_vocab_size, int64_t hidden_size,
                                               CommGroupPtr group, TpMode mode,
                                               std::optional<int64_t> padding_idx = std::nullopt);

  // input_ids: int64, sequence-first [S, B] (nanotron transposes [B, S] before embedding);
  // weight: the rank's [V/tp, hidden] shard. Returns [S, B, hidden] (kAllReduce) or the rank's
  // sequence block [S/tp, B, hidden] (kReduceScatter).
  at::Tensor Forward(const at::Tensor& input_ids, const at::Tensor& weight) const;

  VocabRange range() const { return VocabRangeOf(vocab_, group_->rank(), group_->size()); }
  int64_t local_vocab_size() const { return vocab_ / group_->size(); }

 private:
  VocabParallelEmbedding(int64_t vocab, int64_t hidden, CommGroupPtr group, TpMode mode,
                         std::optional<int64_t> padding_idx)
      : vocab_(vocab),
        hidden_(hidden),
        group_(std::move(group)),
        mode_(mode),
        padding_idx_(padding_idx) {}
  int64_t vocab_, hidden_;
  CommGroupPtr group_;
  TpMode mode_;
  std::optional<int64_t> padding_idx_;
};

// Per-token cross entropy from vocabulary-sharded logits: sharded_logits [..., V/tp] (computed in
// fp32 whatever their dtype, as nanotron's dtype=torch.float), target [...] int64 token ids in
// [0, V). Returns fp32 [...]: log(sum_v exp(logit_v)) - logit_target over the whole (padded)
// vocabulary. Differentiable w.r.t. the logits (softmax - one_hot, this rank's columns).
at::Tensor VocabParallelCrossEntropy(const at::Tensor& sharded_logits, const at::Tensor& target,
                                     const CommGroupPtr& group);

// nanotron's Loss block: sharded_logits [S, B, V/tp] (sequence-first), label_ids and label_mask
// [B, S]; returns sum(loss * mask) / sum(mask) in fp32 (a 0-d tensor, the same on every TP rank).
at::Tensor VocabParallelMaskedLoss(const at::Tensor& sharded_logits, const at::Tensor& label_ids,
                                   const at::Tensor& label_mask, const CommGroupPtr& group);

}  // namespace strun::parallel

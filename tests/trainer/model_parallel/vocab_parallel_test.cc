// The vocabulary-parallel embedding, lm_head and cross entropy (nanotron's TensorParallelEmbedding,
// column-parallel lm_head, sharded_cross_entropy and Loss) with GPT-2's 50257 tokens padded to a
// multiple of tp (50258 at tp=2, 50260 at tp=4), run by tp ranks as threads: the loss equals the
// unsharded masked cross entropy over the padded logits, and the gradients of both weight shards
// match, for both tp modes. fp32; tolerance rtol = atol = 1e-5 (summation order only).
#include "parallel/vocab_parallel.h"

#include <gtest/gtest.h>

#include <tuple>

#include "parallel/tp_linear.h"
#include "parallel/tp_linear_sharding.h"
#include "rank_threads.h"

namespace strun::parallel {
namespace {

using testing::ExpectClose;
using testing::Leaf;
using testing::RunRanks;
using testing::Seeded;
using testing::TpOnly;

// nanotron's _vocab_size_with_padding with make_vocab_size_divisible_by = 1 (the trainer uses
// config::PaddedVocabSize).
int64_t Padded(int64_t vocab, int tp) { return (vocab + tp - 1) / tp * tp; }

// What a rank holds of a [V, H] weight: rows [r V/tp, (r+1) V/tp).
at::Tensor Rows(const at::Tensor& full, int r, int tp) {
  const int64_t n = full.size(0) / tp;
  return full.narrow(0, r * n, n);
}

using Params = std::tuple<int, TpMode>;
class VocabParallelTest : public ::testing::TestWithParam<Params> {};

TEST_P(VocabParallelTest, EmbeddingLmHeadAndLossMatchUnsharded) {
  const auto [tp, mode] = GetParam();
  constexpr int64_t kVocab = 50257, S = 8, B = 2, H = 4;
  const int64_t V = Padded(kVocab, tp);
  EXPECT_EQ(V, tp == 4 ? 50260 : 50258);
  RunRanks(TpOnly(tp), [&, tp = tp, mode = mode](int r, ProcessGroups& groups) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    const at::Tensor ids = at::randint(kVocab, {B, S}, gen, at::kLong);  // never a padded row
    const at::Tensor labels = at::randint(kVocab, {B, S}, gen, at::kLong);
    const at::Tensor mask = at::rand({B, S}, gen).gt(0.25);
    const at::Tensor embedding = Seeded({V, H}, 1);
    const at::Tensor lm_head = Seeded({V, H}, 2);

    // Unsharded: nanotron's Llama ends without the decoder (identity here).
    at::Tensor re = Leaf(embedding), rl = Leaf(lm_head);
    const at::Tensor hidden = at::embedding(re, ids.transpose(0, 1));  // [S, B, H]
    const at::Tensor logits = at::linear(at::tanh(hidden), rl);        // [S, B, V]
    const at::Tensor per_token =
        at::cross_entropy_loss(logits.reshape({-1, V}), labels.transpose(0, 1).reshape(-1), {},
                               at::Reduction::None)
            .view({S, B})
            .transpose(0, 1);
    const at::Tensor fmask = mask.to(at::kFloat);
    const at::Tensor ref_loss = per_token.mul(fmask).sum().div(fmask.sum());
    ref_loss.backward();

    EXPECT_FALSE(VocabParallelEmbedding::Create(kVocab, H, groups.tp(), mode).ok());  // unpadded
    auto emb = VocabParallelEmbedding::Create(V, H, groups.tp(), mode);
    auto head = ColumnParallelLinear::Create(H, V, groups.tp(), {mode, false});
    ASSERT_TRUE(emb.ok() && head.ok());
    EXPECT_EQ(emb->range().start, r * V / tp);
    at::Tensor se = Leaf(Rows(embedding, r, tp)), sl = Leaf(Rows(lm_head, r, tp));
    const at::Tensor h = emb->Forward(ids.transpose(0, 1), se);
    const int64_t rows = mode == TpMode::kReduceScatter ? S / tp : S;
    ExpectClose(h, hidden.narrow(0, rows == S ? 0 : r * rows, rows).detach(), "embedding");
    const at::Tensor sharded_logits = head->Forward(at::tanh(h), sl);  // [S, B, V/tp]
    ExpectClose(sharded_logits, logits.narrow(-1, r * V / tp, V / tp).detach(), "sharded logits");
    const at::Tensor loss = VocabParallelMaskedLoss(sharded_logits, labels, mask, groups.tp());
    ExpectClose(loss, ref_loss.detach(), "loss");
    loss.backward();
    ExpectClose(sl.grad(), Rows(rl.grad(), r, tp), "lm_head grad");
    ExpectClose(se.grad(), Rows(re.grad(), r, tp), "embedding grad");
    // Padded rows are never selected: their embedding gradient is zero.
    if (r == tp - 1 && V > kVocab) {
      EXPECT_EQ(
          se.grad().narrow(0, se.size(0) - (V - kVocab), V - kVocab).abs().sum().item<float>(),
          0.0f);
    }
  });
}

INSTANTIATE_TEST_SUITE_P(
    Modes, VocabParallelTest,
    ::testing::Combine(::testing::Values(2, 4),
                       ::testing::Values(TpMode::kAllReduce, TpMode::kReduceScatter)),
    [](const auto& info) {
      return "tp" + std::to_string(std::get<0>(info.param)) +
             (std::get<1>(info.param) == TpMode::kAllReduce ? "_all_reduce" : "_reduce_scatter");
    });

TEST(VocabParallelCrossEntropyTest, PerTokenLossAndLogitGradient) {
  constexpr int tp = 4;
  constexpr int64_t N = 6, V = 20;
  RunRanks(TpOnly(tp), [&](int r, ProcessGroups& groups) {
    const at::Tensor logits = Seeded({N, V}, 21).mul(3.0);
    const at::Tensor target = at::tensor(std::vector<int64_t>{0, 4, 5, 19, 10, 14});
    const at::Tensor weights = Seeded({N}, 22);
    at::Tensor rl = Leaf(logits);
    const at::Tensor ref = at::cross_entropy_loss(rl, target, {}, at::Reduction::None);
    ref.mul(weights).sum().backward();

    at::Tensor sl = Leaf(logits.narrow(1, r * V / tp, V / tp));
    const at::Tensor loss = VocabParallelCrossEntropy(sl, target, groups.tp());
    ExpectClose(loss, ref.detach(), "per-token loss");
    loss.mul(weights).sum().backward();
    ExpectClose(sl.grad(), rl.grad().narrow(1, r * V / tp, V / tp), "logit grad");
  });
}

TEST(VocabParallelEmbeddingTest, PaddingIdxIndexesTheRanksShard) {
  EXPECT_TRUE(VocabParallelEmbedding::Create(8, 4, SingleRankGroup(), TpMode::kAllReduce, 7).ok());
  EXPECT_FALSE(VocabParallelEmbedding::Create(8, 4, SingleRankGroup(), TpMode::kAllReduce, 8).ok());
}

}  // namespace
}  // namespace strun::parallel

// Column- and row-parallel linears (nanotron's TensorParallelColumnLinear/RowLinear) as the Llama
// MLP uses them: gate_up_proj (column, fused gate/up shards) -> silu(gate) * up -> down_proj (row),
// run by tp ranks as threads against the unsharded MLP: outputs and the gradients of the input and
// of both weight shards, for both tp modes, with and without async communication. fp32,
// tolerance rtol = atol = 1e-5 (only the summation order differs). Also the shard layouts.
#include "parallel/tp_linear.h"

#include <gtest/gtest.h>

#include <tuple>

#include "parallel/tp_linear_sharding.h"
#include "rank_threads.h"

namespace strun::parallel {
namespace {

using testing::ExpectClose;
using testing::Leaf;
using testing::RunRanks;
using testing::Seeded;
using testing::TpOnly;

at::Tensor Shard(const at::Tensor& full, const ShardSpec& spec, int rank, int size) {
  auto r = ShardTensor(full, spec, rank, size);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : at::Tensor();
}

at::Tensor SwiGlu(const at::Tensor& merged) {
  auto halves = merged.chunk(2, -1);  // nanotron's GLUActivation: the shard is [gate_r, up_r]
  return at::silu(halves[0]) * halves[1];
}

using Params = std::tuple<int, TpMode, bool>;
class TpLinearTest : public ::testing::TestWithParam<Params> {};

TEST_P(TpLinearTest, LlamaMlpMatchesUnsharded) {
  const auto [tp, mode, async] = GetParam();
  constexpr int64_t S = 8, B = 2, H = 6, I = 8;
  RunRanks(TpOnly(tp), [&, tp = tp, mode = mode, async = async](int r, ProcessGroups& groups) {
    const at::Tensor x = Seeded({S, B, H}, 1);
    const at::Tensor w_gate_up = Seeded({2 * I, H}, 2);
    const at::Tensor w_down = Seeded({H, I}, 3);
    const at::Tensor grad_y = Seeded({S, B, H}, 4);

    // The unsharded reference.
    at::Tensor rx = Leaf(x), rgu = Leaf(w_gate_up), rd = Leaf(w_down);
    at::Tensor ry = at::linear(SwiGlu(at::linear(rx, rgu)), rd);
    ry.backward(grad_y);

    const TpLinearOptions opts{mode, async};
    auto column = ColumnParallelLinear::Create(H, 2 * I, groups.tp(), opts);
    // nanotron's MLP: down_proj async only in REDUCE_SCATTER mode.
    auto row = RowParallelLinear::Create(I, H, groups.tp(),
                                         {mode, async && mode == TpMode::kReduceScatter});
    ASSERT_TRUE(column.ok() && row.ok());
    EXPECT_EQ(column->local_out_features(), 2 * I / tp);
    EXPECT_EQ(row->local_in_features(), I / tp);

    const int64_t rows = S / tp;
    const bool seq = mode == TpMode::kReduceScatter;
    at::Tensor sx = Leaf(seq ? x.narrow(0, r * rows, rows) : x);
    at::Tensor sgu = Leaf(Shard(w_gate_up, GateUpShardSpec(I), r, tp));
    at::Tensor sd = Leaf(Shard(w_down, RowShardSpec(), r, tp));
    at::Tensor merged = column->Forward(sx, sgu);
    ASSERT_EQ(merged.sizes(), (at::IntArrayRef{S, B, 2 * I / tp}));
    at::Tensor y = row->Forward(SwiGlu(merged), sd);
    y.backward(seq ? grad_y.narrow(0, r * rows, rows) : grad_y);

    ExpectClose(y, seq ? ry.narrow(0, r * rows, rows) : ry, "output");
    ExpectClose(sx.grad(), seq ? rx.grad().narrow(0, r * rows, rows) : rx.grad(), "input grad");
    ExpectClose(sgu.grad(), Shard(rgu.grad(), GateUpShardSpec(I), r, tp), "gate_up grad");
    ExpectClose(sd.grad(), Shard(rd.grad(), RowShardSpec(), r, tp), "down grad");
  });
}

INSTANTIATE_TEST_SUITE_P(
    Modes, TpLinearTest,
    ::testing::Combine(::testing::Values(2, 4),
                       ::testing::Values(TpMode::kAllReduce, TpMode::kReduceScatter),
                       ::testing::Bool()),
    [](const auto& info) {
      return "tp" + std::to_string(std::get<0>(info.param)) +
             (std::get<1>(info.param) == TpMode::kAllReduce ? "_all_reduce" : "_reduce_scatter") +
             (std::get<2>(info.param) ? "_async" : "");
    });

// Biases: the column bias is sharded with the rows; the row bias lives on TP rank 0 only.
TEST(TpLinearBiasTest, MatchesUnshardedInBothModes) {
  constexpr int tp = 2;
  constexpr int64_t S = 4, B = 1, H = 4, F = 6;
  for (TpMode mode : {TpMode::kAllReduce, TpMode::kReduceScatter}) {
    RunRanks(TpOnly(tp), [&](int r, ProcessGroups& groups) {
      const at::Tensor x = Seeded({S, B, H}, 11), w1 = Seeded({F, H}, 12), b1 = Seeded({F}, 13);
      const at::Tensor w2 = Seeded({H, F}, 14), b2 = Seeded({H}, 15), g = Seeded({S, B, H}, 16);
      at::Tensor rb1 = Leaf(b1), rb2 = Leaf(b2);
      at::Tensor ry = at::linear(at::tanh(at::linear(x, w1, rb1)), w2, rb2);
      ry.backward(g);

      auto column = ColumnParallelLinear::Create(H, F, groups.tp(), {mode, true});
      auto row =
          RowParallelLinear::Create(F, H, groups.tp(), {mode, mode == TpMode::kReduceScatter});
      ASSERT_TRUE(column.ok() && row.ok());
      const bool seq = mode == TpMode::kReduceScatter;
      const int64_t rows = S / tp;
      at::Tensor sb1 = Leaf(Shard(b1.unsqueeze(1), ColumnShardSpec(), r, tp).squeeze(1));
      at::Tensor sb2 = r == 0 ? Leaf(b2) : at::Tensor();
      at::Tensor y =
          row->Forward(at::tanh(column->Forward(seq ? x.narrow(0, r * rows, rows) : x,
                                                Shard(w1, ColumnShardSpec(), r, tp), sb1)),
                       Shard(w2, RowShardSpec(), r, tp), sb2);
      y.backward(seq ? g.narrow(0, r * rows, rows) : g);
      ExpectClose(y, seq ? ry.narrow(0, r * rows, rows) : ry, "output");
      ExpectClose(sb1.grad(), rb1.grad().narrow(0, r * F / tp, F / tp), "column bias grad");
      if (r == 0) ExpectClose(sb2.grad(), rb2.grad(), "row bias grad");
    });
  }
}

TEST(TpLinearCreateTest, RejectsWhatNanotronRejects) {
  const CommGroupPtr g = SingleRankGroup();
  EXPECT_FALSE(RowParallelLinear::Create(8, 8, g, {TpMode::kAllReduce, true}).ok());
  EXPECT_TRUE(RowParallelLinear::Create(8, 8, g, {TpMode::kReduceScatter, true}).ok());
  EXPECT_TRUE(ColumnParallelLinear::Create(8, 8, g, {TpMode::kAllReduce, true}).ok());
}

TEST(TpShardingTest, QkvShardHoldsTheRanksSliceOfQThenKThenV) {
  // 4 query heads, 2 kv heads, head_dim 3: q rows [0, 12), k [12, 18), v [18, 24).
  const ShardSpec spec = QkvShardSpec(4, 2, 3);
  auto slices = ShardSlices(24, spec, 1, 2);
  ASSERT_TRUE(slices.ok());
  EXPECT_EQ(*slices, (std::vector<ShardSlice>{{0, 6, 6}, {6, 15, 3}, {9, 21, 3}}));
  const at::Tensor full = at::arange(24 * 5, at::kFloat).view({24, 5});
  const at::Tensor shard = Shard(full, spec, 1, 2);
  ExpectClose(shard, at::cat({full.slice(0, 6, 12), full.slice(0, 15, 18), full.slice(0, 21, 24)}),
              "qkv shard 1");
  auto too_many = ShardSlices(24, spec, 0, 4);  // 6 k rows do not split over 4
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("does not split over tp=4"), std::string::npos);
}

TEST(TpShardingTest, ShardThenUnshardIsTheIdentity) {
  const std::vector<std::pair<ShardSpec, std::vector<int64_t>>> cases = {
      {QkvShardSpec(8, 4, 2), {32, 6}},
      {GateUpShardSpec(8), {16, 6}},
      {ColumnShardSpec(), {12, 6}},
      {RowShardSpec(), {6, 12}}};
  for (const auto& [spec, shape] : cases) {
    const at::Tensor full = Seeded(shape, 7);
    for (int tp : {1, 2, 4}) {
      std::vector<at::Tensor> shards;
      for (int r = 0; r < tp; ++r) shards.push_back(Shard(full, spec, r, tp));
      auto back = UnshardTensor(shards, spec);
      ASSERT_TRUE(back.ok()) << back.error().message;
      EXPECT_TRUE(at::equal(*back, full)) << "tp=" << tp << " dim=" << spec.dim;
    }
  }
}

TEST(TpShardingTest, LlamaParameterSpecs) {
  const LlamaShardShape shape{8, 4, 16, 64};
  auto spec = [&](const char* name) { return LlamaParameterShardSpec(name, shape); };
  EXPECT_EQ(*spec("model.decoder.0.pp_block.attn.qkv_proj.weight"), QkvShardSpec(8, 4, 16));
  EXPECT_EQ(*spec("model.decoder.3.pp_block.mlp.gate_up_proj.weight"), GateUpShardSpec(64));
  EXPECT_EQ(*spec("model.decoder.0.pp_block.attn.o_proj.weight"), RowShardSpec());
  EXPECT_EQ(*spec("model.decoder.0.pp_block.mlp.down_proj.weight"), RowShardSpec());
  EXPECT_EQ(*spec("model.token_position_embeddings.pp_block.token_embedding.weight"),
            ColumnShardSpec());
  EXPECT_EQ(*spec("model.lm_head.pp_block.weight"), ColumnShardSpec());
  EXPECT_EQ(*spec("model.final_layer_norm.pp_block.weight"), std::nullopt);
  EXPECT_EQ(*spec("model.decoder.1.pp_block.input_layernorm.weight"), std::nullopt);
  EXPECT_FALSE(spec("model.decoder.1.pp_block.attn.rotary.inv_freq").ok());
}

}  // namespace
}  // namespace strun::parallel

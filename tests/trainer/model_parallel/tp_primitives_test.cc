// The c10d groups of a process grid and the differentiable TP collectives, with ranks as threads.
// Every rank rebuilds all ranks' seeded inputs, so it checks its forward output and its input
// gradient against the unsharded computation itself (fp32, tolerance 1e-5: sums differ in order).
#include "parallel/tp_primitives.h"

#include <gtest/gtest.h>

#include "rank_threads.h"

namespace strun::parallel {
namespace {

using testing::ExpectClose;
using testing::Leaf;
using testing::RunRanks;
using testing::Seeded;
using testing::TpOnly;

TEST(ProcessGroupsTest, EachRankReducesOverItsNanotronGroups) {
  RunRanks(GridShape{2, 2, 2, 1}, [](int rank, ProcessGroups& groups) {
    const ProcessGrid& grid = groups.grid();
    EXPECT_EQ(groups.coords(), grid.Coords(rank));
    for (GroupKind kind : kGroupCreationOrder) {
      const CommGroupPtr& g = groups.Get(kind);
      const std::vector<int> members = grid.GroupOf(kind, rank);
      ASSERT_EQ(g->world_ranks(), members) << GroupKindName(kind);
      EXPECT_EQ(members[g->rank()], rank);
      at::Tensor t = at::full({1}, static_cast<float>(rank));
      g->AllReduce(t).Wait();
      int expected = 0;
      for (int m : members) expected += m;
      EXPECT_EQ(t.item<float>(), static_cast<float>(expected)) << GroupKindName(kind);
    }
    // pp = 2 here, so mp (tp x pp) is its own group, while tp_and_ep shares tp's.
    EXPECT_EQ(groups.Get(GroupKind::kTpAndEp).get(), groups.tp().get());
    EXPECT_NE(groups.mp().get(), groups.tp().get());
  });
}

class TpPrimitivesTest : public ::testing::TestWithParam<int> {};

TEST_P(TpPrimitivesTest, ForwardAndBackwardMatchTheUnshardedComputation) {
  const int tp = GetParam();
  RunRanks(TpOnly(tp), [tp](int r, ProcessGroups& groups) {
    const CommGroupPtr& g = groups.tp();
    auto per_rank = [&](at::IntArrayRef shape, uint64_t seed) {
      std::vector<at::Tensor> v;
      for (int i = 0; i < tp; ++i) v.push_back(Seeded(shape, seed + i));
      return v;
    };
    auto sum = [](const std::vector<at::Tensor>& v) { return at::stack(v).sum(0); };

    {  // copy to the TP region: identity forward; gradients summed over ranks backward
      const at::Tensor x = Seeded({3, 2, 4}, 1);
      const auto grads = per_rank({3, 2, 4}, 100);
      at::Tensor leaf = Leaf(x);
      at::Tensor y = CopyToTpRegion(leaf, g);
      ExpectClose(y, x, "copy forward");
      y.backward(grads[r]);
      ExpectClose(leaf.grad(), sum(grads), "copy backward");
    }
    {  // reduce from the TP region: sum forward; identity backward
      const auto xs = per_rank({3, 2, 4}, 200);
      const at::Tensor grad = Seeded({3, 2, 4}, 2);
      at::Tensor leaf = Leaf(xs[r]);
      at::Tensor y = ReduceFromTpRegion(leaf, g);
      ExpectClose(y, sum(xs), "reduce forward");
      ExpectClose(leaf, xs[r], "reduce leaves its input alone");
      y.backward(grad);
      ExpectClose(leaf.grad(), grad, "reduce backward");
    }
    {  // all-gather along the sequence; reduce-scatter backward
      const auto xs = per_rank({2, 3, 4}, 300);
      const auto grads = per_rank({2 * tp, 3, 4}, 400);
      at::Tensor leaf = Leaf(xs[r]);
      at::Tensor y = AllGatherSequence(leaf, g);
      ExpectClose(y, at::cat(xs, 0), "all-gather forward");
      y.backward(grads[r]);
      ExpectClose(leaf.grad(), sum(grads).narrow(0, 2 * r, 2), "all-gather backward");
    }
    {  // reduce-scatter along the sequence; all-gather backward
      const auto xs = per_rank({2 * tp, 3, 4}, 500);
      const auto grads = per_rank({2, 3, 4}, 600);
      at::Tensor leaf = Leaf(xs[r]);
      at::Tensor y = ReduceScatterSequence(leaf, g);
      ExpectClose(y, sum(xs).narrow(0, 2 * r, 2), "reduce-scatter forward");
      y.backward(grads[r]);
      ExpectClose(leaf.grad(), at::cat(grads, 0), "reduce-scatter backward");
    }
    {  // gather the last dim; own slice of the (replicated) gradient backward
      const auto xs = per_rank({3, 2, 5}, 700);
      const at::Tensor grad = Seeded({3, 2, 5 * tp}, 3);
      at::Tensor leaf = Leaf(xs[r]);
      at::Tensor y = GatherLastDim(leaf, g);
      ExpectClose(y, at::cat(xs, -1), "gather-last forward");
      y.backward(grad);
      ExpectClose(leaf.grad(), grad.narrow(-1, 5 * r, 5), "gather-last backward");
    }
    {  // split the last dim; gradients gathered backward
      const at::Tensor x = Seeded({3, 2, 5 * tp}, 4);
      const auto grads = per_rank({3, 2, 5}, 800);
      at::Tensor leaf = Leaf(x);
      at::Tensor y = SplitLastDim(leaf, g);
      ExpectClose(y, x.narrow(-1, 5 * r, 5), "split-last forward");
      y.backward(grads[r]);
      ExpectClose(leaf.grad(), at::cat(grads, -1), "split-last backward");
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Tp, TpPrimitivesTest, ::testing::Values(2, 4),
                         [](const auto& info) { return "tp" + std::to_string(info.param); });

TEST(TpPrimitivesSingleRankTest, AreTheIdentity) {
  const CommGroupPtr g = SingleRankGroup();
  const at::Tensor x = Seeded({4, 2, 3}, 9);
  for (auto f : {&CopyToTpRegion, &ReduceFromTpRegion, &AllGatherSequence, &ReduceScatterSequence,
                 &GatherLastDim, &SplitLastDim}) {
    ExpectClose(f(x, g), x, "identity");
  }
}

}  // namespace
}  // namespace strun::parallel

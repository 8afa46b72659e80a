// Tests of optim/optimizer.h, optim/flat_buffer.h and optim/grad_clip.h.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "optim/flat_buffer.h"
#include "optim/grad_clip.h"
#include "optim/optimizer.h"

namespace strun::optim {
namespace {

const at::TensorOptions kF64 = at::TensorOptions().dtype(at::kDouble);
const at::TensorOptions kF32 = at::TensorOptions().dtype(at::kFloat);

OptimizerOptions Adam() {
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdamW;
  o.adam_beta1 = 0.9;
  o.adam_beta2 = 0.95;
  o.adam_eps = 1e-8;
  o.weight_decay = 0.01;
  return o;
}

TEST(OptimizerTest, AdamWMatchesHandComputedSteps) {
  const std::vector<double> p0 = {1.0, -2.0, 0.5};
  at::Tensor param = at::tensor(p0, kF64);
  at::Tensor grad = at::zeros({3}, kF64);
  Optimizer opt(Adam(), {{"w", param, grad}});
  const std::vector<std::vector<double>> grads = {
      {0.1, -0.3, 2.0}, {-0.2, 0.1, 1.0}, {0.05, 0.0, -1.0}};
  const std::vector<double> lrs = {1e-3, 5e-3, 2e-3};
  std::vector<double> p = p0, m(3, 0), v(3, 0);
  for (size_t t = 0; t < grads.size(); ++t) {
    grad.copy_(at::tensor(grads[t], kF64));
    opt.Step(lrs[t]);
    const double step = static_cast<double>(t + 1);
    for (int i = 0; i < 3; ++i) {
      const double g = grads[t][i];
      p[i] *= 1 - lrs[t] * 0.01;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.95 * v[i] + 0.05 * g * g;
      const double mhat = m[i] / (1 - std::pow(0.9, step));
      const double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(0.95, step)) + 1e-8;
      p[i] -= lrs[t] * mhat / denom;
      EXPECT_NEAR(param[i].item<double>(), p[i], 1e-14) << "step " << t + 1 << " element " << i;
    }
    if (t == 0) {
      // First step: the update is lr * sign(g) on top of the decoupled decay.
      EXPECT_NEAR(param[0].item<double>(), 1.0 * (1 - 1e-5) - 1e-3, 1e-9);
    }
  }
  EXPECT_EQ(opt.step(), 3);
}

TEST(OptimizerTest, SgdAppliesCoupledWeightDecay) {
  at::Tensor param = at::tensor({1.0, -1.0}, kF64);
  at::Tensor grad = at::tensor({0.5, 0.25}, kF64);
  OptimizerOptions o;
  o.kind = OptimizerKind::kSgd;
  o.weight_decay = 0.1;
  Optimizer opt(o, {{"w", param, grad}});
  opt.Step(0.2);
  EXPECT_NEAR(param[0].item<double>(), 1.0 - 0.2 * (0.5 + 0.1 * 1.0), 1e-15);
  EXPECT_NEAR(param[1].item<double>(), -1.0 - 0.2 * (0.25 - 0.1), 1e-15);
  EXPECT_TRUE(opt.StateDict().size() == 1);  // only the step count
}

TEST(OptimizerTest, ShardedFlatAdamWEqualsPerTensorAdamW) {
  at::manual_seed(1);
  NamedTensors params = {
      {"a", at::randn({3, 5}, kF32)}, {"b", at::randn({7}, kF32)}, {"c", at::randn({2, 2}, kF32)}};
  std::vector<at::Tensor> grads = {at::randn({3, 5}, kF32), at::randn({7}, kF32),
                                   at::randn({2, 2}, kF32)};
  // Reference: one optimizer over each tensor.
  std::vector<OptimizedTensor> ref;
  for (size_t i = 0; i < params.size(); ++i) {
    ref.push_back({params[i].first, params[i].second.clone(), grads[i]});
  }
  Optimizer per_tensor(Adam(), ref);
  // ZeRO-1 style: flat fp32 master weights and grads, each of 3 ranks updates its shard.
  FlatLayout layout(params, 3);
  EXPECT_EQ(layout.used(), 26);
  EXPECT_EQ(layout.numel(), 27);
  at::Tensor master = layout.NewBuffer(kF32), flat_grads = layout.NewBuffer(kF32);
  std::vector<at::Tensor> ps;
  for (auto& [n, t] : params) ps.push_back(t);
  layout.Pack(ps, master);
  layout.Accumulate(grads, flat_grads);
  std::vector<Optimizer> shards;
  for (int64_t r = 0; r < 3; ++r) {
    auto [b, e] = layout.ShardRange(r, 3);
    EXPECT_EQ(e - b, 9);
    shards.emplace_back(Adam(), std::vector<OptimizedTensor>{{"shard", master.narrow(0, b, e - b),
                                                              flat_grads.narrow(0, b, e - b)}});
  }
  for (double lr : {1e-2, 3e-2}) {
    per_tensor.Step(lr);
    for (Optimizer& o : shards) o.Step(lr);
  }
  std::vector<at::Tensor> out = {at::empty({3, 5}, kF32), at::empty({7}, kF32),
                                 at::empty({2, 2}, kF32)};
  layout.Unpack(master, out);
  for (size_t i = 0; i < out.size(); ++i) {
    // Same arithmetic per element; vectorised and scalar loop tails may round differently.
    EXPECT_TRUE(out[i].allclose(per_tensor.tensors()[i].param, 1e-6, 1e-7)) << params[i].first;
  }
}

TEST(OptimizerTest, StateDictResumesBitwise) {
  at::manual_seed(2);
  at::Tensor w0 = at::randn({10}, kF32);
  std::vector<at::Tensor> g = {at::randn({10}, kF32), at::randn({10}, kF32), at::randn({10}, kF32)};
  at::Tensor wa = w0.clone(), ga = at::zeros({10}, kF32);
  Optimizer a(Adam(), {{"w", wa, ga}});
  for (int t = 0; t < 3; ++t) {
    ga.copy_(g[t]);
    a.Step(1e-2);
  }
  at::Tensor wb = w0.clone(), gb = at::zeros({10}, kF32);
  Optimizer b(Adam(), {{"w", wb, gb}});
  for (int t = 0; t < 2; ++t) {
    gb.copy_(g[t]);
    b.Step(1e-2);
  }
  NamedTensors state;
  for (auto& [n, t] : b.StateDict()) state.emplace_back(n, t.clone());
  ASSERT_EQ(state.size(), 3u);
  EXPECT_EQ(state[0].first, "step");
  EXPECT_EQ(state[1].first, "w.exp_avg");
  EXPECT_EQ(state[2].first, "w.exp_avg_sq");
  at::Tensor wc = wb.clone(), gc = g[2].clone();
  Optimizer c(Adam(), {{"w", wc, gc}});
  ASSERT_TRUE(c.LoadStateDict(state).ok());
  EXPECT_EQ(c.step(), 2);
  c.Step(1e-2);
  EXPECT_TRUE(wc.equal(wa));

  NamedTensors bad = state;
  bad[1].second = at::zeros({3}, kF32);
  auto s = c.LoadStateDict(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("w.exp_avg"), std::string::npos);
  bad = state;
  bad.pop_back();
  EXPECT_FALSE(c.LoadStateDict(bad).ok());
}

TEST(GradClipTest, ClipsToMaxNormAndReturnsUnclippedNorm) {
  at::Tensor a = at::tensor({3.0f, 0.0f}, kF32);
  at::Tensor b = at::tensor({4.0f}, kF32);
  at::Tensor norm = ClipGradNorm({a, b}, 1.0);
  EXPECT_FLOAT_EQ(norm.item<float>(), 5.0f);
  const float coef = 1.0f / (5.0f + 1e-6f);
  EXPECT_FLOAT_EQ(a[0].item<float>(), 3.0f * coef);
  EXPECT_FLOAT_EQ(b[0].item<float>(), 4.0f * coef);
  // Below the limit: untouched.
  at::Tensor c = at::tensor({0.3f, 0.4f}, kF32);
  norm = ClipGradNorm({c, at::Tensor()}, 1.0);
  EXPECT_FLOAT_EQ(norm.item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(c[1].item<float>(), 0.4f);
}

TEST(GradClipTest, ShardedNormsSumToTheWholeNorm) {
  at::manual_seed(3);
  at::Tensor g = at::randn({100}, kF64);
  at::Tensor whole = GradNormSquared({g});
  at::Tensor parts = GradNormSquared({g.narrow(0, 0, 37)}) + GradNormSquared({g.narrow(0, 37, 63)});
  EXPECT_NEAR(whole.item<double>(), parts.item<double>(), 1e-10);
  EXPECT_NEAR(whole.item<double>(), g.pow(2).sum().item<double>(), 1e-10);
  // bf16 gradients on the CPU: the norm is accumulated in fp64 (fp32 on CUDA).
  EXPECT_EQ(GradNormSquared({g.to(at::kBFloat16)}).scalar_type(), at::kDouble);
}

TEST(GradClipTest, LongFp32GradientsKeepTheirNormPrecise) {
  // libtorch 1.13's fp32 CPU norm of 30M elements was 1.6e-3 off: the clip coefficient of a
  // 100M-parameter model with it.
  at::manual_seed(4);
  at::Tensor g = at::randn({30'000'000}, kF32).mul_(1e-3);
  const double exact = g.to(at::kDouble).pow(2).sum().item<double>();
  const double got = GradNormSquared({g}).item<double>();
  EXPECT_NEAR(got / exact, 1.0, 1e-9);
}

TEST(FlatLayoutTest, ShardsSlicesAndMixedPrecisionCopies) {
  NamedTensors t = {{"x", at::zeros({2, 3}, kF32)}, {"y", at::zeros({5}, kF32)}};
  FlatLayout layout(t, 4);
  EXPECT_EQ(layout.numel(), 12);
  EXPECT_EQ(layout.ShardRange(0, 4), (std::pair<int64_t, int64_t>{0, 3}));
  EXPECT_EQ(layout.ShardRange(3, 4), (std::pair<int64_t, int64_t>{9, 12}));
  auto slices = layout.SlicesIn(3, 9);
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[0].name, "x");
  EXPECT_EQ(slices[0].tensor_offset, 3);
  EXPECT_EQ(slices[0].numel, 3);
  EXPECT_EQ(slices[1].name, "y");
  EXPECT_EQ(slices[1].tensor_offset, 0);
  EXPECT_EQ(slices[1].flat_offset, 6);
  EXPECT_EQ(slices[1].numel, 3);

  // bf16 gradients accumulate into fp32; fp32 master weights copy back into bf16 parameters.
  at::Tensor flat = layout.NewBuffer(kF32);
  std::vector<at::Tensor> g = {at::full({2, 3}, 0.5, kF32.dtype(at::kBFloat16)),
                               at::full({5}, 0.25, kF32.dtype(at::kBFloat16))};
  layout.Accumulate(g, flat);
  layout.Accumulate(g, flat);
  EXPECT_FLOAT_EQ(flat[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(flat[10].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(flat[11].item<float>(), 0.0f);  // padding
  std::vector<at::Tensor> bf = {at::zeros({2, 3}, kF32.dtype(at::kBFloat16)),
                                at::zeros({5}, kF32.dtype(at::kBFloat16))};
  layout.Unpack(flat, bf);
  EXPECT_EQ(bf[1][4].item<float>(), 0.5f);
  EXPECT_EQ(layout.Views(flat)[1].sizes(), at::IntArrayRef({5}));

  // Assign (a step's first micro-batch) overwrites what the buffer held; undefined gradients
  // become zeros; the padding stays zero.
  layout.Assign({g[0], at::Tensor()}, flat);
  EXPECT_FLOAT_EQ(flat[0].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(flat[10].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(flat[11].item<float>(), 0.0f);
  layout.Accumulate(g, flat);
  EXPECT_FLOAT_EQ(flat[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(flat[10].item<float>(), 0.25f);
}

}  // namespace
}  // namespace strun::optim

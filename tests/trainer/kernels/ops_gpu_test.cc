// The ops table's CUDA kernels (model/ops.h CudaOps) against the ATen reference (AtenOps) on the
// same bf16 CUDA inputs: outputs and gradients, as relative errors ||a - b|| / ||b||. Tolerances:
// 2e-3 where both paths round the same fp32 values to bf16 (they differ only in fp32 evaluation
// order), 1e-2 to 3e-2 where bf16 GEMMs or bf16 sums of many terms differ in order, 1e-6 for the
// fp32 optimizer. Skipped where there is no CUDA device.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "model/llama.h"
#include "model/ops.h"
#include "optim/flat_buffer.h"
#include "optim/optimizer.h"
#include "tiny_llama.h"

namespace strun::model {
namespace {
using optim::FlatLayout;
using optim::Optimizer;
using optim::OptimizerOptions;

double RelErr(const at::Tensor& out, const at::Tensor& ref) {
  at::Tensor o = out.detach().to(at::kDouble), r = ref.detach().to(at::kDouble);
  EXPECT_TRUE(o.isfinite().all().item<bool>());
  return (o - r).norm().item<double>() / r.norm().item<double>();
}

at::TensorOptions Bf16Cuda() { return at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA); }

// A fresh leaf copy that records its gradient.
at::Tensor Leaf(const at::Tensor& t) { return t.detach().clone().requires_grad_(true); }

#define REQUIRE_CUDA_OPS()                              \
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device"; \
  ASSERT_NE(CudaOps(), nullptr) << "libtorch has CUDA but this build has no kernels (no nvcc?)"

TEST(KernelsGpuTest, RmsNormForwardBackward) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(1);
  for (int64_t hidden : {768, 200, 2048}) {
    at::Tensor x = at::randn({4, 300, hidden}, Bf16Cuda()).mul(3);
    at::Tensor w = at::randn({hidden}, Bf16Cuda()).mul(0.2).add(1);
    at::Tensor dy = at::randn({4, 300, hidden}, Bf16Cuda());
    at::Tensor xr = Leaf(x), wr = Leaf(w), xc = Leaf(x), wc = Leaf(w);
    at::Tensor yr = AtenOps().rms_norm(xr, wr, 1e-5);
    at::Tensor yc = CudaOps()->rms_norm(xc, wc, 1e-5);
    EXPECT_EQ(yc.sizes(), yr.sizes());
    EXPECT_EQ(yc.scalar_type(), at::kBFloat16);
    EXPECT_LT(RelErr(yc, yr), 2e-3) << "hidden " << hidden;
    yr.backward(dy);
    yc.backward(dy);
    EXPECT_LT(RelErr(xc.grad(), xr.grad()), 1e-2) << "hidden " << hidden;
    EXPECT_LT(RelErr(wc.grad(), wr.grad()), 1e-2) << "hidden " << hidden;
  }
}

// The fork's second output is x itself; its gradient (the residual branch's) is added to dx in the
// backward kernel, in fp32 before the rounding to bf16, where ATen's autograd adds two bf16
// tensors.
TEST(KernelsGpuTest, RmsNormForkAddsTheResidualGradient) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(7);
  const int64_t hidden = 768;
  at::Tensor x = at::randn({4, 300, hidden}, Bf16Cuda()).mul(3);
  at::Tensor w = at::randn({hidden}, Bf16Cuda()).mul(0.2).add(1);
  at::Tensor dy = at::randn({4, 300, hidden}, Bf16Cuda());
  at::Tensor dr = at::randn({4, 300, hidden}, Bf16Cuda());
  at::Tensor xr = Leaf(x), wr = Leaf(w), xc = Leaf(x), wc = Leaf(w);
  std::vector<at::Tensor> ref = AtenOps().rms_norm_fork(xr, wr, 1e-5);
  std::vector<at::Tensor> out = CudaOps()->rms_norm_fork(xc, wc, 1e-5);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_LT(RelErr(out[0], ref[0]), 2e-3);
  EXPECT_TRUE(out[1].equal(x));
  torch::autograd::backward({ref[0], ref[1]}, {dy, dr});
  torch::autograd::backward({out[0], out[1]}, {dy, dr});
  EXPECT_LT(RelErr(xc.grad(), xr.grad()), 1e-2);
  EXPECT_LT(RelErr(wc.grad(), wr.grad()), 1e-2);
  // Only one branch used: the other gradient is absent.
  at::Tensor x1 = Leaf(x), w1 = Leaf(w);
  CudaOps()->rms_norm_fork(x1, w1, 1e-5)[1].backward(dr);
  EXPECT_TRUE(x1.grad().equal(dr));
}

TEST(KernelsGpuTest, RotaryQkvForwardBackward) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(2);
  const int64_t b = 2, s = 130, nq = 4, nkv = 2, d = 64;
  auto [cos, sin] = RotaryTables(s, d, 10000.0, Bf16Cuda());
  at::Tensor qkv = at::randn({b, s, (nq + 2 * nkv) * d}, Bf16Cuda());
  at::Tensor xr = Leaf(qkv), xc = Leaf(qkv);
  std::vector<at::Tensor> ref = AtenOps().rotary_qkv(xr, nq, nkv, d, cos, sin);
  std::vector<at::Tensor> out = CudaOps()->rotary_qkv(xc, nq, nkv, d, cos, sin);
  ASSERT_EQ(out.size(), 3u);
  at::Tensor lr = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
  at::Tensor lc = lr.clone();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].sizes(), ref[i].sizes()) << i;
    EXPECT_LT(RelErr(out[i], ref[i]), 2e-3) << "output " << i;
    at::Tensor g = at::randn(ref[i].sizes(), Bf16Cuda());
    lr = lr + (ref[i].to(at::kFloat) * g.to(at::kFloat)).sum();
    lc = lc + (out[i].to(at::kFloat) * g.to(at::kFloat)).sum();
  }
  lr.backward();
  lc.backward();
  EXPECT_LT(RelErr(xc.grad(), xr.grad()), 2e-3);
}

TEST(KernelsGpuTest, SiluMulForwardBackward) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(3);
  at::Tensor gu = at::randn({3, 100, 2 * 1536}, Bf16Cuda()).mul(2);
  at::Tensor d = at::randn({3, 100, 1536}, Bf16Cuda());
  at::Tensor xr = Leaf(gu), xc = Leaf(gu);
  at::Tensor yr = AtenOps().silu_mul(xr), yc = CudaOps()->silu_mul(xc);
  EXPECT_LT(RelErr(yc, yr), 2e-3);
  yr.backward(d);
  yc.backward(d);
  EXPECT_LT(RelErr(xc.grad(), xr.grad()), 2e-3);
}

TEST(KernelsGpuTest, LinearResidualForwardBackward) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(4);
  at::Tensor x = at::randn({2, 64, 256}, Bf16Cuda());
  at::Tensor w = at::randn({128, 256}, Bf16Cuda()).mul(0.05);
  at::Tensor r = at::randn({2, 64, 128}, Bf16Cuda());
  at::Tensor d = at::randn({2, 64, 128}, Bf16Cuda());
  std::vector<at::Tensor> a = {Leaf(x), Leaf(w), Leaf(r)}, c = {Leaf(x), Leaf(w), Leaf(r)};
  at::Tensor ya = AtenOps().linear_residual(a[0], a[1], a[2]);
  at::Tensor yc = CudaOps()->linear_residual(c[0], c[1], c[2]);
  EXPECT_EQ(yc.sizes(), ya.sizes());
  EXPECT_LT(RelErr(yc, ya), 1e-2);
  ya.backward(d);
  yc.backward(d);
  for (size_t i = 0; i < 3; ++i) EXPECT_LT(RelErr(c[i].grad(), a[i].grad()), 1e-2) << i;
}

// The tuned cuBLASLt GEMMs (kernels/gemm.h) of linear: forward, dgrad and wgrad, at the model's
// shapes and at one whose sizes are not multiples of 8 rows (x's rows) and whose input is a
// non-contiguous view (copied first).
TEST(KernelsGpuTest, LinearForwardBackward) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(5);
  for (const auto& [rows, in, out] : {std::tuple<int64_t, int64_t, int64_t>{1024, 768, 2304},
                                      {333, 256, 3072},
                                      {64, 1536, 768}}) {
    at::Tensor x = at::randn({rows, in * 2}, Bf16Cuda()).narrow(1, 0, in);
    at::Tensor w = at::randn({out, in}, Bf16Cuda()).mul(0.05);
    at::Tensor d = at::randn({rows, out}, Bf16Cuda());
    std::vector<at::Tensor> a = {Leaf(x), Leaf(w)}, c = {Leaf(x), Leaf(w)};
    at::Tensor ya = AtenOps().linear(a[0], a[1]);
    at::Tensor yc = CudaOps()->linear(c[0], c[1]);
    EXPECT_EQ(yc.sizes(), ya.sizes());
    EXPECT_LT(RelErr(yc, ya), 1e-2) << rows << "x" << in << "x" << out;
    ya.backward(d);
    yc.backward(d);
    for (size_t i = 0; i < 2; ++i) EXPECT_LT(RelErr(c[i].grad(), a[i].grad()), 1e-2) << i;
  }
}

// grads_to_flat against FlatLayout's Assign and Accumulate, bit for bit: sizes that are not
// multiples of 8 (unaligned segments), a parameter without a gradient, and more tensors than one
// launch takes (64).
TEST(KernelsGpuTest, GradsToFlatMatchesFlatLayout) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(6);
  optim::NamedTensors named;
  std::vector<at::Tensor> grads, more;
  for (int i = 0; i < 70; ++i) {
    const int64_t n = i == 3 ? 50257 * 3 : 8 * i + i % 5 + 1;
    named.emplace_back("t" + std::to_string(i), at::zeros({n}, Bf16Cuda()));
    grads.push_back(i == 7 ? at::Tensor() : at::randn({n}, Bf16Cuda()));
    more.push_back(i == 9 ? at::Tensor() : at::randn({n}, Bf16Cuda()));
  }
  const FlatLayout layout(named);
  std::vector<int64_t> offsets, numels;
  for (const auto& seg : layout.segments()) {
    offsets.push_back(seg.offset);
    numels.push_back(seg.numel);
  }
  const at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  at::Tensor ref = at::randn({layout.numel()}, f32);  // Assign must not read what was there
  at::Tensor out = ref.clone();
  layout.Assign(grads, ref);
  CudaOps()->grads_to_flat(grads, offsets, numels, out, /*accumulate=*/false);
  EXPECT_TRUE(at::equal(out, ref));
  layout.Accumulate(more, ref);
  CudaOps()->grads_to_flat(more, offsets, numels, out, /*accumulate=*/true);
  EXPECT_TRUE(at::equal(out, ref));
}

// GPT-2's vocabulary (not a multiple of 128: padded inside) and enough rows for two chunks of
// logits; a mask with holes; the loss scaled before backward as the trainer does. 60000 columns
// are too wide for the kernel that holds a row in shared memory: the two-pass kernel.
TEST(KernelsGpuTest, ClassifierLossMatchesAtenCrossEntropy) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(5);
  for (const auto& [vocab, batch, seq] : {std::tuple<int64_t, int64_t, int64_t>{50257, 3, 4000},
                                          std::tuple<int64_t, int64_t, int64_t>{60000, 2, 700}}) {
    SCOPED_TRACE(vocab);
    const int64_t hidden = 64;
    at::Tensor h = at::randn({batch, seq, hidden}, Bf16Cuda());
    at::Tensor w = at::randn({vocab, hidden}, Bf16Cuda()).mul(0.3);
    const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
    at::Tensor labels = at::randint(0, vocab, {batch, seq}, cuda.dtype(at::kLong));
    at::Tensor mask = at::rand({batch, seq}, cuda.dtype(at::kFloat)).gt(0.1);
    at::Tensor hr = Leaf(h), wr = Leaf(w), hc = Leaf(h), wc = Leaf(w);
    at::Tensor lr = AtenOps().classifier_loss(hr, wr, labels, mask);
    at::Tensor lc = CudaOps()->classifier_loss(hc, wc, labels, mask);
    EXPECT_EQ(lc.scalar_type(), at::kFloat);
    EXPECT_EQ(lc.dim(), 0);
    EXPECT_NEAR(lc.item<double>(), lr.item<double>(), 1e-4 * lr.item<double>());
    lr.mul(0.5).backward();
    lc.mul(0.5).backward();
    EXPECT_EQ(wc.grad().sizes(), w.sizes());
    EXPECT_LT(RelErr(hc.grad(), hr.grad()), 1e-2);
    EXPECT_LT(RelErr(wc.grad(), wr.grad()), 2e-2);
  }
}

TEST(KernelsGpuTest, FusedAdamWMatchesAtenSteps) {
  REQUIRE_CUDA_OPS();
  at::manual_seed(6);
  const int64_t n = 1000003;
  const at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  OptimizerOptions o;
  o.weight_decay = 0.01;
  o.adam_beta2 = 0.95;
  ASSERT_TRUE(Optimizer::CanFuse(o, *CudaOps()));
  at::Tensor p = at::randn({n}, f32);
  at::Tensor pr = p.clone(), gr = at::empty({n}, f32), pc = p.clone(), gc = at::empty({n}, f32);
  at::Tensor lowp = at::empty({n}, f32.dtype(at::kBFloat16));
  Optimizer ref(o, {{"p", pr, gr}}), fused(o, {{"p", pc, gc}});
  for (int step = 1; step <= 3; ++step) {
    at::Tensor g = at::randn({n}, f32).mul(0.01 * step);
    at::Tensor scale = at::full({}, 0.5, f32);
    gr.copy_(g).mul_(scale);
    ref.Step(1e-3 * step);
    gc.copy_(g);
    fused.FusedStep(*CudaOps(), 1e-3 * step, scale, {lowp});
    EXPECT_TRUE(gc.eq(0).all().item<bool>()) << "step " << step;
  }
  EXPECT_LT(RelErr(pc, pr), 1e-6);
  EXPECT_TRUE(lowp.equal(pc.to(at::kBFloat16)));
  NamedTensors sr = ref.StateDict(), sc = fused.StateDict();
  ASSERT_EQ(sr.size(), sc.size());
  for (size_t i = 1; i < sr.size(); ++i)
    EXPECT_LT(RelErr(sc[i].second, sr[i].second), 1e-5) << sr[i].first;
}

// The whole model: the same weights and batch through both tables.
TEST(KernelsGpuTest, LlamaLossAndGradientsMatchAtenPath) {
  REQUIRE_CUDA_OPS();
  const LlamaModelConfig c = TinyGpuLlamaConfig(/*kv_heads=*/2);
  auto fast = Llama::Create(c, Bf16Cuda());
  ASSERT_TRUE(fast.ok());
  EXPECT_STREQ(fast->ops().name, "cuda");
  fast->InitRandomly({0.025, 42});
  auto ref = Llama::Create(c, Bf16Cuda());
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE(ref->LoadNamedParameters(fast->NamedParameters()).ok());
  ref->set_ops(AtenOps());
  at::manual_seed(7);
  const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
  at::Tensor ids = at::randint(0, c.vocab_size, {4, 257}, cuda.dtype(at::kLong));
  at::Tensor input = ids.narrow(1, 0, 256), labels = ids.narrow(1, 1, 256);
  at::Tensor mask = at::ones({4, 256}, cuda.dtype(at::kBool));
  at::Tensor lf = fast->Loss(input, labels, mask), lr = ref->Loss(input, labels, mask);
  EXPECT_NEAR(lf.item<double>(), lr.item<double>(), 2e-3 * lr.item<double>());
  lf.backward();
  lr.backward();
  NamedTensors pf = fast->NamedParameters(), pr = ref->NamedParameters();
  for (size_t i = 0; i < pf.size(); ++i) {
    ASSERT_TRUE(pf[i].second.grad().defined()) << pf[i].first;
    EXPECT_LT(RelErr(pf[i].second.grad(), pr[i].second.grad()), 3e-2) << pf[i].first;
  }
}

// FlatLayout::Alias: parameters become views of one buffer and keep their autograd identity.
TEST(KernelsGpuTest, AliasedParametersShareTheFlatBuffer) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::Tensor a = at::randn({3, 8}, Bf16Cuda()).requires_grad_(true);
  at::Tensor b = at::randn({5}, Bf16Cuda()).requires_grad_(true);
  const at::Tensor a0 = a.detach().clone(), b0 = b.detach().clone();
  FlatLayout layout({{"a", a}, {"b", b}});
  at::Tensor flat = layout.NewBuffer(Bf16Cuda());
  layout.Alias({a, b}, flat);
  EXPECT_TRUE(a.requires_grad());
  EXPECT_TRUE(a.detach().equal(a0));
  EXPECT_TRUE(b.detach().equal(b0));
  flat.fill_(2.0);
  EXPECT_TRUE(a.detach().eq(2.0).all().item<bool>());
  EXPECT_TRUE(b.detach().eq(2.0).all().item<bool>());
  a.sum().backward();
  EXPECT_TRUE(a.grad().defined());
}

}  // namespace
}  // namespace strun::model

// GPU checks of model/llama.h: the bf16 CUDA model (fused attention on libtorch 2.x) against the
// fp64 CPU model with the same weights. Skipped where there is no CUDA device.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "model/llama.h"
#include "model/torch_compat.h"

namespace strun::model {
namespace {

LlamaModelConfig GpuConfig() {
  LlamaModelConfig c;
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_attention_heads = 4;  // head_dim 64, as the tutorial model
  c.num_key_value_heads = 2;
  c.num_hidden_layers = 2;
  c.vocab_size = 1000;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  return c;
}

TEST(LlamaGpuTest, Bf16CudaModelMatchesFp64CpuModel) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const LlamaModelConfig c = GpuConfig();
  const at::TensorOptions gpu = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
  auto g = Llama::Create(c, gpu);
  ASSERT_TRUE(g.ok());
  g->InitRandomly({0.025, 42});
  auto ref = Llama::Create(c, at::TensorOptions().dtype(at::kDouble));
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE(ref->LoadNamedParameters(g->NamedParameters()).ok());

  // Same seed, same values on every device.
  auto cpu_init = Llama::Create(c, at::TensorOptions().dtype(at::kBFloat16));
  cpu_init->InitRandomly({0.025, 42});
  auto a = g->NamedParameters(), b = cpu_init->NamedParameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(a[i].second.cpu().equal(b[i].second)) << a[i].first;

  at::manual_seed(0);
  at::Tensor ids = at::randint(0, c.vocab_size, {4, 256}, at::TensorOptions().dtype(at::kLong));
  at::Tensor mask = at::ones({4, 256}, at::TensorOptions().dtype(at::kBool));
  at::Tensor logits = g->Logits(ids.cuda());
  EXPECT_EQ(logits.scalar_type(), at::kFloat);
  at::Tensor expected = ref->Logits(ids);
  const double err = (logits.cpu().to(at::kDouble) - expected).abs().max().item<double>();
  const double scale = expected.abs().max().item<double>();
  EXPECT_LT(err, 0.03 * scale) << "max error " << err << " of " << scale;

  at::Tensor loss = g->Loss(ids.cuda(), ids.cuda(), mask.cuda());
  const double ref_loss = ref->Loss(ids, ids, mask).item<double>();
  EXPECT_NEAR(loss.item<double>(), ref_loss, 0.01 * ref_loss);
  loss.backward();
  for (auto& [name, t] : g->NamedParameters()) {
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_EQ(t.grad().scalar_type(), at::kBFloat16) << name;
    EXPECT_TRUE(t.grad().isfinite().all().item<bool>()) << name;
  }
}

TEST(LlamaGpuTest, FusedAttentionMatchesDirectAttention) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(1);
  const at::TensorOptions o = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
  at::Tensor q = at::randn({2, 8, 512, 64}, o);
  at::Tensor k = at::randn({2, 8, 512, 64}, o);
  at::Tensor v = at::randn({2, 8, 512, 64}, o);
  at::Tensor fused = compat::CausalAttention(q, k, v).to(at::kFloat);
  at::Tensor math =
      compat::CausalAttentionMath(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat));
  EXPECT_LT((fused - math).abs().max().item<double>(), 0.03);
}

}  // namespace
}  // namespace strun::model

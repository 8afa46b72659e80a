// Tests of model/llama.h against direct formulas, finite differences and nanotron's shapes.
#include "model/llama.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "model/torch_compat.h"

namespace strun::model {
namespace {

const at::TensorOptions kF64 = at::TensorOptions().dtype(at::kDouble);
const at::TensorOptions kF32 = at::TensorOptions().dtype(at::kFloat);

LlamaModelConfig TinyConfig() {
  LlamaModelConfig c;
  c.hidden_size = 8;
  c.intermediate_size = 12;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.num_hidden_layers = 2;
  c.vocab_size = 13;
  c.max_position_embeddings = 16;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100.0;
  c.tie_word_embeddings = false;
  return c;
}

LlamaModelConfig TutorialConfig(int64_t tp) {
  LlamaModelConfig c;
  c.hidden_size = 768;
  c.intermediate_size = 1536;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 12;
  c.num_hidden_layers = 12;
  c.vocab_size = PaddedVocabSize(50257, 1, tp);
  c.max_position_embeddings = 512;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  return c;
}

Llama MakeModel(const LlamaModelConfig& c, const at::TensorOptions& o, uint64_t seed = 7,
                double std = 0.3) {
  auto m = Llama::Create(c, o);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  m->InitRandomly({std, seed});
  // Norm weights of 1 hide mistakes in how they are applied: perturb them.
  c10::NoGradGuard g;
  at::manual_seed(seed + 1);
  for (auto& [name, t] : m->NamedParameters()) {
    if (t.dim() == 1) t.add_(at::randn_like(t) * 0.2);
  }
  return std::move(m).value();
}

TEST(LlamaConfigTest, TutorialParameterCountMatchesNanotron) {
  EXPECT_EQ(PaddedVocabSize(50257, 1, 1), 50257);
  EXPECT_EQ(PaddedVocabSize(50257, 1, 4), 50260);
  EXPECT_EQ(PaddedVocabSize(50257, 128, 1), 50304);
  EXPECT_EQ(CountParameters(TutorialConfig(1)), 109395456);
  EXPECT_EQ(CountParameters(TutorialConfig(4)), 109397760);
  auto model = Llama::Create(TutorialConfig(1), kF32);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->NumParameters(), 109395456);
}

TEST(LlamaConfigTest, ParameterCountOfUntiedGqaModel) {
  LlamaModelConfig c = TinyConfig();
  auto model = Llama::Create(c, kF32);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->NumParameters(), CountParameters(c));
  // qkv: (4 + 2 * 2) * 2 rows of 8; o: 8x8; mlp: 24x8 + 8x12; norms 16; embedding + lm_head 2x13x8.
  EXPECT_EQ(CountParameters(c), 2 * (16 * 8 + 64 + 192 + 96 + 16) + 8 + 2 * 13 * 8);
}

TEST(LlamaConfigTest, RejectsInvalidShapesNamingTheField) {
  LlamaModelConfig c = TinyConfig();
  c.num_key_value_heads = 3;
  auto s = ValidateLlamaConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("num_key_value_heads"), std::string::npos);
  c = TinyConfig();
  c.hidden_size = 10;
  s = ValidateLlamaConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("hidden_size"), std::string::npos);
  c = TinyConfig();
  c.hidden_act = "mish";
  s = ValidateLlamaConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("hidden_act"), std::string::npos);
  EXPECT_FALSE(Llama::Create(c, kF32).ok());
}

TEST(LlamaConfigTest, ModelFlopsFollowNanotronFormula) {
  LlamaModelConfig c = TutorialConfig(1);
  // Hand-expanded nanotron get_flops for L=12, h=768, heads=12, d=64, ff=1536, V=50257, s=512, b=1.
  const double L = 12, h = 768, s = 512, d = 64, nh = 12, ff = 1536, v = 50257;
  const double fwd = 2 * L * s * h * nh * d + 2 * L * s * h * 2 * nh * d + 2 * L * nh * s * d * s +
                     2 * L * nh * s * s * d + 2 * L * nh * s * d * h + 4 * L * s * h * ff +
                     2 * L * s * ff * h + 2 * s * h * v;
  EXPECT_DOUBLE_EQ(ModelFlopsPerStep(c, 512, 1), 3 * fwd);
  EXPECT_DOUBLE_EQ(ModelFlopsPerStep(c, 512, 64), 64 * 3 * fwd);
}

TEST(LlamaTest, ParameterNamesAreNanotrons) {
  LlamaModelConfig c = TinyConfig();
  auto m = Llama::Create(c, kF32);
  ASSERT_TRUE(m.ok());
  NamedTensors p = m->NamedParameters();
  ASSERT_EQ(p.size(), 1 + 6 * 2 + 2u);
  EXPECT_EQ(p[0].first, "model.token_position_embeddings.pp_block.token_embedding.weight");
  EXPECT_EQ(p[1].first, "model.decoder.0.pp_block.input_layernorm.weight");
  EXPECT_EQ(p[2].first, "model.decoder.0.pp_block.attn.qkv_proj.weight");
  EXPECT_EQ(p[3].first, "model.decoder.0.pp_block.attn.o_proj.weight");
  EXPECT_EQ(p[4].first, "model.decoder.0.pp_block.post_attention_layernorm.weight");
  EXPECT_EQ(p[5].first, "model.decoder.0.pp_block.mlp.gate_up_proj.weight");
  EXPECT_EQ(p[6].first, "model.decoder.0.pp_block.mlp.down_proj.weight");
  EXPECT_EQ(p[7].first, "model.decoder.1.pp_block.input_layernorm.weight");
  EXPECT_EQ(p[13].first, "model.final_layer_norm.pp_block.weight");
  EXPECT_EQ(p[14].first, "model.lm_head.pp_block.weight");
  EXPECT_EQ(p[2].second.sizes(), at::IntArrayRef({16, 8}));
  EXPECT_EQ(p[5].second.sizes(), at::IntArrayRef({24, 8}));
  EXPECT_EQ(p[6].second.sizes(), at::IntArrayRef({8, 12}));
  for (auto& [name, t] : p) EXPECT_TRUE(t.requires_grad()) << name;

  c.tie_word_embeddings = true;
  auto tied = Llama::Create(c, kF32);
  ASSERT_TRUE(tied.ok());
  NamedTensors tp = tied->NamedParameters();
  EXPECT_EQ(tp.size(), p.size() - 1);
  EXPECT_EQ(tp.back().first, "model.final_layer_norm.pp_block.weight");
  EXPECT_TRUE(tied->lm_head().is_same(tied->token_embedding()));
}

TEST(LlamaTest, InitFollowsNanotronStandardParametrization) {
  LlamaModelConfig c;
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.num_hidden_layers = 8;
  c.vocab_size = 512;
  auto m = Llama::Create(c, kF32);
  ASSERT_TRUE(m.ok());
  m->InitRandomly({0.02, 1234});
  const double scaled = 0.02 / std::sqrt(2.0 * 8);
  for (auto& [name, t] : m->NamedParameters()) {
    if (t.dim() == 1) {
      EXPECT_TRUE(t.eq(1).all().item<bool>()) << name;
      continue;
    }
    const bool row =
        name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
    const double expected = row ? scaled : 0.02;
    EXPECT_NEAR(t.std().item<double>(), expected, 0.05 * expected) << name;
    EXPECT_NEAR(t.mean().item<double>(), 0.0, 0.05 * expected) << name;
  }
  // Deterministic for a seed, different across seeds, the same in every dtype up to rounding.
  auto again = Llama::Create(c, kF32);
  again->InitRandomly({0.02, 1234});
  auto other = Llama::Create(c, kF32);
  other->InitRandomly({0.02, 1235});
  auto bf16 = Llama::Create(c, kF32.dtype(at::kBFloat16));
  bf16->InitRandomly({0.02, 1234});
  auto a = m->NamedParameters(), b = again->NamedParameters(), o = other->NamedParameters(),
       h = bf16->NamedParameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
    if (a[i].second.dim() == 2) {
      EXPECT_FALSE(a[i].second.equal(o[i].second)) << a[i].first;
    }
    EXPECT_TRUE(a[i].second.to(at::kBFloat16).equal(h[i].second)) << a[i].first;
  }
}

TEST(LlamaBlocksTest, RotaryMatchesDirectInterleavedFormula) {
  const int64_t b = 2, s = 5, h = 3, d = 8;
  const double theta = 500.0;
  at::manual_seed(3);
  at::Tensor x = at::randn({b, s, h, d}, kF64);
  auto [cos, sin] = RotaryTables(s, d, theta, kF64);
  at::Tensor y = ApplyRotaryInterleaved(x, cos, sin);
  auto xa = x.accessor<double, 4>();
  auto ya = y.accessor<double, 4>();
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t t = 0; t < s; ++t)
      for (int64_t hi = 0; hi < h; ++hi)
        for (int64_t i = 0; i < d / 2; ++i) {
          const double angle = t * std::pow(theta, -2.0 * i / d);
          const double x0 = xa[bi][t][hi][2 * i], x1 = xa[bi][t][hi][2 * i + 1];
          EXPECT_NEAR(ya[bi][t][hi][2 * i], x0 * std::cos(angle) - x1 * std::sin(angle), 1e-12);
          EXPECT_NEAR(ya[bi][t][hi][2 * i + 1], x0 * std::sin(angle) + x1 * std::cos(angle), 1e-12);
        }
  // fp32 tables are flash-attn's: positions and inverse frequencies in fp32.
  auto [cos32, sin32] = RotaryTables(s, d, theta, kF32);
  EXPECT_TRUE(cos32.to(at::kDouble).allclose(cos, 1e-6, 1e-6));
  EXPECT_EQ(cos32.scalar_type(), at::kFloat);
}

TEST(LlamaBlocksTest, RmsNormMatchesFormula) {
  at::manual_seed(4);
  at::Tensor x = at::randn({2, 3, 8}, kF64);
  at::Tensor w = at::randn({8}, kF64);
  at::Tensor expected = x / (x.pow(2).mean(-1, true) + 1e-5).sqrt() * w;
  EXPECT_TRUE(RmsNorm(x, w, 1e-5).allclose(expected, 1e-12, 1e-12));
  // bf16 input: statistics and product in fp32, one rounding at the end.
  at::Tensor xb = x.to(at::kBFloat16), wb = w.to(at::kBFloat16);
  at::Tensor ref = RmsNorm(xb.to(at::kFloat), wb.to(at::kFloat), 1e-5).to(at::kBFloat16);
  EXPECT_TRUE(RmsNorm(xb, wb, 1e-5).equal(ref));
}

// Direct causal attention, loop by loop, for one batch entry and head.
double NaiveAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t b,
                      int64_t t, int64_t hq, int64_t hkv, int64_t e) {
  const int64_t d = q.size(3);
  std::vector<double> w;
  double mx = -1e300;
  for (int64_t j = 0; j <= t; ++j) {
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) {
      dot += q[b][t][hq][c].item<double>() * k[b][j][hkv][c].item<double>();
    }
    w.push_back(dot / std::sqrt(static_cast<double>(d)));
    mx = std::max(mx, w.back());
  }
  double z = 0, out = 0;
  for (int64_t j = 0; j <= t; ++j) {
    z += std::exp(w[j] - mx);
    out += std::exp(w[j] - mx) * v[b][j][hkv][e].item<double>();
  }
  return out / z;
}

TEST(LlamaBlocksTest, GroupedAttentionEqualsRepeatedKvHeadsAndDirectFormula) {
  at::manual_seed(5);
  const int64_t b = 2, s = 4, hq = 4, hkv = 2, d = 4;
  at::Tensor q = at::randn({b, s, hq, d}, kF64);
  at::Tensor k = at::randn({b, s, hkv, d}, kF64);
  at::Tensor v = at::randn({b, s, hkv, d}, kF64);
  at::Tensor out = GroupedCausalAttention(q, k, v);
  ASSERT_EQ(out.sizes(), at::IntArrayRef({b, s, hq, d}));
  // Query heads 0,1 read kv head 0; 2,3 read kv head 1.
  at::Tensor idx = at::tensor({0, 0, 1, 1}, at::kLong);
  at::Tensor rep = GroupedCausalAttention(q, k.index_select(2, idx), v.index_select(2, idx));
  EXPECT_TRUE(out.allclose(rep, 1e-12, 1e-12));
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t t = 0; t < s; ++t)
      for (int64_t h = 0; h < hq; ++h)
        for (int64_t e = 0; e < d; ++e) {
          EXPECT_NEAR(out[bi][t][h][e].item<double>(), NaiveAttention(q, k, v, bi, t, h, h / 2, e),
                      1e-12);
        }
  // The fused path (libtorch 2.x) and the direct one agree.
  at::Tensor math =
      compat::CausalAttentionMath(q.transpose(1, 2), k.index_select(2, idx).transpose(1, 2),
                                  v.index_select(2, idx).transpose(1, 2));
  EXPECT_TRUE(out.allclose(math.transpose(1, 2), 1e-12, 1e-12));
}

TEST(LlamaTest, GqaModelEqualsFullHeadModelWithDuplicatedKvWeights) {
  LlamaModelConfig c = TinyConfig();
  Llama gqa = MakeModel(c, kF64);
  LlamaModelConfig full_c = c;
  full_c.num_key_value_heads = c.num_attention_heads;
  auto full = Llama::Create(full_c, kF64);
  ASSERT_TRUE(full.ok());
  const int64_t d = c.head_dim(), nq = c.num_attention_heads, nkv = c.num_key_value_heads;
  NamedTensors values;
  for (auto& [name, t] : gqa.NamedParameters()) {
    if (name.find("qkv_proj") == std::string::npos) {
      values.emplace_back(name, t);
      continue;
    }
    at::Tensor q = t.narrow(0, 0, nq * d);
    at::Tensor k = t.narrow(0, nq * d, nkv * d).reshape({nkv, d, -1});
    at::Tensor v = t.narrow(0, (nq + nkv) * d, nkv * d).reshape({nkv, d, -1});
    at::Tensor idx = at::arange(nq, at::kLong).div(nq / nkv, "floor");
    values.emplace_back(name, at::cat({q, k.index_select(0, idx).reshape({nq * d, -1}),
                                       v.index_select(0, idx).reshape({nq * d, -1})}));
  }
  ASSERT_TRUE(full->LoadNamedParameters(values).ok());
  at::Tensor ids = at::randint(0, c.vocab_size, {2, 6}, at::kLong);
  EXPECT_TRUE(gqa.Logits(ids).allclose(full->Logits(ids), 1e-12, 1e-12));
}

TEST(LlamaTest, AttentionIsCausal) {
  LlamaModelConfig c = TinyConfig();
  Llama m = MakeModel(c, kF64);
  at::Tensor ids = at::randint(0, c.vocab_size, {1, 7}, at::kLong);
  at::Tensor changed = ids.clone();
  changed[0][5] = (ids[0][5].item<int64_t>() + 1) % c.vocab_size;
  at::Tensor a = m.Logits(ids), b = m.Logits(changed);
  EXPECT_TRUE(a.narrow(1, 0, 5).allclose(b.narrow(1, 0, 5), 1e-13, 1e-13));
  EXPECT_FALSE(a.narrow(1, 5, 1).allclose(b.narrow(1, 5, 1)));
  EXPECT_EQ(a.scalar_type(), at::kDouble);
  EXPECT_EQ(MakeModel(c, kF32).Logits(ids).scalar_type(), at::kFloat);
}

TEST(LlamaTest, LossIsMaskedMeanOfTokenCrossEntropy) {
  LlamaModelConfig c = TinyConfig();
  Llama m = MakeModel(c, kF64);
  at::Tensor ids = at::randint(0, c.vocab_size, {2, 5}, at::kLong);
  at::Tensor labels = at::randint(0, c.vocab_size, {2, 5}, at::kLong);
  at::Tensor mask =
      at::tensor({1, 1, 0, 1, 1, 0, 1, 1, 1, 0}, at::kLong).to(at::kBool).view({2, 5});
  at::Tensor logp = at::log_softmax(m.Logits(ids), -1);
  double sum = 0;
  int count = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 5; ++t)
      if (mask[b][t].item<bool>()) {
        sum -= logp[b][t][labels[b][t].item<int64_t>()].item<double>();
        ++count;
      }
  EXPECT_NEAR(m.Loss(ids, labels, mask).item<double>(), sum / count, 1e-12);
}

// Central differences of the loss against autograd, in fp64, for entries of every parameter.
void CheckGradients(const LlamaModelConfig& c) {
  Llama m = MakeModel(c, kF64, 11, 0.5);
  at::manual_seed(12);
  at::Tensor ids = at::randint(0, c.vocab_size, {2, 5}, at::kLong);
  at::Tensor labels = at::randint(0, c.vocab_size, {2, 5}, at::kLong);
  at::Tensor mask =
      at::tensor({1, 1, 1, 0, 1, 1, 0, 1, 1, 1}, at::kLong).to(at::kBool).view({2, 5});
  m.ZeroGrad();
  m.Loss(ids, labels, mask).backward();
  std::mt19937 rng(3);
  c10::NoGradGuard no_grad;
  for (auto& [name, p] : m.NamedParameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    at::Tensor flat = p.view({-1});
    at::Tensor grad = p.grad().reshape({-1});
    std::vector<int64_t> picks;
    for (int i = 0; i < 4; ++i)
      picks.push_back(std::uniform_int_distribution<int64_t>(0, p.numel() - 1)(rng));
    for (int64_t i : picks) {
      const double h = 1e-6, orig = flat[i].item<double>();
      flat[i] = orig + h;
      const double up = m.Loss(ids, labels, mask).item<double>();
      flat[i] = orig - h;
      const double down = m.Loss(ids, labels, mask).item<double>();
      flat[i] = orig;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grad[i].item<double>(), numeric, 1e-7 + 1e-6 * std::abs(numeric))
          << name << "[" << i << "]";
    }
  }
}

// Head dimension 4 or more: with 2, interleaved and half-split rotary layouts coincide.
LlamaModelConfig WideHeads(LlamaModelConfig c) {
  c.hidden_size = 24;  // 4 heads of 6
  return c;
}

TEST(LlamaTest, GradientsMatchFiniteDifferencesUntiedGqa) {
  CheckGradients(WideHeads(TinyConfig()));
}

TEST(LlamaTest, GradientsMatchFiniteDifferencesTiedGelu) {
  LlamaModelConfig c = TinyConfig();
  c.tie_word_embeddings = true;
  c.num_key_value_heads = 4;
  c.hidden_act = "gelu_pytorch_tanh";
  CheckGradients(WideHeads(c));
}

TEST(LlamaTest, PaddingTokenRowGetsNoGradientFromTheInput) {
  LlamaModelConfig c = TinyConfig();
  c.pad_token_id = 3;
  Llama m = MakeModel(c, kF64);
  at::Tensor ids = at::tensor({3, 1, 3, 2}, at::kLong).view({1, 4});
  m.Loss(ids, ids, at::ones({1, 4}, at::kBool)).backward();
  EXPECT_TRUE(m.token_embedding().grad()[3].eq(0).all().item<bool>());
  EXPECT_FALSE(m.token_embedding().grad()[1].eq(0).all().item<bool>());
}

TEST(LlamaTest, LoadNamedParametersChecksNamesAndShapes) {
  LlamaModelConfig c = TinyConfig();
  Llama a = MakeModel(c, kF64, 1);
  auto b = Llama::Create(c, kF32);
  ASSERT_TRUE(b->LoadNamedParameters(a.NamedParameters()).ok());
  at::Tensor ids = at::randint(0, c.vocab_size, {1, 4}, at::kLong);
  EXPECT_TRUE(b->Logits(ids).allclose(a.Logits(ids).to(at::kFloat), 1e-4, 1e-5));

  NamedTensors missing = a.NamedParameters();
  missing.pop_back();
  auto s = b->LoadNamedParameters(missing);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("model.lm_head.pp_block.weight"), std::string::npos);

  NamedTensors bad = a.NamedParameters();
  bad[2].second = at::zeros({3, 3}, kF64);
  s = b->LoadNamedParameters(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("qkv_proj"), std::string::npos);

  NamedTensors unknown = a.NamedParameters();
  unknown.emplace_back("model.nope.weight", at::zeros({1}, kF64));
  s = b->LoadNamedParameters(unknown);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("model.nope.weight"), std::string::npos);
}

TEST(LlamaTest, Bf16ModelRunsWithFp32Logits) {
  LlamaModelConfig c = TinyConfig();
  Llama m32 = MakeModel(c, kF32, 5, 0.1);
  auto m16 = Llama::Create(c, kF32.dtype(at::kBFloat16));
  ASSERT_TRUE(m16->LoadNamedParameters(m32.NamedParameters()).ok());
  at::Tensor ids = at::randint(0, c.vocab_size, {2, 6}, at::kLong);
  at::Tensor l16 = m16->Logits(ids);
  EXPECT_EQ(l16.scalar_type(), at::kFloat);
  EXPECT_TRUE(l16.allclose(m32.Logits(ids), 5e-2, 5e-2));
  at::Tensor loss = m16->Loss(ids, ids, at::ones({2, 6}, at::kBool));
  EXPECT_EQ(loss.scalar_type(), at::kFloat);
  loss.backward();
  EXPECT_EQ(m16->layers()[0].qkv_proj.grad().scalar_type(), at::kBFloat16);
}

// Raw little-endian bytes of a CPU tensor, listed in the manifest.
void WriteTensor(const std::filesystem::path& dir, nlohmann::json& manifest,
                 const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.detach().cpu().contiguous();
  const std::string file = "t" + std::to_string(manifest["tensors"].size()) + ".bin";
  std::ofstream(dir / file, std::ios::binary)
      .write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  manifest["tensors"][name] = {{"file", file},
                               {"shape", std::vector<int64_t>(c.sizes().begin(), c.sizes().end())},
                               {"dtype", c.scalar_type() == at::kLong ? "int64" : "float64"}};
}

// Runs tests/trainer/model/nanotron_reference.py (nanotron's forward written in plain PyTorch) on
// our weights and inputs; it compares logits, loss and every gradient.
void CheckAgainstPythonReference(const LlamaModelConfig& c) {
  Llama m = MakeModel(c, kF64, 21, 0.4);
  at::manual_seed(22);
  at::Tensor ids = at::randint(0, c.vocab_size, {2, 6}, at::kLong);
  if (c.pad_token_id) ids[1][2] = *c.pad_token_id;
  at::Tensor labels = at::randint(0, c.vocab_size, {2, 6}, at::kLong);
  at::Tensor mask = at::rand({2, 6}, kF64).gt(0.3);
  mask[0][0] = true;
  at::Tensor logits = m.Logits(ids);
  at::Tensor loss = MaskedCrossEntropy(logits, labels, mask);
  loss.backward();

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("strun_model_ref_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  nlohmann::json manifest;
  manifest["tensors"] = nlohmann::json::object();
  manifest["config"] = {
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"num_hidden_layers", c.num_hidden_layers},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"hidden_act", c.hidden_act},
      {"pad_token_id", c.pad_token_id ? nlohmann::json(*c.pad_token_id) : nlohmann::json(nullptr)}};
  manifest["params"] = nlohmann::json::array();
  for (auto& [name, t] : m.NamedParameters()) {
    manifest["params"].push_back(name);
    WriteTensor(dir, manifest, "param/" + name, t);
    WriteTensor(dir, manifest, "grad/" + name, t.grad());
  }
  WriteTensor(dir, manifest, "input_ids", ids);
  WriteTensor(dir, manifest, "label_ids", labels);
  WriteTensor(dir, manifest, "label_mask", mask.to(at::kLong));
  WriteTensor(dir, manifest, "logits", logits);
  WriteTensor(dir, manifest, "loss", loss);
  std::ofstream(dir / "manifest.json") << manifest.dump();

  const std::string cmd =
      "/usr/bin/python3 " STRUN_MODEL_TEST_DIR "/nanotron_reference.py " + dir.string() + " 2>&1";
  std::string output;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512];
  while (fgets(buf, sizeof buf, p)) output += buf;
  const int status = pclose(p);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(status, 0) << output;
}

bool PythonTorchAvailable() {
  return std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

TEST(LlamaTest, MatchesNanotronReferenceInPythonGqaUntied) {
  if (!PythonTorchAvailable())
    GTEST_SKIP() << "/usr/bin/python3 has no torch (apt install python3-torch)";
  CheckAgainstPythonReference(WideHeads(TinyConfig()));
}

TEST(LlamaTest, MatchesNanotronReferenceInPythonTiedWithPadding) {
  if (!PythonTorchAvailable())
    GTEST_SKIP() << "/usr/bin/python3 has no torch (apt install python3-torch)";
  LlamaModelConfig c = TinyConfig();
  c.num_key_value_heads = 4;
  c.tie_word_embeddings = true;
  c.hidden_act = "gelu_pytorch_tanh";
  c.pad_token_id = 5;
  CheckAgainstPythonReference(WideHeads(c));
}

}  // namespace
}  // namespace strun::model

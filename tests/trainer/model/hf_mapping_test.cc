// Tests of model/hf_mapping.h: a transformers-style Llama forward (rotate_half rotary, separate
// q/k/v and gate/up projections), written here from transformers' modeling_llama, must give our
// logits when fed the exported weights.
#include "model/hf_mapping.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <map>

namespace strun::model {
namespace {

const at::TensorOptions kF64 = at::TensorOptions().dtype(at::kDouble);

LlamaModelConfig Config(bool tied, int64_t kv_heads) {
  LlamaModelConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.num_hidden_layers = 2;
  c.vocab_size = 19;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000.0;
  c.tie_word_embeddings = tied;
  return c;
}

Llama Model(const LlamaModelConfig& c) {
  auto m = Llama::Create(c, kF64);
  EXPECT_TRUE(m.ok());
  m->InitRandomly({0.3, 99});
  c10::NoGradGuard g;
  at::manual_seed(98);
  for (auto& [name, t] : m->NamedParameters()) {
    if (t.dim() == 1) t.add_(at::randn_like(t) * 0.2);
  }
  return std::move(m).value();
}

at::Tensor HfRmsNorm(const at::Tensor& x, const at::Tensor& w, double eps) {
  return w * (x * at::rsqrt(x.pow(2).mean(-1, true) + eps));
}

at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// transformers' LlamaForCausalLM forward (eager attention), in fp64.
at::Tensor HfLogits(const LlamaModelConfig& c, std::map<std::string, at::Tensor> w,
                    const at::Tensor& ids) {
  const int64_t b = ids.size(0), s = ids.size(1), d = c.head_dim();
  const int64_t nq = c.num_attention_heads, nkv = c.num_key_value_heads;
  at::Tensor inv_freq = 1.0 / at::pow(c.rope_theta, at::arange(0, d, 2, kF64) / d);
  at::Tensor freqs = at::outer(at::arange(s, kF64), inv_freq);
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos(), sin = emb.sin();  // [S, d]
  at::Tensor x = w["model.embed_tokens.weight"].index_select(0, ids.reshape({-1})).view({b, s, -1});
  at::Tensor mask = at::full({s, s}, -INFINITY, kF64).triu(1);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    at::Tensor h = HfRmsNorm(x, w[p + "input_layernorm.weight"], c.rms_norm_eps);
    at::Tensor q =
        at::matmul(h, w[p + "self_attn.q_proj.weight"].t()).view({b, s, nq, d}).transpose(1, 2);
    at::Tensor k =
        at::matmul(h, w[p + "self_attn.k_proj.weight"].t()).view({b, s, nkv, d}).transpose(1, 2);
    at::Tensor v =
        at::matmul(h, w[p + "self_attn.v_proj.weight"].t()).view({b, s, nkv, d}).transpose(1, 2);
    q = q * cos + RotateHalf(q) * sin;
    k = k * cos + RotateHalf(k) * sin;
    k = k.repeat_interleave(nq / nkv, 1);
    v = v.repeat_interleave(nq / nkv, 1);
    at::Tensor scores = at::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(d)) + mask;
    at::Tensor attn =
        at::matmul(at::softmax(scores, -1), v).transpose(1, 2).reshape({b, s, nq * d});
    x = x + at::matmul(attn, w[p + "self_attn.o_proj.weight"].t());
    h = HfRmsNorm(x, w[p + "post_attention_layernorm.weight"], c.rms_norm_eps);
    at::Tensor gate = at::matmul(h, w[p + "mlp.gate_proj.weight"].t());
    at::Tensor up = at::matmul(h, w[p + "mlp.up_proj.weight"].t());
    x = x + at::matmul(at::silu(gate) * up, w[p + "mlp.down_proj.weight"].t());
  }
  x = HfRmsNorm(x, w["model.norm.weight"], c.rms_norm_eps);
  at::Tensor head = c.tie_word_embeddings ? w["model.embed_tokens.weight"] : w["lm_head.weight"];
  return at::matmul(x, head.t());
}

void CheckExportMatches(const LlamaModelConfig& c) {
  Llama m = Model(c);
  auto hf = ToHuggingFace(c, m.NamedParameters());
  ASSERT_TRUE(hf.ok()) << hf.error().message;
  std::map<std::string, at::Tensor> w(hf->begin(), hf->end());
  EXPECT_EQ(w.count("lm_head.weight"), c.tie_word_embeddings ? 0u : 1u);
  EXPECT_EQ(w.size(), 1 + 9 * 2 + 1 + (c.tie_word_embeddings ? 0u : 1u));
  EXPECT_EQ(w["model.layers.1.self_attn.k_proj.weight"].sizes(),
            at::IntArrayRef({c.num_key_value_heads * c.head_dim(), c.hidden_size}));
  at::manual_seed(1);
  at::Tensor ids = at::randint(0, c.vocab_size, {2, 7}, at::kLong);
  c10::NoGradGuard g;
  EXPECT_TRUE(HfLogits(c, w, ids).allclose(m.Logits(ids), 1e-10, 1e-10));

  auto back = FromHuggingFace(c, *hf);
  ASSERT_TRUE(back.ok()) << back.error().message;
  NamedTensors orig = m.NamedParameters();
  ASSERT_EQ(back->size(), orig.size());
  for (size_t i = 0; i < orig.size(); ++i) {
    EXPECT_EQ((*back)[i].first, orig[i].first);
    EXPECT_TRUE((*back)[i].second.equal(orig[i].second)) << orig[i].first;
  }
}

TEST(HfMappingTest, ExportedUntiedGqaModelGivesTheSameLogitsInTransformersLayout) {
  CheckExportMatches(Config(false, 2));
}

TEST(HfMappingTest, ExportedTiedModelGivesTheSameLogitsInTransformersLayout) {
  CheckExportMatches(Config(true, 4));
}

TEST(HfMappingTest, PermutationMatchesNanotronConverter) {
  // nanotron: head_w.view(d // 2, 2, -1).transpose(0, 1).reshape(d, -1), per head.
  at::Tensor w = at::arange(2 * 6, kF64).view({12, 1});
  at::Tensor out = InterleavedToHalfSplit(w, 6);
  std::vector<double> expected = {0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11};
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(out[i][0].item<double>(), expected[i]);
  EXPECT_TRUE(HalfSplitToInterleaved(out, 6).equal(w));
}

TEST(HfMappingTest, MissingAndMisshapenTensorsAreNamed) {
  LlamaModelConfig c = Config(false, 2);
  Llama m = Model(c);
  NamedTensors p = m.NamedParameters();
  p.erase(p.begin() + 3);  // layer 0's o_proj
  auto r = ToHuggingFace(c, p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("model.decoder.0.pp_block.attn.o_proj.weight"),
            std::string::npos);
  auto hf = ToHuggingFace(c, m.NamedParameters());
  ASSERT_TRUE(hf.ok());
  for (auto& [name, t] : *hf) {
    if (name == "model.layers.0.self_attn.k_proj.weight") t = at::zeros({3, 16}, kF64);
  }
  auto back = FromHuggingFace(c, *hf);
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("k_proj"), std::string::npos);
}

TEST(HfMappingTest, ConfigJsonDescribesTheModel) {
  LlamaModelConfig c = Config(true, 2);
  nlohmann::json j = HuggingFaceConfigJson(c, "bfloat16");
  EXPECT_EQ(j["model_type"], "llama");
  EXPECT_EQ(j["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(j["num_key_value_heads"], 2);
  EXPECT_EQ(j["vocab_size"], 19);
  EXPECT_EQ(j["tie_word_embeddings"], true);
  EXPECT_EQ(j["rope_theta"], 1000.0);
  EXPECT_EQ(j["torch_dtype"], "bfloat16");
  EXPECT_TRUE(j["pad_token_id"].is_null());
}

}  // namespace
}  // namespace strun::model

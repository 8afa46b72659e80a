// The Llama split over pipeline stages (model/pipeline_stage.h, Llama's pipeline options): the
// stages nanotron's compute costs give, the refusal of splits without weights on the last stage,
// and a model's stages chained by hand (no communication, fp64) computing the whole model's loss
// and gradients from the same seed.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "model/llama.h"
#include "model/pipeline_stage.h"

namespace strun::model {
namespace {

LlamaModelConfig Shape(int64_t hidden, int64_t intermediate, int64_t layers, int64_t vocab) {
  LlamaModelConfig c;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.num_hidden_layers = layers;
  c.vocab_size = vocab;
  c.tie_word_embeddings = true;
  c.rms_norm_eps = 1e-5;
  return c;
}

PipelineStage StageOf(const LlamaModelConfig& c, int stage, int stages) {
  auto s = LlamaPipelineStage(c, stage, stages);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? *s : PipelineStage{};
}

TEST(LlamaPipelineStageTest, OneStageIsTheWholeModel) {
  const PipelineStage s = StageOf(Shape(16, 32, 4, 64), 0, 1);
  EXPECT_TRUE(s.whole() && s.first() && s.last());
  EXPECT_TRUE(s.embedding && s.final_norm && s.head);
  EXPECT_EQ(s.first_layer, 0);
  EXPECT_EQ(s.end_layer, 4);
}

TEST(LlamaPipelineStageTest, SplitsByNanotronsCumulativeCost) {
  // Layer cost 4*16*16 + 3*32*16 = 2560, lm_head 64*16 = 1024, total 11264. pp 2: the threshold
  // 5632 is passed after layer 2 (7680); pp 3: 3754.7 after layer 1 (5120), 7509.3 after layer 2.
  const LlamaModelConfig c = Shape(16, 32, 4, 64);
  PipelineStage s0 = StageOf(c, 0, 2), s1 = StageOf(c, 1, 2);
  EXPECT_TRUE(s0.embedding && !s0.final_norm && !s0.head);
  EXPECT_EQ(s0.first_layer, 0);
  EXPECT_EQ(s0.end_layer, 3);
  EXPECT_TRUE(!s1.embedding && s1.final_norm && s1.head);
  EXPECT_EQ(s1.first_layer, 3);
  EXPECT_EQ(s1.end_layer, 4);
  auto three = DescribePipelineSplit(c, 3);
  ASSERT_TRUE(three.ok()) << three.error().message;
  EXPECT_EQ(*three,
            "stage 0: token embedding, decoder layers 0-1; stage 1: decoder layer 2; stage 2: "
            "decoder layer 3, final norm, lm_head, loss");
  // The integration test's models: vocabulary 50260, hidden 16.
  auto four = DescribePipelineSplit(Shape(16, 6400, 8, 50260), 4);
  ASSERT_TRUE(four.ok()) << four.error().message;
  EXPECT_EQ(*four,
            "stage 0: token embedding, decoder layers 0-2; stage 1: decoder layers 3-5; stage 2: "
            "decoder layers 6-7; stage 3: final norm, lm_head, loss");
}

TEST(LlamaPipelineStageTest, RefusesAnLmHeadBeforeTheLastStage) {
  // GPT-2's vocabulary outweighs two small layers: nanotron puts the lm_head on stage 0 and only
  // the cast and the loss on stage 1.
  auto s = LlamaPipelineStage(Shape(64, 128, 2, 50260), 1, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("parallelism.pp is 2"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("on stage 0"), std::string::npos) << s.error().message;
  EXPECT_FALSE(LlamaPipelineStage(Shape(16, 32, 4, 64), 2, 2).ok());
}

std::map<std::string, at::Tensor> ByName(const Llama& m) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : m.NamedParameters()) out.emplace(name, t);
  return out;
}

// Three stages of a tied model, each built alone from the seed: the same weights as the whole
// model, the chained forward its loss, and the stages' gradients its gradients (the tied
// embedding's as the sum of the first stage's and the last stage's copy).
TEST(LlamaPipelineTest, ChainedStagesAreTheWholeModel) {
  const LlamaModelConfig c = Shape(16, 32, 4, 64);
  const at::TensorOptions f64 = at::TensorOptions().dtype(at::kDouble);
  const InitOptions init{0.1, 11};
  auto whole = Llama::Create(c, f64);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  whole->InitRandomly(init);
  std::vector<Llama> stages;
  for (int s = 0; s < 3; ++s) {
    auto m = Llama::Create(c, f64, {}, {s, 3});
    ASSERT_TRUE(m.ok()) << m.error().message;
    m->InitRandomly(init);
    stages.push_back(std::move(*m));
  }
  EXPECT_FALSE(stages[0].TiedEmbeddingCopy());
  EXPECT_TRUE(stages[2].TiedEmbeddingCopy());
  EXPECT_EQ(stages[1].layers().size(), 1u);
  const auto full = ByName(*whole);
  size_t listed = 0;
  for (const Llama& m : stages) {
    for (auto& [name, t] : m.NamedParameters()) {
      ASSERT_TRUE(full.count(name)) << name;
      EXPECT_TRUE(at::equal(t, full.at(name))) << name;
      ++listed;
    }
  }
  EXPECT_EQ(listed, full.size() + 1);  // the tied copy

  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor ids = at::randint(64, {2, 9}, gen, at::TensorOptions().dtype(at::kLong));
  const at::Tensor input = ids.narrow(1, 0, 8), labels = ids.narrow(1, 1, 8);
  const at::Tensor mask = at::ones({2, 8}, at::TensorOptions().dtype(at::kBool));
  at::Tensor expected = whole->Loss(input, labels, mask);
  expected.backward();

  // Forward through the stages, each receiving a leaf copy as the pipeline's receive does.
  std::vector<at::Tensor> received, outputs;
  at::Tensor x = input;
  for (size_t s = 0; s < stages.size(); ++s) {
    at::Tensor out = stages[s].StageForward(x, labels, mask);
    outputs.push_back(out);
    if (s + 1 < stages.size()) {
      EXPECT_EQ(out.sizes().vec(), stages[s + 1].StageActivationShape(2, 8));
      x = out.detach().clone().requires_grad_(true);
      received.push_back(x);
    }
  }
  EXPECT_TRUE(at::allclose(outputs.back(), expected, 1e-12, 1e-12))
      << outputs.back().item<double>() << " vs " << expected.item<double>();
  // Backward from the last stage, each stage's input gradient to the previous stage.
  outputs[2].backward();
  outputs[1].backward(received[1].grad());
  outputs[0].backward(received[0].grad());
  for (size_t s = 0; s < stages.size(); ++s) {
    for (auto& [name, t] : stages[s].NamedParameters()) {
      at::Tensor g = t.grad();
      if (name.find("token_embedding") != std::string::npos) {
        if (s != 0) continue;  // compared as the sum below
        g = g + stages[2].token_embedding().grad();
      }
      EXPECT_TRUE(at::allclose(g, full.at(name).grad(), 1e-10, 1e-12)) << name;
    }
  }
}

}  // namespace
}  // namespace strun::model

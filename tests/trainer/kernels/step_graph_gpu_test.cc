// MicroBatchGraphs (train/step_graph.h) against the eager micro-batch it captures: a tiny Llama on
// the kernels' ops table, two micro-batches per step (the first assigns its gradients to the flat
// fp32 buffer, the second adds), as the trainer runs them. The losses are bit for bit the eager
// ones (the forward is deterministic and the GEMM algorithms are fixed within the process); the
// gradients agree to 1e-3 relative (cuDNN's attention backward adds dq in a varying order).
// Skipped where there is no CUDA device.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "model/llama.h"
#include "model/ops.h"
#include "optim/flat_buffer.h"
#include "tiny_llama.h"
#include "train/step_graph.h"

namespace strun::train {
namespace {

using model::Llama;
using model::LlamaModelConfig;

struct Step {
  at::Tensor grads, loss;  // the flat fp32 gradients and the summed loss of the step
};

TEST(StepGraphGpuTest, ReplaysGiveTheEagerLossesAndGradients) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const LlamaModelConfig c = model::TinyGpuLlamaConfig(/*kv_heads=*/4);
  const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
  auto llama = Llama::Create(c, cuda.dtype(at::kBFloat16));
  ASSERT_TRUE(llama.ok());
  ASSERT_STREQ(llama->ops().name, "cuda");
  llama->InitRandomly({0.025, 42});
  const optim::FlatLayout layout(llama->NamedParameters());
  std::vector<at::Tensor> params;
  for (auto& [name, p] : llama->NamedParameters()) params.push_back(p);

  at::Tensor flat = layout.NewBuffer(cuda.dtype(at::kFloat));
  at::Tensor loss_sum = at::zeros({}, cuda.dtype(at::kFloat));
  at::Tensor mask = at::ones({4, 128}, cuda.dtype(at::kBool));
  bool first = true;
  const MicroBatchGraphs::Body body = [&](const at::Tensor& ids) {
    at::Tensor loss = llama->Loss(ids.narrow(1, 0, 128), ids.narrow(1, 1, 128), mask);
    loss.backward();
    const c10::NoGradGuard no_grad;
    std::vector<at::Tensor> g;
    for (const at::Tensor& p : params) g.push_back(p.grad());
    if (first) {
      layout.Assign(g, flat);
    } else {
      layout.Accumulate(g, flat);
    }
    loss_sum.add_(loss.detach());
    llama->ZeroGrad();
  };
  // One step of two micro-batches, through `run` (eager or the graphs).
  auto step = [&](const at::Tensor& a, const at::Tensor& b, auto run) {
    loss_sum.zero_();
    first = true;
    run(0, a);
    first = false;
    run(1, b);
    return Step{flat.clone(), loss_sum.clone()};
  };
  auto eager = [&](int, const at::Tensor& ids) { body(ids); };

  at::manual_seed(3);
  std::vector<at::Tensor> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(at::randint(0, c.vocab_size, {4, 129}, cuda.dtype(at::kLong)));
  const Step want01 = step(ids[0], ids[1], eager);
  const Step want21 = step(ids[2], ids[1], eager);

  std::unique_ptr<MicroBatchGraphs> graphs = MicroBatchGraphs::Create(at::Device(at::kCUDA, 0), 0);
  ASSERT_NE(graphs, nullptr) << "this build has no CUDA graphs (STRUN_WITH_CUDA)";
  auto replay = [&](int variant, const at::Tensor& t) { graphs->Run(variant, t, body); };
  // The first step captures both variants, the others replay them on new inputs.
  for (const auto& [got, want] : {std::pair{step(ids[0], ids[1], replay), want01},
                                  std::pair{step(ids[2], ids[1], replay), want21},
                                  std::pair{step(ids[0], ids[1], replay), want01}}) {
    EXPECT_TRUE(at::equal(got.loss, want.loss))
        << got.loss.item<float>() << " vs " << want.loss.item<float>();
    const double err =
        (got.grads - want.grads).norm().item<double>() / want.grads.norm().item<double>();
    EXPECT_LT(err, 1e-3);
  }
}

}  // namespace
}  // namespace strun::train

// train/step_graph.h: one micro-batch of the training step (forward, backward, its gradients into
// the fp32 buffer, its loss into the step's sum) captured once as a CUDA graph and replayed for
// every later micro-batch: ~600 kernel launches become one, and the gaps between kernels close.
//
// Used by strun-train on CUDA with the kernels' ops table at tp = pp = 1 (the DP all-reduce and the
// optimizer stay eager), unless STRUN_CUDA_GRAPH=0. The first micro-batches run eagerly so that
// the GEMM tuning, cuDNN's plans and the allocator have settled; then each of the two variants (the
// step's first micro-batch assigns its gradients, later ones add) is captured on its first use.
// The graphs share one private memory pool. Everything of the step runs on one side stream that
// becomes the thread's current stream (graphs cannot be captured on the default stream).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace strun::train {

class MicroBatchGraphs {
 public:
  // One micro-batch's work on `ids` (the [mbs, seq + 1] token ids on the device).
  using Body = std::function<void(const at::Tensor& ids)>;

  // Null where this libtorch has no CUDA, `device` is not CUDA, or STRUN_CUDA_GRAPH=0. Throws
  // std::invalid_argument for another value of STRUN_CUDA_GRAPH.
  static std::unique_ptr<MicroBatchGraphs> Create(const c10::Device& device,
                                                  int64_t eager_micro_batches);
  ~MicroBatchGraphs();

  // Runs `body` on `ids`: eagerly for the first eager_micro_batches calls, afterwards by replaying
  // the graph of `variant` (0 or 1; captured from `body` on first use).
  void Run(int variant, const at::Tensor& ids, const Body& body);

 private:
  MicroBatchGraphs();
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace strun::train

#include "train/step_graph.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#ifdef STRUN_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace strun::train {

struct MicroBatchGraphs::State {
#ifdef STRUN_WITH_CUDA
  int64_t eager_left = 0;
  at::Tensor ids;  // the one input every graph reads; copied into before each replay
  std::unique_ptr<at::cuda::CUDAGraph> graphs[2];
#endif
};

MicroBatchGraphs::MicroBatchGraphs() : s_(std::make_unique<State>()) {}
MicroBatchGraphs::~MicroBatchGraphs() = default;

std::unique_ptr<MicroBatchGraphs> MicroBatchGraphs::Create(const c10::Device& device,
                                                           int64_t eager_micro_batches) {
  const char* env = std::getenv("STRUN_CUDA_GRAPH");
  const std::string_view want = env ? env : "1";
  if (want != "0" && want != "1") {
    throw std::invalid_argument("STRUN_CUDA_GRAPH=" + std::string(want) +
                                ": expected 1 (the default: replay each micro-batch as a CUDA "
                                "graph) or 0 (launch its kernels one by one)");
  }
#ifdef STRUN_WITH_CUDA
  if (want == "0" || !device.is_cuda()) return nullptr;
  std::unique_ptr<MicroBatchGraphs> g(new MicroBatchGraphs());
  g->s_->eager_left = eager_micro_batches;
  // Work queued so far (on the default stream) finishes before the side stream takes over.
  at::cuda::device_synchronize();
  c10::cuda::setCurrentCUDAStream(
      c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index()));
  return g;
#else
  (void)device;
  (void)eager_micro_batches;
  return nullptr;
#endif
}

void MicroBatchGraphs::Run(int variant, const at::Tensor& ids, const Body& body) {
#ifdef STRUN_WITH_CUDA
  State& s = *s_;
  if (s.eager_left > 0) {
    --s.eager_left;
    body(ids);
    return;
  }
  if (variant != 0 && variant != 1) throw std::invalid_argument("MicroBatchGraphs: bad variant");
  if (!s.ids.defined()) s.ids = at::empty_like(ids);
  s.ids.copy_(ids);
  std::unique_ptr<at::cuda::CUDAGraph>& graph = s.graphs[variant];
  if (!graph) {
    // What the eager steps cached goes back first, so that the graph's pool does not come on top
    // of it in the peak reserved memory.
    at::cuda::device_synchronize();
    c10::cuda::CUDACachingAllocator::emptyCache();
    graph = std::make_unique<at::cuda::CUDAGraph>();
    // The second graph captured shares the first one's pool (they never run at once).
    if (const auto& other = s.graphs[1 - variant]) {
      graph->capture_begin(other->pool());
    } else {
      graph->capture_begin();
    }
    body(s.ids);
    graph->capture_end();
  }
  graph->replay();
#else
  (void)variant;
  body(ids);
#endif
}

}  // namespace strun::train

#include "kernels/classifier.h"
#include "kernels/vec.cuh"

namespace strun::kernels {
namespace {

constexpr int kThreads = 512;

// One block per row. Pass 1: online max and sum of exponentials; pass 2 (the row is still in L2)
// rewrites the row as the gradient.
__global__ void __launch_bounds__(kThreads)
    SoftmaxCrossEntropyKernel(bf16* __restrict__ logits, int64_t ld, int64_t vocab,
                              const int64_t* __restrict__ labels,
                              const float* __restrict__ grad_weight, float* __restrict__ losses) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  bf16* x = logits + row * ld;
  const int64_t label = labels[row];
  const bool label_ok = label >= 0 && label < vocab;
  // Read before any thread overwrites the row (the reductions below are barriers).
  const float x_label = label_ok ? __bfloat162float(x[label]) : 0.0f;
  float m = -INFINITY, s = 0.0f;
  for (int64_t col = int64_t{threadIdx.x} * 8; col < vocab; col += kThreads * 8) {
    float f[8];
    LoadBf16x8(x + col, f);
    float vm = m;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (col + j < vocab) vm = fmaxf(vm, f[j]);
    }
    s *= expf(m - vm);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (col + j < vocab) s += expf(f[j] - vm);
    }
    m = vm;
  }
  const float row_max = BlockMax(m, scratch);
  s = m == -INFINITY ? 0.0f : s * expf(m - row_max);
  const float lse = row_max + logf(BlockSum(s, scratch));
  if (threadIdx.x == 0) losses[row] = label_ok ? lse - x_label : NAN;
  const float w = grad_weight[row];
  for (int64_t col = int64_t{threadIdx.x} * 8; col < ld; col += kThreads * 8) {
    float f[8];
    LoadBf16x8(x + col, f);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int64_t c = col + j;
      f[j] = c < vocab ? (expf(f[j] - lse) - (c == label ? 1.0f : 0.0f)) * w : 0.0f;
    }
    StoreBf16x8(x + col, f);
  }
}

}  // namespace

cudaError_t SoftmaxCrossEntropyInPlace(bf16* logits, int64_t rows, int64_t ld, int64_t vocab,
                                       const int64_t* labels, const float* grad_weight,
                                       float* losses, cudaStream_t stream) {
  if (vocab <= 0 || ld < vocab || ld % 8 != 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  SoftmaxCrossEntropyKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, ld, vocab, labels, grad_weight, losses);
  return cudaGetLastError();
}

}  // namespace strun::kernels

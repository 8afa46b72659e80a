#include "kernels/classifier.h"
#include "kernels/vec.cuh"

namespace strun::kernels {
namespace {

constexpr int kThreads = 512;
// Rows up to this many bytes (GPT-2's 50,304 padded columns take 100,608) are read once into
// shared memory and written back as the gradient; wider rows take the two-pass kernel below,
// which reads the row twice (from L2 if it is still there: at this width it mostly is not).
constexpr int kMaxSharedRowBytes = 112 * 1024;  // two blocks per multiprocessor

// One block per row, read once: each thread keeps the 16-byte vectors it loaded in shared memory
// (its own slots: no barrier needed between the passes) for the max, the sum of exponentials and
// the gradient.
__global__ void __launch_bounds__(kThreads)
    SoftmaxCrossEntropySharedKernel(bf16* __restrict__ logits, int64_t ld, int64_t vocab,
                                    const int64_t* __restrict__ labels,
                                    const float* __restrict__ grad_weight,
                                    float* __restrict__ losses) {
  extern __shared__ uint4 held[];  // [ld / 8]
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  bf16* x = logits + row * ld;
  const int64_t label = labels[row];
  const bool label_ok = label >= 0 && label < vocab;
  const float x_label = label_ok ? __bfloat162float(x[label]) : 0.0f;
  // The launch bounds ld by kMaxSharedRowBytes: columns fit an int.
  const int n = static_cast<int>(vocab), vecs = static_cast<int>(ld / 8);
  const uint4* src = reinterpret_cast<const uint4*>(x);
  float m = -INFINITY;
  // Unrolled so that each thread has several loads in flight (the bandwidth needs them).
#pragma unroll 4
  for (int v = threadIdx.x; v < vecs; v += kThreads) {
    const uint4 raw = src[v];
    held[v] = raw;
    float f[8];
    LoadBf16x8(reinterpret_cast<const bf16*>(&raw), f);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (v * 8 + j < n) m = fmaxf(m, f[j]);
    }
  }
  const float row_max = BlockMax(m, scratch);
  float s = 0.0f;
  for (int v = threadIdx.x; v < vecs; v += kThreads) {
    float f[8];
    LoadBf16x8(reinterpret_cast<const bf16*>(&held[v]), f);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (v * 8 + j < n) s += expf(f[j] - row_max);
    }
  }
  const float lse = row_max + logf(BlockSum(s, scratch));
  if (threadIdx.x == 0) losses[row] = label_ok ? lse - x_label : NAN;
  const float w = grad_weight[row];
  for (int v = threadIdx.x; v < vecs; v += kThreads) {
    float f[8];
    LoadBf16x8(reinterpret_cast<const bf16*>(&held[v]), f);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int c = v * 8 + j;
      f[j] = c < n ? (expf(f[j] - lse) - (c == label ? 1.0f : 0.0f)) * w : 0.0f;
    }
    StoreBf16x8(x + int64_t{v} * 8, f);
  }
}

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
  const int64_t row_bytes = ld * static_cast<int64_t>(sizeof(bf16));
  if (row_bytes <= kMaxSharedRowBytes) {
    // Above 48 KiB of dynamic shared memory a kernel must opt in (once per process and device is
    // enough; the call is cheap and idempotent, so it is simply made each time).
    if (row_bytes > 48 * 1024) {
      cudaError_t e = cudaFuncSetAttribute(SoftmaxCrossEntropySharedKernel,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(row_bytes));
      if (e != cudaSuccess) return e;
    }
    SoftmaxCrossEntropySharedKernel<<<static_cast<unsigned>(rows), kThreads,
                                      static_cast<size_t>(row_bytes), stream>>>(
        logits, ld, vocab, labels, grad_weight, losses);
  } else {
    SoftmaxCrossEntropyKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        logits, ld, vocab, labels, grad_weight, losses);
  }
  return cudaGetLastError();
}

}  // namespace strun::kernels

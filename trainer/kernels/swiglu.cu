#include "kernels/swiglu.h"
#include "kernels/vec.cuh"

namespace strun::kernels {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float Sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void __launch_bounds__(kThreads)
    SwigluForwardKernel(const bf16* __restrict__ gate_up, bf16* __restrict__ out, int64_t rows,
                        int inter) {
  const int vecs = inter / 8;
  for (int64_t idx = int64_t{blockIdx.x} * kThreads + threadIdx.x; idx < rows * vecs;
       idx += int64_t{gridDim.x} * kThreads) {
    const int64_t row = idx / vecs;
    const int col = static_cast<int>(idx % vecs) * 8;
    float g[8], u[8], o[8];
    LoadBf16x8(gate_up + row * 2 * inter + col, g);
    LoadBf16x8(gate_up + row * 2 * inter + inter + col, u);
#pragma unroll
    for (int j = 0; j < 8; ++j) o[j] = RoundBf16(g[j] / (1.0f + expf(-g[j]))) * u[j];
    StoreBf16x8(out + row * inter + col, o);
  }
}

// ATen's chain: a = silu(g) (bf16), out = a * u. Backward: da = dout * u (bf16),
// du = dout * a (bf16), dg = da * sig(g) (1 + g (1 - sig(g))) (bf16).
__global__ void __launch_bounds__(kThreads)
    SwigluBackwardKernel(const bf16* __restrict__ dout, const bf16* __restrict__ gate_up,
                         bf16* __restrict__ dgate_up, int64_t rows, int inter) {
  const int vecs = inter / 8;
  for (int64_t idx = int64_t{blockIdx.x} * kThreads + threadIdx.x; idx < rows * vecs;
       idx += int64_t{gridDim.x} * kThreads) {
    const int64_t row = idx / vecs;
    const int col = static_cast<int>(idx % vecs) * 8;
    float d[8], g[8], u[8], dg[8], du[8];
    LoadBf16x8(dout + row * inter + col, d);
    LoadBf16x8(gate_up + row * 2 * inter + col, g);
    LoadBf16x8(gate_up + row * 2 * inter + inter + col, u);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float sig = Sigmoid(g[j]);
      const float a = RoundBf16(g[j] / (1.0f + expf(-g[j])));
      const float da = RoundBf16(d[j] * u[j]);
      dg[j] = da * sig * (1.0f + g[j] * (1.0f - sig));
      du[j] = d[j] * a;
    }
    StoreBf16x8(dgate_up + row * 2 * inter + col, dg);
    StoreBf16x8(dgate_up + row * 2 * inter + inter + col, du);
  }
}

}  // namespace

cudaError_t SwigluForward(const bf16* gate_up, bf16* out, int64_t rows, int inter,
                          cudaStream_t stream) {
  if (inter <= 0 || inter % 8 != 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  SwigluForwardKernel<<<GridFor(rows * inter / 8, kThreads), kThreads, 0, stream>>>(gate_up, out,
                                                                                    rows, inter);
  return cudaGetLastError();
}

cudaError_t SwigluBackward(const bf16* dout, const bf16* gate_up, bf16* dgate_up, int64_t rows,
                           int inter, cudaStream_t stream) {
  if (inter <= 0 || inter % 8 != 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  SwigluBackwardKernel<<<GridFor(rows * inter / 8, kThreads), kThreads, 0, stream>>>(
      dout, gate_up, dgate_up, rows, inter);
  return cudaGetLastError();
}

}  // namespace strun::kernels


#include "kernels/rms_norm.h"
#include "kernels/vec.cuh"

namespace strun::kernels {
namespace {

constexpr int kThreads = 256;  // 8 warps, one row per warp at a time

// Each lane holds kVecs vectors of 8 columns of its row: columns (i * 32 + lane) * 8 + [0, 8).
template <int kVecs>
__global__ void __launch_bounds__(kThreads)
    RmsNormForwardKernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
                         bf16* __restrict__ y, float* __restrict__ rstd, int64_t rows, int hidden,
                         float eps) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t{gridDim.x} * (kThreads / 32);
  for (int64_t row = int64_t{blockIdx.x} * (kThreads / 32) + threadIdx.x / 32; row < rows;
       row += warps) {
    const bf16* xr = x + row * hidden;
    float v[kVecs][8];
    float sum_sq = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int col = (i * 32 + lane) * 8;
      if (col < hidden) {
        LoadBf16x8(xr + col, v[i]);
#pragma unroll
        for (int j = 0; j < 8; ++j) sum_sq += v[i][j] * v[i][j];
      }
    }
    const float r = rsqrtf(WarpSum(sum_sq) / static_cast<float>(hidden) + eps);
    if (lane == 0) rstd[row] = r;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int col = (i * 32 + lane) * 8;
      if (col < hidden) {
        float wv[8], out[8];
        LoadBf16x8(w + col, wv);
#pragma unroll
        for (int j = 0; j < 8; ++j) out[j] = __fmul_rn(v[i][j] * r, wv[j]);
        StoreBf16x8(y + row * hidden + col, out);
      }
    }
  }
}

// dw: each lane accumulates its columns over the rows its warp visits, then the block's warps
// add into shared memory and the block writes one partial row.
// A row's dy, x (and dresidual) stay in registers as packed bf16 between the two passes (the
// second pass reloading them from L1 hit only about a third of the time on an H100). The launch
// bound sets the resident blocks: at hidden 768 (3 vectors a lane) 2 blocks with 95 registers and
// no spills beat 3 blocks with 80 registers and spills (H100: 626k against 620k tokens/s).
constexpr int BackwardBlocksPerSm(int vecs) { return vecs <= 2 ? 3 : vecs <= 5 ? 2 : 1; }

template <int kVecs, int kBlocks = BackwardBlocksPerSm(kVecs)>
__global__ void __launch_bounds__(kThreads, kBlocks)
    RmsNormBackwardKernel(const bf16* __restrict__ dy, const bf16* __restrict__ x,
                          const bf16* __restrict__ w, const float* __restrict__ rstd,
                          const bf16* __restrict__ dresidual, bf16* __restrict__ dx,
                          float* __restrict__ dw_partial, int64_t rows, int hidden) {
  extern __shared__ float dw_block[];  // [hidden]
  for (int c = threadIdx.x; c < hidden; c += kThreads) dw_block[c] = 0.0f;
  __syncthreads();
  const int lane = threadIdx.x % 32;
  float acc[kVecs][8];
#pragma unroll
  for (int i = 0; i < kVecs; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
  const int64_t warps = int64_t{gridDim.x} * (kThreads / 32);
  for (int64_t row = int64_t{blockIdx.x} * (kThreads / 32) + threadIdx.x / 32; row < rows;
       row += warps) {
    const float r = rstd[row];
    const bf16* dyr = dy + row * hidden;
    const bf16* xr = x + row * hidden;
    // Every load of the row first (memory-level parallelism), then the arithmetic.
    uint4 dy_raw[kVecs], x_raw[kVecs], res_raw[kVecs];
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int col = (i * 32 + lane) * 8;
      if (col < hidden) {
        dy_raw[i] = *reinterpret_cast<const uint4*>(dyr + col);
        x_raw[i] = *reinterpret_cast<const uint4*>(xr + col);
        if (dresidual != nullptr) {
          res_raw[i] = *reinterpret_cast<const uint4*>(dresidual + row * hidden + col);
        }
      }
    }
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int col = (i * 32 + lane) * 8;
      if (col < hidden) {
        float dyv[8], xv[8], wv[8];
        UnpackBf16x8(dy_raw[i], dyv);
        UnpackBf16x8(x_raw[i], xv);
        LoadBf16x8(w + col, wv);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float xhat = xv[j] * r;
          dot += dyv[j] * wv[j] * xhat;
          acc[i][j] += dyv[j] * xhat;
        }
      }
    }
    const float mean_dot = WarpSum(dot) / static_cast<float>(hidden);
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int col = (i * 32 + lane) * 8;
      if (col < hidden) {
        float dyv[8], xv[8], wv[8], out[8];
        UnpackBf16x8(dy_raw[i], dyv);
        UnpackBf16x8(x_raw[i], xv);
        LoadBf16x8(w + col, wv);
#pragma unroll
        for (int j = 0; j < 8; ++j) out[j] = r * (dyv[j] * wv[j] - xv[j] * r * mean_dot);
        if (dresidual != nullptr) {
          // The residual branch's gradient, added before the one rounding to bf16.
          float rv[8];
          UnpackBf16x8(res_raw[i], rv);
#pragma unroll
          for (int j = 0; j < 8; ++j) out[j] += rv[j];
        }
        StoreBf16x8(dx + row * hidden + col, out);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int col = (i * 32 + lane) * 8;
    if (col < hidden) {
#pragma unroll
      for (int j = 0; j < 8; ++j) atomicAdd(&dw_block[col + j], acc[i][j]);
    }
  }
  __syncthreads();
  for (int c = threadIdx.x; c < hidden; c += kThreads) {
    dw_partial[int64_t{blockIdx.x} * hidden + c] = dw_block[c];
  }
}

// One wave: every block resident at once (BackwardBlocksPerSm per multiprocessor), each taking
// its share of the rows, and as few dw partial rows as that allows.
int BackwardGrid(int64_t rows, int hidden) {
  const int64_t cap = int64_t{SmCount()} * BackwardBlocksPerSm((hidden + 255) / 256);
  const int64_t blocks = (rows + kThreads / 32 - 1) / (kThreads / 32);
  return static_cast<int>(blocks < 1 ? 1 : blocks < cap ? blocks : cap);
}

template <int kVecs>
cudaError_t LaunchForward(const bf16* x, const bf16* w, bf16* y, float* rstd, int64_t rows,
                          int hidden, float eps, cudaStream_t stream) {
  RmsNormForwardKernel<kVecs>
      <<<GridFor(rows * 32, kThreads), kThreads, 0, stream>>>(x, w, y, rstd, rows, hidden, eps);
  return cudaGetLastError();
}

template <int kVecs>
cudaError_t LaunchBackward(const bf16* dy, const bf16* x, const bf16* w, const float* rstd,
                           const bf16* dresidual, bf16* dx, float* dw_partial, int64_t rows,
                           int hidden, cudaStream_t stream) {
  const size_t smem = sizeof(float) * static_cast<size_t>(hidden);
  RmsNormBackwardKernel<kVecs><<<BackwardGrid(rows, hidden), kThreads, smem, stream>>>(
      dy, x, w, rstd, dresidual, dx, dw_partial, rows, hidden);
  return cudaGetLastError();
}

// kVecs = hidden / 256 rounded up (1..8): the vectors of 8 columns each lane holds.
template <template <int> class Launch, typename... Args>
cudaError_t DispatchVecs(int hidden, Args... args) {
  if (hidden <= 0 || hidden % 8 != 0 || hidden > kRmsNormMaxHidden) return cudaErrorInvalidValue;
  switch ((hidden + 255) / 256) {
    case 1:
      return Launch<1>::Run(args...);
    case 2:
      return Launch<2>::Run(args...);
    case 3:
      return Launch<3>::Run(args...);
    case 4:
      return Launch<4>::Run(args...);
    case 5:
      return Launch<5>::Run(args...);
    case 6:
      return Launch<6>::Run(args...);
    case 7:
      return Launch<7>::Run(args...);
    default:
      return Launch<8>::Run(args...);
  }
}

template <int kVecs>
struct Forward {
  template <typename... Args>
  static cudaError_t Run(Args... args) {
    return LaunchForward<kVecs>(args...);
  }
};

template <int kVecs>
struct Backward {
  template <typename... Args>
  static cudaError_t Run(Args... args) {
    return LaunchBackward<kVecs>(args...);
  }
};

}  // namespace

cudaError_t RmsNormForward(const bf16* x, const bf16* weight, bf16* y, float* rstd, int64_t rows,
                           int hidden, float eps, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  return DispatchVecs<Forward>(hidden, x, weight, y, rstd, rows, hidden, eps, stream);
}

int RmsNormBackwardBlocks(int64_t rows, int hidden) { return BackwardGrid(rows, hidden); }

cudaError_t RmsNormBackward(const bf16* dy, const bf16* x, const bf16* weight, const float* rstd,
                            const bf16* dresidual, bf16* dx, float* dw_partial, int64_t rows,
                            int hidden, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  return DispatchVecs<Backward>(hidden, dy, x, weight, rstd, dresidual, dx, dw_partial, rows,
                                hidden, stream);
}

}  // namespace strun::kernels

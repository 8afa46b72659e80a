#include "kernels/rotary.h"
#include "kernels/vec.cuh"

namespace strun::kernels {
namespace {

constexpr int kThreads = 256;

// One thread per 8 columns (4 pairs, inside one head since head_dim % 8 == 0) of one row. kBackward
// reads q, k, v and writes qkv; the forward the other way round. The rotation is by +angle forward
// and -angle backward (the transpose of the rotation matrix).
template <bool kBackward>
__global__ void __launch_bounds__(kThreads)
    RotaryKernel(const bf16* __restrict__ in_qkv, const bf16* __restrict__ in_q,
                 const bf16* __restrict__ in_k, const bf16* __restrict__ in_v,
                 const bf16* __restrict__ cos, const bf16* __restrict__ sin,
                 bf16* __restrict__ out_qkv, bf16* __restrict__ out_q, bf16* __restrict__ out_k,
                 bf16* __restrict__ out_v, RotaryShape s) {
  const int q_cols = s.nq * s.head_dim, kv_cols = s.nkv * s.head_dim;
  const int width = q_cols + 2 * kv_cols;
  // The forward without out_v leaves v where it is (the caller reads it from qkv).
  const int vecs_per_row = (kBackward || out_v != nullptr ? width : q_cols + kv_cols) / 8;
  const int64_t total = s.rows * vecs_per_row;
  const int half = s.head_dim / 2;
  for (int64_t idx = int64_t{blockIdx.x} * kThreads + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * kThreads) {
    const int64_t row = idx / vecs_per_row;
    const int col = static_cast<int>(idx % vecs_per_row) * 8;
    bf16* split = nullptr;  // the q, k or v element this column maps to
    const bf16* split_in = nullptr;
    int split_col = 0;
    bool rotate = true;
    if (col < q_cols) {
      split_col = col;
      split = kBackward ? nullptr : out_q + row * q_cols + split_col;
      split_in = kBackward ? in_q + row * q_cols + split_col : nullptr;
    } else if (col < q_cols + kv_cols) {
      split_col = col - q_cols;
      split = kBackward ? nullptr : out_k + row * kv_cols + split_col;
      split_in = kBackward ? in_k + row * kv_cols + split_col : nullptr;
    } else {
      split_col = col - q_cols - kv_cols;
      split = kBackward ? nullptr : out_v + row * kv_cols + split_col;
      split_in = kBackward ? in_v + row * kv_cols + split_col : nullptr;
      rotate = false;
    }
    float f[8];
    LoadBf16x8(kBackward ? split_in : in_qkv + row * width + col, f);
    if (rotate) {
      const int64_t table = (row % s.seq) * half + (split_col % s.head_dim) / 2;
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        const float c = __bfloat162float(cos[table + p]);
        const float sn =
            kBackward ? -__bfloat162float(sin[table + p]) : __bfloat162float(sin[table + p]);
        const float x0 = f[2 * p], x1 = f[2 * p + 1];
        f[2 * p] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, sn));
        f[2 * p + 1] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, c));
      }
    }
    StoreBf16x8(kBackward ? out_qkv + row * width + col : split, f);
  }
}

cudaError_t Check(const RotaryShape& s) {
  if (s.head_dim <= 0 || s.head_dim % 8 != 0 || s.seq <= 0 || s.rows % s.seq != 0) {
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t RotaryQkvForward(const bf16* qkv, const bf16* cos, const bf16* sin, bf16* q, bf16* k,
                             bf16* v, const RotaryShape& shape, cudaStream_t stream) {
  if (cudaError_t e = Check(shape); e != cudaSuccess) return e;
  const int64_t work =
      shape.rows * (shape.nq + (v != nullptr ? 2 : 1) * shape.nkv) * shape.head_dim / 8;
  if (work == 0) return cudaSuccess;
  RotaryKernel<false><<<GridFor(work, kThreads), kThreads, 0, stream>>>(
      qkv, nullptr, nullptr, nullptr, cos, sin, nullptr, q, k, v, shape);
  return cudaGetLastError();
}

cudaError_t RotaryQkvBackward(const bf16* dq, const bf16* dk, const bf16* dv, const bf16* cos,
                              const bf16* sin, bf16* dqkv, const RotaryShape& shape,
                              cudaStream_t stream) {
  if (cudaError_t e = Check(shape); e != cudaSuccess) return e;
  const int64_t work = shape.rows * (shape.nq + 2 * shape.nkv) * shape.head_dim / 8;
  if (work == 0) return cudaSuccess;
  RotaryKernel<true><<<GridFor(work, kThreads), kThreads, 0, stream>>>(
      nullptr, dq, dk, dv, cos, sin, dqkv, nullptr, nullptr, nullptr, shape);
  return cudaGetLastError();
}

}  // namespace strun::kernels

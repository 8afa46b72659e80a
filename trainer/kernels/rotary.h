// kernels/rotary.h: interleaved rotary embeddings (model/llama.h ApplyRotaryInterleaved) applied
// to the q and k parts of the fused qkv projection, which is split into q, k, v on the way.
//   qkv: [rows = batch * seq, (nq + 2 nkv) * head_dim] bf16, rows in (batch, position) order
//   q: [rows, nq * head_dim], k and v: [rows, nkv * head_dim]  (i.e. [B, S, H, D] contiguous)
//   cos, sin: [seq, head_dim / 2] bf16 (the tables of RotaryTables)
// Per pair (x0, x1) = (x[2i], x[2i+1]) at position t, in fp32: (x0 c - x1 s, x0 s + x1 c).
// v may be null: the forward then writes q and k only (v stays in qkv, read there as a view).
// The backward rotates the gradients back (by -angle) and joins them into dqkv.
// head_dim a multiple of 8; all pointers 16-byte aligned.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strun::kernels {

struct RotaryShape {
  int64_t rows = 0;
  int seq = 0;
  int nq = 0;
  int nkv = 0;
  int head_dim = 0;
};

cudaError_t RotaryQkvForward(const __nv_bfloat16* qkv, const __nv_bfloat16* cos,
                             const __nv_bfloat16* sin, __nv_bfloat16* q, __nv_bfloat16* k,
                             __nv_bfloat16* v, const RotaryShape& shape, cudaStream_t stream);

cudaError_t RotaryQkvBackward(const __nv_bfloat16* dq, const __nv_bfloat16* dk,
                              const __nv_bfloat16* dv, const __nv_bfloat16* cos,
                              const __nv_bfloat16* sin, __nv_bfloat16* dqkv,
                              const RotaryShape& shape, cudaStream_t stream);

}  // namespace strun::kernels

// kernels/swiglu.h: the gated MLP activation silu(gate) * up (model/llama.cc, hidden_act silu) on
// the fused gate_up projection, forward and backward in one pass each.
//   gate_up: [rows, 2 * inter] bf16 (columns: gate, then up); out: [rows, inter] bf16
//   dgate_up: [rows, 2 * inter] from dout: [rows, inter]
// Intermediate values are rounded to bf16 where the ATen path keeps a bf16 tensor (silu(gate) and
// the two products), so both paths give the same numbers up to fp32 evaluation order.
// inter a multiple of 8; pointers 16-byte aligned.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strun::kernels {

cudaError_t SwigluForward(const __nv_bfloat16* gate_up, __nv_bfloat16* out, int64_t rows, int inter,
                          cudaStream_t stream);

cudaError_t SwigluBackward(const __nv_bfloat16* dout, const __nv_bfloat16* gate_up,
                           __nv_bfloat16* dgate_up, int64_t rows, int inter, cudaStream_t stream);

}  // namespace strun::kernels

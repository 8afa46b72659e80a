// kernels/rms_norm.h: RMSNorm forward and backward on bf16 rows, as flash-attn's triton rms_norm
// (model/llama.h RmsNorm): statistics and the weight product in fp32, result rounded to bf16.
//   y = x * rstd * w,  rstd = rsqrt(mean(x^2) + eps)
//   dx = rstd * (dy w - xhat * mean(dy w xhat)),  dw = sum over rows of dy xhat  (xhat = x rstd)
// Row-major [rows, hidden]; hidden a multiple of 8 and at most kRmsNormMaxHidden; pointers to bf16
// rows 16-byte aligned.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strun::kernels {

inline constexpr int kRmsNormMaxHidden = 2048;

// rstd: [rows] fp32, kept for the backward.
cudaError_t RmsNormForward(const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* y,
                           float* rstd, int64_t rows, int hidden, float eps, cudaStream_t stream);

// Blocks the backward runs with: dw_partial must hold RmsNormBackwardBlocks(rows, hidden) x hidden
// floats; dw is their sum over the first dimension.
int RmsNormBackwardBlocks(int64_t rows, int hidden);

// dresidual (null: none) is the gradient of a residual branch that read x beside the norm: dx
// receives it added in fp32, before the one rounding to bf16 (saves the separate add).
cudaError_t RmsNormBackward(const __nv_bfloat16* dy, const __nv_bfloat16* x,
                            const __nv_bfloat16* weight, const float* rstd,
                            const __nv_bfloat16* dresidual, __nv_bfloat16* dx, float* dw_partial,
                            int64_t rows, int hidden, cudaStream_t stream);

}  // namespace strun::kernels

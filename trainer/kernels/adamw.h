// kernels/adamw.h: one AdamW step over flat fp32 buffers in one pass (optim/optimizer.h gives the
// update; torch's single-tensor AdamW). Per element, with g = grad * grad_scale:
//   p *= 1 - lr wd;  m += (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2
//   p -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// The same pass zeroes grad (the next step accumulates into it) and, when param_lowp is given,
// writes p rounded to bf16 there (the model's weights, laid out as the flat buffer).
// grad_scale: a device fp32 scalar (gradient clipping's coefficient) or null for 1, so that no
// value has to come back to the host.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strun::kernels {

struct AdamWHyper {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float decay = 1;                  // 1 - lr * weight_decay
  float step_size = 0;              // lr / (1 - beta1^t)
  float bias_correction2_sqrt = 1;  // sqrt(1 - beta2^t)
};

cudaError_t AdamWStep(float* param, float* grad, float* exp_avg, float* exp_avg_sq,
                      __nv_bfloat16* param_lowp, const float* grad_scale, int64_t n,
                      const AdamWHyper& hyper, cudaStream_t stream);

}  // namespace strun::kernels

#include "kernels/adamw.h"
#include "kernels/vec.cuh"

namespace strun::kernels {
namespace {

constexpr int kThreads = 256;

struct AdamWElement {
  float p, m, v;
};

__device__ __forceinline__ AdamWElement Update(float p, float g, float m, float v, float scale,
                                               const AdamWHyper& h) {
  g *= scale;
  m += (1.0f - h.beta1) * (g - m);
  v = v * h.beta2 + (1.0f - h.beta2) * g * g;
  p = p * h.decay - h.step_size * m / (sqrtf(v) / h.bias_correction2_sqrt + h.eps);
  return {p, m, v};
}

// Four elements per thread and iteration as 16-byte accesses (8 bytes for the bf16 copy): the
// update is bound by memory, 30 bytes per element.
__global__ void __launch_bounds__(kThreads)
    AdamWVec4Kernel(float4* __restrict__ p, float4* __restrict__ g, float4* __restrict__ m,
                    float4* __restrict__ v, uint2* __restrict__ p_lowp,
                    const float* __restrict__ grad_scale, int64_t n4, AdamWHyper h) {
  const float scale = grad_scale ? *grad_scale : 1.0f;
  for (int64_t i = int64_t{blockIdx.x} * kThreads + threadIdx.x; i < n4;
       i += int64_t{gridDim.x} * kThreads) {
    const float4 pi = p[i], gi = g[i], mi = m[i], vi = v[i];
    const AdamWElement a = Update(pi.x, gi.x, mi.x, vi.x, scale, h);
    const AdamWElement b = Update(pi.y, gi.y, mi.y, vi.y, scale, h);
    const AdamWElement c = Update(pi.z, gi.z, mi.z, vi.z, scale, h);
    const AdamWElement d = Update(pi.w, gi.w, mi.w, vi.w, scale, h);
    p[i] = make_float4(a.p, b.p, c.p, d.p);
    m[i] = make_float4(a.m, b.m, c.m, d.m);
    v[i] = make_float4(a.v, b.v, c.v, d.v);
    g[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (p_lowp) {
      uint2 out;
      *reinterpret_cast<__nv_bfloat162*>(&out.x) = __floats2bfloat162_rn(a.p, b.p);
      *reinterpret_cast<__nv_bfloat162*>(&out.y) = __floats2bfloat162_rn(c.p, d.p);
      p_lowp[i] = out;
    }
  }
}

// Any alignment and length (a ZeRO shard may start anywhere).
__global__ void __launch_bounds__(kThreads)
    AdamWKernel(float* __restrict__ p, float* __restrict__ g, float* __restrict__ m,
                float* __restrict__ v, bf16* __restrict__ p_lowp,
                const float* __restrict__ grad_scale, int64_t n, AdamWHyper h) {
  const float scale = grad_scale ? *grad_scale : 1.0f;
  for (int64_t i = int64_t{blockIdx.x} * kThreads + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * kThreads) {
    const AdamWElement e = Update(p[i], g[i], m[i], v[i], scale, h);
    p[i] = e.p;
    m[i] = e.m;
    v[i] = e.v;
    g[i] = 0.0f;
    if (p_lowp) p_lowp[i] = __float2bfloat16_rn(e.p);
  }
}

bool Aligned(const void* ptr, int bytes) {
  return ptr == nullptr || reinterpret_cast<uintptr_t>(ptr) % bytes == 0;
}

}  // namespace

cudaError_t AdamWStep(float* param, float* grad, float* exp_avg, float* exp_avg_sq,
                      bf16* param_lowp, const float* grad_scale, int64_t n, const AdamWHyper& hyper,
                      cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  int64_t done = 0;
  if (Aligned(param, 16) && Aligned(grad, 16) && Aligned(exp_avg, 16) && Aligned(exp_avg_sq, 16) &&
      Aligned(param_lowp, 8) && n >= 4) {
    const int64_t n4 = n / 4;
    AdamWVec4Kernel<<<GridFor(n4, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<float4*>(param), reinterpret_cast<float4*>(grad),
        reinterpret_cast<float4*>(exp_avg), reinterpret_cast<float4*>(exp_avg_sq),
        reinterpret_cast<uint2*>(param_lowp), grad_scale, n4, hyper);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    done = n4 * 4;
  }
  if (done == n) return cudaSuccess;
  AdamWKernel<<<GridFor(n - done, kThreads), kThreads, 0, stream>>>(
      param + done, grad + done, exp_avg + done, exp_avg_sq + done,
      param_lowp ? param_lowp + done : nullptr, grad_scale, n - done, hyper);
  return cudaGetLastError();
}

}  // namespace strun::kernels

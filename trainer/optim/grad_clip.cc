#include "optim/grad_clip.h"

#include <ATen/ops/clamp_max.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <c10/core/GradMode.h>

namespace strun::optim {

at::Tensor GradNormSquared(const std::vector<at::Tensor>& grads) {
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  at::ScalarType type = at::kFloat;
  for (const at::Tensor& g : grads) {
    if (g.defined() && g.scalar_type() == at::kDouble) type = at::kDouble;
  }
  at::Device device = at::kCPU;
  for (const at::Tensor& g : grads) {
    if (g.defined()) device = g.device();
  }
  // libtorch 1.13's CPU norm of fp32 loses precision with the length (1.6e-3 relative at 30M
  // elements, so the clip coefficient of a 100M-parameter model was off): accumulate in fp64 there.
  // CUDA's tree reduction is accurate in fp32.
  if (device.is_cpu()) type = at::kDouble;
  for (const at::Tensor& g : grads) {
    if (!g.defined()) continue;
    norms.push_back(at::linalg_vector_norm(g, 2, {}, false, type));
  }
  if (norms.empty()) return at::zeros({}, at::TensorOptions().dtype(type).device(device));
  return at::linalg_vector_norm(at::stack(norms), 2, {}, false, type).pow(2);
}

at::Tensor ClipCoefficient(const at::Tensor& total_norm, double max_norm) {
  c10::NoGradGuard no_grad;
  return at::clamp_max(total_norm.add(1.0e-6).reciprocal().mul(max_norm), 1.0);
}

void ScaleGradsByNorm(const std::vector<at::Tensor>& grads, const at::Tensor& total_norm,
                      double max_norm) {
  c10::NoGradGuard no_grad;
  at::Tensor coef = ClipCoefficient(total_norm, max_norm);
  for (const at::Tensor& g : grads) {
    if (g.defined()) g.mul_(coef.to(g.device()));
  }
}

at::Tensor ClipGradNorm(const std::vector<at::Tensor>& grads, double max_norm) {
  at::Tensor norm = GradNormSquared(grads).pow(0.5);
  ScaleGradsByNorm(grads, norm, max_norm);
  return norm;
}

}  // namespace strun::optim

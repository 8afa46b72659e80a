#include "optim/optimizer.h"

#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/zeros_like.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <map>

namespace strun::optim {

Optimizer::Optimizer(const OptimizerOptions& options, std::vector<OptimizedTensor> tensors)
    : options_(options), tensors_(std::move(tensors)) {
  if (options_.kind == OptimizerKind::kAdamW) {
    for (const OptimizedTensor& t : tensors_) {
      exp_avg_.push_back(at::zeros_like(t.param, at::MemoryFormat::Contiguous));
      exp_avg_sq_.push_back(at::zeros_like(t.param, at::MemoryFormat::Contiguous));
    }
  }
}

void Optimizer::Step(double lr) {
  c10::NoGradGuard no_grad;
  ++step_;
  const double wd = options_.weight_decay;
  if (options_.kind == OptimizerKind::kSgd) {
    for (OptimizedTensor& t : tensors_) {
      if (!t.grad.defined()) continue;
      if (wd != 0) {
        t.param.add_(t.grad.add(t.param, wd), -lr);
      } else {
        t.param.add_(t.grad, -lr);
      }
    }
    return;
  }
  const double beta1 = options_.adam_beta1, beta2 = options_.adam_beta2;
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step_));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step_));
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    OptimizedTensor& t = tensors_[i];
    if (!t.grad.defined()) continue;
    t.param.mul_(1 - lr * wd);
    exp_avg_[i].lerp_(t.grad, 1 - beta1);
    exp_avg_sq_[i].mul_(beta2).addcmul_(t.grad, t.grad, 1 - beta2);
    at::Tensor denom = exp_avg_sq_[i].sqrt().div_(bias_correction2_sqrt).add_(options_.adam_eps);
    t.param.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

bool Optimizer::CanFuse(const OptimizerOptions& options, const model::LlamaOps& ops) {
  return options.kind == OptimizerKind::kAdamW && ops.adamw_step != nullptr;
}

void Optimizer::FusedStep(const model::LlamaOps& ops, double lr, const at::Tensor& grad_scale,
                          const std::vector<at::Tensor>& lowp_copies) {
  TORCH_CHECK(CanFuse(options_, ops), "Optimizer::FusedStep: the ops table has no fused AdamW");
  TORCH_CHECK(lowp_copies.empty() || lowp_copies.size() == tensors_.size(),
              "Optimizer::FusedStep: one low-precision copy per tensor, or none");
  c10::NoGradGuard no_grad;
  ++step_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (!tensors_[i].grad.defined()) continue;
    model::AdamWStepArgs a;
    a.param = tensors_[i].param;
    a.grad = tensors_[i].grad;
    a.exp_avg = exp_avg_[i];
    a.exp_avg_sq = exp_avg_sq_[i];
    if (!lowp_copies.empty()) a.param_lowp = lowp_copies[i];
    a.grad_scale = grad_scale.defined() ? grad_scale.to(at::kFloat) : grad_scale;
    a.lr = lr;
    a.beta1 = options_.adam_beta1;
    a.beta2 = options_.adam_beta2;
    a.eps = options_.adam_eps;
    a.weight_decay = options_.weight_decay;
    a.step = step_;
    ops.adamw_step(a);
  }
}

NamedTensors Optimizer::StateDict() const {
  NamedTensors out;
  out.emplace_back("step", at::scalar_tensor(step_, at::TensorOptions().dtype(at::kLong)));
  for (size_t i = 0; i < exp_avg_.size(); ++i) {
    out.emplace_back(tensors_[i].name + ".exp_avg", exp_avg_[i]);
    out.emplace_back(tensors_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  return out;
}

Status Optimizer::LoadStateDict(const NamedTensors& state) {
  std::map<std::string, at::Tensor> targets;
  for (auto& [name, t] : StateDict()) targets.emplace(name, t);
  std::map<std::string, at::Tensor> given;
  for (const auto& [name, t] : state) {
    if (!targets.count(name)) {
      return MakeError(fmt::format("optimizer state has an unexpected entry '{}'", name));
    }
    given[name] = t;
  }
  for (const auto& [name, target] : targets) {
    auto it = given.find(name);
    if (it == given.end()) {
      return MakeError(fmt::format("optimizer state lacks the entry '{}'", name));
    }
    if (!it->second.sizes().equals(target.sizes())) {
      return MakeError(fmt::format("optimizer state '{}' has shape [{}], expected [{}]", name,
                                   fmt::join(it->second.sizes(), ", "),
                                   fmt::join(target.sizes(), ", ")));
    }
  }
  c10::NoGradGuard no_grad;
  step_ = given["step"].item<int64_t>();
  for (size_t i = 0; i < exp_avg_.size(); ++i) {
    exp_avg_[i].copy_(given[tensors_[i].name + ".exp_avg"]);
    exp_avg_sq_[i].copy_(given[tensors_[i].name + ".exp_avg_sq"]);
  }
  return {};
}

}  // namespace strun::optim

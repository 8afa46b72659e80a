// optim/optimizer.h: torch.optim.AdamW and torch.optim.SGD as nanotron builds them
// (helpers.py init_optimizer_and_grad_accumulator at nanotron 5f8a52b0), over any list of tensors.
//
// nanotron applies weight_decay to every parameter (LlamaForTraining excludes none) and uses one
// learning rate for all (standard parametrization), so the update is elementwise with shared
// hyper-parameters: running it on flat fp32 buffers, or on one data-parallel rank's shard of
// them (ZeRO-1), gives the same numbers as running it per parameter.
//
// AdamW, per element, at step t with learning rate lr (torch's single-tensor implementation):
//   p *= 1 - lr * wd
//   m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// SGD (no momentum, as nanotron builds it): p -= lr * (g + wd p).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "model/ops.h"
#include "strun/result.h"

namespace strun::optim {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// One tensor the optimizer updates in place (fp32 master weights, or a shard of them) and its
// gradient of the same shape. `grad` is read at each Step; an undefined grad skips the tensor.
struct OptimizedTensor {
  std::string name;
  at::Tensor param;
  at::Tensor grad;
};

enum class OptimizerKind { kAdamW, kSgd };

// optimizer.optimizer_factory + optimizer.weight_decay.
struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdamW;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
};

class Optimizer {
 public:
  Optimizer(const OptimizerOptions& options, std::vector<OptimizedTensor> tensors);

  // One update of every tensor with learning rate `lr` (from LrSchedule::LearningRateAt).
  void Step(double lr);

  // Whether FusedStep can run: AdamW and an ops table with a fused AdamW (model/ops.h).
  static bool CanFuse(const OptimizerOptions& options, const model::LlamaOps& ops);
  // The trainer's whole update in one pass per tensor with ops.adamw_step: gradients multiplied by
  // grad_scale (a device scalar, e.g. ClipCoefficient; undefined: 1), Step(lr), gradients zeroed,
  // and, where lowp_copies[i] is defined, tensors()[i].param written into it in its dtype (the
  // model's bf16 weights). Needs CanFuse.
  void FusedStep(const model::LlamaOps& ops, double lr, const at::Tensor& grad_scale,
                 const std::vector<at::Tensor>& lowp_copies);

  // Number of Steps taken (torch's state["step"]).
  int64_t step() const { return step_; }
  const OptimizerOptions& options() const { return options_; }
  std::vector<OptimizedTensor>& tensors() { return tensors_; }

  // Replaces the gradient tensor of tensors()[i] (e.g. when the caller reallocates buffers).
  void SetGrad(size_t i, at::Tensor grad) { tensors_[i].grad = std::move(grad); }

  // State for checkpoints: "step" (int64 scalar) and, for AdamW, "<name>.exp_avg" and
  // "<name>.exp_avg_sq" for each tensor, in tensor order. The tensors are the live state.
  NamedTensors StateDict() const;
  // Restores a StateDict of an optimizer over tensors of the same names and shapes.
  Status LoadStateDict(const NamedTensors& state);

 private:
  OptimizerOptions options_;
  std::vector<OptimizedTensor> tensors_;
  std::vector<at::Tensor> exp_avg_;
  std::vector<at::Tensor> exp_avg_sq_;
  int64_t step_ = 0;
};

}  // namespace strun::optim

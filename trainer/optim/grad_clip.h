// optim/grad_clip.h: gradient clipping by global L2 norm, as nanotron's optim/clip_grads.py:
// norm = sqrt(sum over tensors of ||g||^2), computed in fp32 (fp64 on the CPU); every gradient is
// scaled by min(1, max_norm / (norm + 1e-6)). Nothing here synchronises with the host.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace strun::optim {

// This process's share of the squared global norm: a 0-dim fp32 tensor (fp64 for fp64 grads, and
// on the CPU, whose fp32 norm loses precision on long tensors) on the gradients' device. Sum it
// over the ranks that hold disjoint parts of the gradients (e.g. ZeRO-1 shards) before taking the
// square root (.pow(0.5), as nanotron). Undefined tensors are skipped.
at::Tensor GradNormSquared(const std::vector<at::Tensor>& grads);

// min(1, max_norm / (total_norm + 1e-6)) as a 0-dim tensor on total_norm's device (for an
// optimizer step that scales the gradients itself, model/ops.h AdamWStepArgs::grad_scale).
at::Tensor ClipCoefficient(const at::Tensor& total_norm, double max_norm);

// Scales `grads` in place by ClipCoefficient(total_norm, max_norm); total_norm is the global
// norm (a 0-dim tensor).
void ScaleGradsByNorm(const std::vector<at::Tensor>& grads, const at::Tensor& total_norm,
                      double max_norm);

// Both, for gradients held whole by this process: returns the norm before clipping.
at::Tensor ClipGradNorm(const std::vector<at::Tensor>& grads, double max_norm);

}  // namespace strun::optim

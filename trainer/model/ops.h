// model/ops.h: the ops table through which the Llama (and the optimizer) reach their elementwise,
// loss and update work. AtenOps() composes ATen ops: the CPU implementation and the reference every
// kernel is tested against. CudaOps() runs trainer/kernels/ where this build has them (libtorch
// with CUDA and a CUDA compiler): bf16 tensors on one CUDA device only.
//
// Every op has the ATen op's contract (shapes, dtypes, autograd); the CUDA one may differ from it
// only by rounding (each kernel's header says where).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <vector>

#include "model/llama_config.h"

namespace strun::model {

// One AdamW step over flat fp32 tensors of equal size (optim/optimizer.h has the formula). The
// gradient is first multiplied by grad_scale (a device fp32 scalar; undefined: 1) and is zero
// afterwards; param_lowp (undefined: none) receives param in its own dtype.
struct AdamWStepArgs {
  at::Tensor param, grad, exp_avg, exp_avg_sq;
  at::Tensor param_lowp;
  at::Tensor grad_scale;
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t step = 1;  // 1-based, for the bias corrections
};

struct LlamaOps {
  const char* name;
  // RmsNorm (llama.h) of x [..., hidden].
  at::Tensor (*rms_norm)(const at::Tensor& x, const at::Tensor& weight, double eps);
  // {RmsNorm(x), x}: for an x that also feeds a residual add, which then reads the second output;
  // the CUDA backward adds that branch's gradient to dx in its own pass.
  std::vector<at::Tensor> (*rms_norm_fork)(const at::Tensor& x, const at::Tensor& weight,
                                           double eps);
  // qkv [B, S, (nq + 2 nkv) head_dim] -> {q, k, v} as [B, S, heads, head_dim], q and k rotated
  // (ApplyRotaryInterleaved with the tables of RotaryTables).
  std::vector<at::Tensor> (*rotary_qkv)(const at::Tensor& qkv, int64_t nq, int64_t nkv,
                                        int64_t head_dim, const at::Tensor& cos,
                                        const at::Tensor& sin);
  // silu(gate) * up for gate_up [..., 2 inter] (columns: gate, then up) -> [..., inter].
  at::Tensor (*silu_mul)(const at::Tensor& gate_up);
  // linear(x, weight) = x weight^T (no bias).
  at::Tensor (*linear)(const at::Tensor& x, const at::Tensor& weight);
  // linear(x, weight) + residual.
  at::Tensor (*linear_residual)(const at::Tensor& x, const at::Tensor& weight,
                                const at::Tensor& residual);
  // MaskedCrossEntropy (llama.h) of the fp32 logits linear(hidden, weight) [..., vocab].
  at::Tensor (*classifier_loss)(const at::Tensor& hidden, const at::Tensor& weight,
                                const at::Tensor& labels, const at::Tensor& mask);
  // null: the optimizer runs its own ATen ops.
  void (*adamw_step)(const AdamWStepArgs& args);
  // grads[i] (numels[i] elements; undefined: the parameter got none) into the flat fp32 buffer at
  // offsets[i]: assigned (zeros for undefined) or, with accumulate, added. null: FlatLayout's
  // Assign / Accumulate (ATen ops).
  void (*grads_to_flat)(const std::vector<at::Tensor>& grads, const std::vector<int64_t>& offsets,
                        const std::vector<int64_t>& numels, const at::Tensor& flat,
                        bool accumulate);
};

const LlamaOps& AtenOps();

// The kernels' table, or null where this build has none.
const LlamaOps* CudaOps();

// The table a model of this config on `options` uses: CudaOps() for bf16 tensors on a CUDA device
// when the kernels take the config's shapes, unless the environment has STRUN_TRAIN_OPS=aten (the
// reference path, for comparisons); AtenOps() otherwise.
const LlamaOps& SelectOps(const LlamaModelConfig& config, const at::TensorOptions& options);

}  // namespace strun::model

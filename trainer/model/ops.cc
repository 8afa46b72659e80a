#include "model/ops.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <string_view>

#include "model/llama.h"

#ifdef STRUN_HAVE_CUDA_KERNELS
#include "kernels/torch_ops.h"
#endif

namespace strun::model {
namespace {

std::vector<at::Tensor> AtenRotaryQkv(const at::Tensor& qkv, int64_t nq, int64_t nkv, int64_t d,
                                      const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t b = qkv.size(0), s = qkv.size(1);
  std::vector<at::Tensor> parts = qkv.split_with_sizes({nq * d, nkv * d, nkv * d}, -1);
  return {ApplyRotaryInterleaved(parts[0].reshape({b, s, nq, d}), cos, sin),
          ApplyRotaryInterleaved(parts[1].reshape({b, s, nkv, d}), cos, sin),
          parts[2].reshape({b, s, nkv, d})};
}

std::vector<at::Tensor> AtenRmsNormFork(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return {RmsNorm(x, weight, eps), x};
}

at::Tensor AtenSiluMul(const at::Tensor& gate_up) {
  const int64_t inter = gate_up.size(-1) / 2;
  return at::silu(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter);
}

at::Tensor AtenLinear(const at::Tensor& x, const at::Tensor& weight) {
  return at::linear(x, weight);
}

at::Tensor AtenLinearResidual(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& residual) {
  return at::linear(x, weight) + residual;
}

at::Tensor AtenClassifierLoss(const at::Tensor& hidden, const at::Tensor& weight,
                              const at::Tensor& labels, const at::Tensor& mask) {
  at::Tensor logits = at::linear(hidden, weight);
  const at::ScalarType ct = logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return MaskedCrossEntropy(logits.to(ct), labels, mask);
}

const LlamaOps kAtenOps = {
    .name = "aten",
    .rms_norm = RmsNorm,
    .rms_norm_fork = AtenRmsNormFork,
    .rotary_qkv = AtenRotaryQkv,
    .silu_mul = AtenSiluMul,
    .linear = AtenLinear,
    .linear_residual = AtenLinearResidual,
    .classifier_loss = AtenClassifierLoss,
    .adamw_step = nullptr,     // the optimizer's own ATen ops
    .grads_to_flat = nullptr,  // FlatLayout's ATen ops
};

}  // namespace

const LlamaOps& AtenOps() { return kAtenOps; }

const LlamaOps* CudaOps() {
#ifdef STRUN_HAVE_CUDA_KERNELS
  return &kernels::CudaLlamaOps();
#else
  return nullptr;
#endif
}

const LlamaOps& SelectOps(const LlamaModelConfig& c, const at::TensorOptions& options) {
  const char* want = std::getenv("STRUN_TRAIN_OPS");
  if (want && std::string_view(want) == "aten") return AtenOps();
  const LlamaOps* cuda = CudaOps();
  const bool shapes_fit = c.hidden_size % 8 == 0 && c.hidden_size <= 2048 &&
                          c.head_dim() % 8 == 0 && c.intermediate_size % 8 == 0 &&
                          (c.hidden_act == "silu" || c.hidden_act == "swish");
  if (cuda && options.device().is_cuda() && options.dtype() == at::kBFloat16 && shapes_fit) {
    return *cuda;
  }
  return AtenOps();
}

}  // namespace strun::model

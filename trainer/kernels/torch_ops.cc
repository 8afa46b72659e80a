#include "kernels/torch_ops.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "kernels/adamw.h"
#include "kernels/classifier.h"
#include "kernels/gemm.h"
#include "kernels/grad_cast.h"
#include "kernels/rms_norm.h"
#include "kernels/rotary.h"
#include "kernels/swiglu.h"

namespace strun::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

cudaStream_t Stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Contiguous and 16-byte aligned (the kernels' vector accesses), copying only when needed.
at::Tensor Dense(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  if (reinterpret_cast<std::uintptr_t>(c.data_ptr()) % 16 != 0) c = c.clone();
  return c;
}

__nv_bfloat16* Bf16(const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kBFloat16 && t.is_cuda(),
              "strun kernels: expected a bf16 "
              "CUDA tensor, got ",
              t.scalar_type(), " on ", t.device());
  return reinterpret_cast<__nv_bfloat16*>(t.data_ptr());
}

// ---- RMSNorm ----

// The forward and backward shared by rms_norm and rms_norm_fork.
at::Tensor RmsNormForwardOp(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            double eps) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t h = x.size(-1);
  at::Tensor x2 = Dense(x.reshape({-1, h}));
  at::Tensor w = Dense(weight);
  at::Tensor y = at::empty_like(x2);
  at::Tensor rstd = at::empty({x2.size(0)}, x2.options().dtype(at::kFloat));
  C10_CUDA_CHECK(RmsNormForward(Bf16(x2), Bf16(w), Bf16(y), rstd.data_ptr<float>(), x2.size(0),
                                static_cast<int>(h), static_cast<float>(eps), Stream()));
  ctx->save_for_backward({x2, w, rstd});
  ctx->saved_data["sizes"] = x.sizes().vec();
  return y.view(x.sizes());
}

// {dx, dweight}; dresidual (undefined: none) is added into dx by the kernel.
variable_list RmsNormBackwardOp(AutogradContext* ctx, const at::Tensor& grad_y,
                                const at::Tensor& grad_residual) {
  const variable_list saved = ctx->get_saved_variables();
  const at::Tensor &x2 = saved[0], &w = saved[1], &rstd = saved[2];
  const c10::cuda::CUDAGuard guard(x2.device());
  const int64_t rows = x2.size(0), h = x2.size(1);
  const auto sizes = ctx->saved_data["sizes"].toIntVector();
  if (!grad_y.defined()) {  // only the residual branch was used
    return {grad_residual.defined() ? grad_residual : at::zeros(sizes, x2.options()),
            at::zeros_like(w)};
  }
  at::Tensor dy = Dense(grad_y.reshape({rows, h}));
  at::Tensor dres =
      grad_residual.defined() ? Dense(grad_residual.reshape({rows, h})) : at::Tensor();
  at::Tensor dx = at::empty_like(x2);
  at::Tensor partial = at::empty({RmsNormBackwardBlocks(rows, static_cast<int>(h)), h},
                                 x2.options().dtype(at::kFloat));
  C10_CUDA_CHECK(RmsNormBackward(Bf16(dy), Bf16(x2), Bf16(w), rstd.data_ptr<float>(),
                                 dres.defined() ? Bf16(dres) : nullptr, Bf16(dx),
                                 partial.data_ptr<float>(), rows, static_cast<int>(h), Stream()));
  return {dx.view(sizes), partial.sum(0).to(w.scalar_type())};
}

struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            double eps) {
    return RmsNormForwardOp(ctx, x, weight, eps);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list g = RmsNormBackwardOp(ctx, grads[0], at::Tensor());
    return {g[0], g[1], at::Tensor()};
  }
};

// {RmsNorm(x), x}: the second output is the residual branch; its gradient joins dx inside the
// backward kernel instead of in a separate add by the autograd engine.
struct RmsNormForkFn : torch::autograd::Function<RmsNormForkFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                               double eps) {
    ctx->set_materialize_grads(false);  // an unused branch costs no zero tensor
    return {RmsNormForwardOp(ctx, x, weight, eps), x};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list g = RmsNormBackwardOp(ctx, grads[0], grads[1]);
    return {g[0], g[1], at::Tensor()};
  }
};

at::Tensor CudaRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNormFn::apply(x, weight, eps);
}

std::vector<at::Tensor> CudaRmsNormFork(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNormForkFn::apply(x, weight, eps);
}

// ---- rotary on the fused qkv ----

struct RotaryQkvFn : torch::autograd::Function<RotaryQkvFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& qkv, int64_t nq, int64_t nkv,
                               int64_t d, const at::Tensor& cos, const at::Tensor& sin) {
    const c10::cuda::CUDAGuard guard(qkv.device());
    const int64_t b = qkv.size(0), s = qkv.size(1);
    TORCH_CHECK(qkv.size(2) == (nq + 2 * nkv) * d && cos.size(0) >= s && cos.size(1) == d / 2,
                "rotary_qkv: shapes do not fit");
    at::Tensor x = Dense(qkv);
    at::Tensor c = Dense(cos.narrow(0, 0, s));
    at::Tensor sn = Dense(sin.narrow(0, 0, s));
    at::Tensor q = at::empty({b, s, nq, d}, x.options());
    at::Tensor k = at::empty({b, s, nkv, d}, x.options());
    // v stays in qkv: attention reads the view with its strides (saves writing and reading a
    // copy of it, +1% tokens/s on an H100).
    at::Tensor v = x.narrow(2, (nq + nkv) * d, nkv * d).view({b, s, nkv, d});
    const RotaryShape shape{b * s, static_cast<int>(s), static_cast<int>(nq), static_cast<int>(nkv),
                            static_cast<int>(d)};
    C10_CUDA_CHECK(RotaryQkvForward(Bf16(x), Bf16(c), Bf16(sn), Bf16(q), Bf16(k),
                                    /*v=*/nullptr, shape, Stream()));
    ctx->save_for_backward({c, sn});
    ctx->saved_data["shape"] = std::vector<int64_t>{b, s, nq, nkv, d};
    return {q, k, v};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const std::vector<int64_t> sh = ctx->saved_data["shape"].toIntVector();
    const int64_t b = sh[0], s = sh[1], nq = sh[2], nkv = sh[3], d = sh[4];
    const c10::cuda::CUDAGuard guard(saved[0].device());
    const at::TensorOptions o = saved[0].options();
    auto grad = [&](size_t i, int64_t heads) {
      return grads[i].defined() ? Dense(grads[i]) : at::zeros({b, s, heads, d}, o);
    };
    at::Tensor dq = grad(0, nq), dk = grad(1, nkv), dv = grad(2, nkv);
    at::Tensor dqkv = at::empty({b, s, (nq + 2 * nkv) * d}, o);
    const RotaryShape shape{b * s, static_cast<int>(s), static_cast<int>(nq), static_cast<int>(nkv),
                            static_cast<int>(d)};
    C10_CUDA_CHECK(RotaryQkvBackward(Bf16(dq), Bf16(dk), Bf16(dv), Bf16(saved[0]), Bf16(saved[1]),
                                     Bf16(dqkv), shape, Stream()));
    return {dqkv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::vector<at::Tensor> CudaRotaryQkv(const at::Tensor& qkv, int64_t nq, int64_t nkv, int64_t d,
                                      const at::Tensor& cos, const at::Tensor& sin) {
  return RotaryQkvFn::apply(qkv, nq, nkv, d, cos, sin);
}

// ---- silu(gate) * up ----

struct SiluMulFn : torch::autograd::Function<SiluMulFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate_up) {
    const c10::cuda::CUDAGuard guard(gate_up.device());
    const int64_t two_inter = gate_up.size(-1);
    at::Tensor x = Dense(gate_up);
    std::vector<int64_t> out_sizes = gate_up.sizes().vec();
    out_sizes.back() = two_inter / 2;
    at::Tensor out = at::empty(out_sizes, x.options());
    C10_CUDA_CHECK(SwigluForward(Bf16(x), Bf16(out), x.numel() / two_inter,
                                 static_cast<int>(two_inter / 2), Stream()));
    ctx->save_for_backward({x});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t two_inter = x.size(-1);
    at::Tensor dout = Dense(grads[0]);
    at::Tensor dx = at::empty_like(x);
    C10_CUDA_CHECK(SwigluBackward(Bf16(dout), Bf16(x), Bf16(dx), x.numel() / two_inter,
                                  static_cast<int>(two_inter / 2), Stream()));
    return {dx};
  }
};

at::Tensor CudaSiluMul(const at::Tensor& gate_up) { return SiluMulFn::apply(gate_up); }

// ---- GEMMs: cuBLASLt with each problem's algorithm timed once (kernels/gemm.h) ----

// STRUN_GEMM: "tuned" (default), "heuristic" (cuBLASLt's first candidate) or "aten" (at::mm, i.e.
// cuBLAS; for A/B measurements).
struct GemmMode {
  bool lt = true;
  GemmTuning tuning = GemmTuning::kTimed;
};

const GemmMode& Mode() {
  static const GemmMode mode = [] {
    GemmMode m;
    const char* v = std::getenv("STRUN_GEMM");
    const std::string_view want = v ? v : "tuned";
    if (want == "aten") {
      m.lt = false;
    } else if (want == "heuristic") {
      m.tuning = GemmTuning::kHeuristic;
    } else {
      TORCH_CHECK(want == "tuned", "STRUN_GEMM=", want,
                  ": expected tuned (the default), heuristic or aten");
    }
    return m;
  }();
  return mode;
}

// One workspace per device for the process (cuBLASLt runs on one stream at a time here).
void* Workspace(const at::Device& device) {
  static std::mutex mu;
  static auto* buffers = new std::map<int, at::Tensor>();  // never freed: used until exit
  const std::lock_guard<std::mutex> lock(mu);
  at::Tensor& t = (*buffers)[device.index()];
  if (!t.defined()) {
    t = at::empty({static_cast<int64_t>(kGemmWorkspaceBytes)},
                  at::TensorOptions().device(device).dtype(at::kByte));
  }
  return t.data_ptr();
}

// d = op(a) op(b) + beta c for 2-D row-major tensors with unit column stride (a, b bf16; d bf16
// or fp32; c, where beta != 0, laid out as d: d itself or another tensor).
void Matmul(const at::Tensor& a, bool trans_a, const at::Tensor& b, bool trans_b, at::Tensor& d,
            float beta = 0.0f, const at::Tensor& c = at::Tensor()) {
  if (!Mode().lt) {
    TORCH_CHECK(d.scalar_type() == at::kBFloat16, "STRUN_GEMM=aten: bf16 outputs only");
    at::Tensor opa = trans_a ? a.t() : a, opb = trans_b ? b.t() : b;
    if (beta == 0.0f) {
      at::mm_out(d, opa, opb);
    } else {
      if (!c.is_same(d)) d.copy_(c);
      d.addmm_(opa, opb, beta);
    }
    return;
  }
  for (const at::Tensor* t : {&a, &b, static_cast<const at::Tensor*>(&d)}) {
    TORCH_CHECK(t->dim() == 2 && t->stride(1) == 1 && t->is_cuda(),
                "strun GEMM: operands must be 2-D CUDA tensors with unit column stride");
  }
  TORCH_CHECK(beta == 0.0f || (c.defined() && c.sizes() == d.sizes() &&
                               c.strides() == d.strides() && c.scalar_type() == d.scalar_type()),
              "strun GEMM: C must be laid out as D");
  GemmArgs g;
  g.a = Bf16(a);
  g.lda = a.stride(0);
  g.trans_a = trans_a;
  g.b = Bf16(b);
  g.ldb = b.stride(0);
  g.trans_b = trans_b;
  g.d = d.data_ptr();
  g.c = beta != 0.0f ? c.data_ptr() : nullptr;
  g.beta = beta;
  g.ldd = d.stride(0);
  g.out = d.scalar_type() == at::kFloat ? GemmOut::kFloat : GemmOut::kBf16;
  TORCH_CHECK(d.scalar_type() == at::kFloat || d.scalar_type() == at::kBFloat16,
              "strun GEMM: D must be bf16 or fp32");
  g.m = trans_a ? a.size(1) : a.size(0);
  g.k = trans_a ? a.size(0) : a.size(1);
  g.n = trans_b ? b.size(0) : b.size(1);
  TORCH_CHECK((trans_b ? b.size(1) : b.size(0)) == g.k && d.size(0) == g.m && d.size(1) == g.n,
              "strun GEMM: shapes do not fit: op(A) ", g.m, "x", g.k, ", op(B) ",
              trans_b ? b.size(1) : b.size(0), "x", g.n, ", D ", d.size(0), "x", d.size(1));
  void* ws = Workspace(d.device());
  std::string error;
  if (!GemmPlanned(g)) {
    // Timing waits for the stream, which a CUDA graph capture does not allow: a problem first
    // seen while capturing takes cuBLASLt's first candidate.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    C10_CUDA_CHECK(cudaStreamIsCapturing(Stream(), &capture));
    const GemmTuning tuning =
        capture == cudaStreamCaptureStatusNone ? Mode().tuning : GemmTuning::kHeuristic;
    at::Tensor scratch;
    if (tuning == GemmTuning::kTimed) {
      scratch = at::empty({static_cast<int64_t>(GemmOutputBytes(g))}, d.options().dtype(at::kByte));
    }
    TORCH_CHECK(GemmPlan(g, tuning, scratch.defined() ? scratch.data_ptr() : nullptr, ws, Stream(),
                         &error) == cudaSuccess,
                error);
  }
  TORCH_CHECK(Gemm(g, ws, Stream(), &error) == cudaSuccess, error);
}

// ---- linear, and linear + residual (the GEMM's epilogue adds the residual: beta = 1) ----

// x [..., in] @ weight [out, in]^T (+ residual [..., out], where given): y and what backward needs.
at::Tensor LinearForward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                         const at::Tensor* residual) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t in = x.size(-1), out = weight.size(0);
  at::Tensor x2 = Dense(x.reshape({-1, in}));
  at::Tensor w = Dense(weight);
  at::Tensor y = at::empty({x2.size(0), out}, x2.options());
  if (residual != nullptr) {
    Matmul(x2, false, w, true, y, 1.0f, Dense(residual->reshape({-1, out})));
  } else {
    Matmul(x2, false, w, true, y);
  }
  ctx->save_for_backward({x2, w});
  ctx->saved_data["sizes"] = x.sizes().vec();
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = out;
  return y.view(sizes);
}

// {dx = dy W, dW = dy^T x}.
variable_list LinearBackward(AutogradContext* ctx, const at::Tensor& grad_y) {
  const variable_list saved = ctx->get_saved_variables();
  const at::Tensor &x2 = saved[0], &w = saved[1];
  const c10::cuda::CUDAGuard guard(x2.device());
  at::Tensor dy = Dense(grad_y.reshape({-1, w.size(0)}));
  at::Tensor dx = at::empty_like(x2);
  Matmul(dy, false, w, false, dx);
  at::Tensor dw = at::empty_like(w);
  Matmul(dy, true, x2, false, dw);
  return {dx.view(ctx->saved_data["sizes"].toIntVector()), dw};
}

struct LinearFn : torch::autograd::Function<LinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight) {
    return LinearForward(ctx, x, weight, nullptr);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return LinearBackward(ctx, grads[0]);
  }
};

// The residual's gradient is the output's.
struct LinearResidualFn : torch::autograd::Function<LinearResidualFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& residual) {
    return LinearForward(ctx, x, weight, &residual);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list g = LinearBackward(ctx, grads[0]);
    return {g[0], g[1], grads[0]};
  }
};

at::Tensor CudaLinear(const at::Tensor& x, const at::Tensor& weight) {
  return LinearFn::apply(x, weight);
}

at::Tensor CudaLinearResidual(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& residual) {
  return LinearResidualFn::apply(x, weight, residual).view(residual.sizes());
}

// ---- fused classifier + cross entropy ----

// Rows per chunk of logits: at most ~1 GiB of bf16 logits at a time, in equal chunks.
int64_t ChunkRows(int64_t rows, int64_t padded_vocab) {
  const int64_t fit = std::max<int64_t>(1, (int64_t{1} << 30) / (padded_vocab * 2));
  const int64_t chunks = (rows + fit - 1) / fit;
  return std::max<int64_t>(1, (rows + chunks - 1) / chunks);
}

// The forward computes the loss and both gradients (scaled by dloss = 1); the backward scales
// them by the incoming gradient. The GEMMs run on the weight padded to a multiple of 128 rows
// (zero rows, whose logits the loss kernel leaves out); gradients are returned unpadded.
struct ClassifierLossFn : torch::autograd::Function<ClassifierLossFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden,
                            const at::Tensor& weight, const at::Tensor& labels,
                            const at::Tensor& mask) {
    const c10::cuda::CUDAGuard guard(hidden.device());
    const int64_t h = hidden.size(-1), vocab = weight.size(0);
    const int64_t padded = (vocab + 127) / 128 * 128;
    at::Tensor x = Dense(hidden.reshape({-1, h}));
    const int64_t rows = x.size(0);
    at::Tensor wp = at::empty({padded, h}, weight.options());
    wp.narrow(0, 0, vocab).copy_(weight);
    if (padded > vocab) wp.narrow(0, vocab, padded - vocab).zero_();
    at::Tensor lbl = labels.reshape({-1}).to(at::kLong).contiguous();
    at::Tensor m = mask.reshape({-1}).to(at::kFloat);
    at::Tensor count = m.sum();
    at::Tensor grad_weight = m.div(count).contiguous();
    at::Tensor losses = at::empty({rows}, x.options().dtype(at::kFloat));
    at::Tensor dx = at::empty_like(x);
    at::Tensor dwp = at::empty({padded, h}, weight.options());
    const int64_t chunk = ChunkRows(rows, padded);
    at::Tensor logits = at::empty({std::min(chunk, rows), padded}, x.options());
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t n = std::min(chunk, rows - r0);
      at::Tensor lg = logits.narrow(0, 0, n);
      at::Tensor xc = x.narrow(0, r0, n);
      Matmul(xc, false, wp, true, lg);
      C10_CUDA_CHECK(SoftmaxCrossEntropyInPlace(
          Bf16(lg), n, padded, vocab, lbl.data_ptr<int64_t>() + r0,
          grad_weight.data_ptr<float>() + r0, losses.data_ptr<float>() + r0, Stream()));
      at::Tensor dxc = dx.narrow(0, r0, n);
      Matmul(lg, false, wp, false, dxc);
      Matmul(lg, true, xc, false, dwp, r0 == 0 ? 0.0f : 1.0f, dwp);
    }
    ctx->saved_data["dx"] = dx.view(hidden.sizes());
    ctx->saved_data["dw"] = dwp.narrow(0, 0, vocab);
    return losses.mul(m).sum().div(count);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor& g = grads[0];
    return {ctx->saved_data["dx"].toTensor().mul(g), ctx->saved_data["dw"].toTensor().mul(g),
            at::Tensor(), at::Tensor()};
  }
};

at::Tensor CudaClassifierLoss(const at::Tensor& hidden, const at::Tensor& weight,
                              const at::Tensor& labels, const at::Tensor& mask) {
  return ClassifierLossFn::apply(hidden, weight, labels, mask);
}

// ---- AdamW over flat fp32 buffers ----

void CudaAdamWStep(const model::AdamWStepArgs& a) {
  const c10::cuda::CUDAGuard guard(a.param.device());
  const int64_t n = a.param.numel();
  for (const at::Tensor* t : {&a.param, &a.grad, &a.exp_avg, &a.exp_avg_sq}) {
    TORCH_CHECK(
        t->is_cuda() && t->scalar_type() == at::kFloat && t->is_contiguous() && t->numel() == n,
        "adamw_step: expected contiguous fp32 CUDA tensors of ", n, " elements");
  }
  TORCH_CHECK(
      !a.param_lowp.defined() || (a.param_lowp.is_contiguous() && a.param_lowp.numel() == n),
      "adamw_step: param_lowp must be contiguous with ", n, " elements");
  TORCH_CHECK(!a.grad_scale.defined() ||
                  (a.grad_scale.numel() == 1 && a.grad_scale.scalar_type() == at::kFloat &&
                   a.grad_scale.is_cuda()),
              "adamw_step: grad_scale must be an fp32 CUDA scalar");
  const double t = static_cast<double>(a.step);
  AdamWHyper h;
  h.beta1 = static_cast<float>(a.beta1);
  h.beta2 = static_cast<float>(a.beta2);
  h.eps = static_cast<float>(a.eps);
  h.decay = static_cast<float>(1.0 - a.lr * a.weight_decay);
  h.step_size = static_cast<float>(a.lr / (1.0 - std::pow(a.beta1, t)));
  h.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(a.beta2, t)));
  C10_CUDA_CHECK(AdamWStep(
      a.param.data_ptr<float>(), a.grad.data_ptr<float>(), a.exp_avg.data_ptr<float>(),
      a.exp_avg_sq.data_ptr<float>(), a.param_lowp.defined() ? Bf16(a.param_lowp) : nullptr,
      a.grad_scale.defined() ? a.grad_scale.data_ptr<float>() : nullptr, n, h, Stream()));
}

// ---- gradients into the flat fp32 buffer ----

void CudaGradsToFlat(const std::vector<at::Tensor>& grads, const std::vector<int64_t>& offsets,
                     const std::vector<int64_t>& numels, const at::Tensor& flat, bool accumulate) {
  TORCH_CHECK(grads.size() == offsets.size() && grads.size() == numels.size(),
              "grads_to_flat: ", grads.size(), " gradients, ", offsets.size(), " offsets, ",
              numels.size(), " sizes");
  TORCH_CHECK(flat.is_cuda() && flat.scalar_type() == at::kFloat && flat.is_contiguous(),
              "grads_to_flat: the flat buffer must be a contiguous fp32 CUDA tensor");
  const c10::cuda::CUDAGuard guard(flat.device());
  std::vector<GradSegment> segments(grads.size());
  std::vector<at::Tensor> dense;  // alive until the launch is queued
  dense.reserve(grads.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    TORCH_CHECK(offsets[i] >= 0 && numels[i] >= 0 && offsets[i] + numels[i] <= flat.numel(),
                "grads_to_flat: segment ", i, " lies outside the flat buffer");
    segments[i].offset = offsets[i];
    segments[i].numel = numels[i];
    if (!grads[i].defined()) continue;
    TORCH_CHECK(grads[i].numel() == numels[i] && grads[i].device() == flat.device(),
                "grads_to_flat: gradient ", i, " has ", grads[i].numel(), " elements on ",
                grads[i].device(), ", its segment ", numels[i], " on ", flat.device());
    dense.push_back(Dense(grads[i]));
    segments[i].src = Bf16(dense.back());
  }
  C10_CUDA_CHECK(GradsToFlat(segments.data(), static_cast<int>(segments.size()),
                             flat.data_ptr<float>(), accumulate, Stream()));
}

const model::LlamaOps kCudaOps = {
    .name = "cuda",
    .rms_norm = CudaRmsNorm,
    .rms_norm_fork = CudaRmsNormFork,
    .rotary_qkv = CudaRotaryQkv,
    .silu_mul = CudaSiluMul,
    .linear = CudaLinear,
    .linear_residual = CudaLinearResidual,
    .classifier_loss = CudaClassifierLoss,
    .adamw_step = CudaAdamWStep,
    .grads_to_flat = CudaGradsToFlat,
};

}  // namespace

const model::LlamaOps& CudaLlamaOps() { return kCudaOps; }

}  // namespace strun::kernels

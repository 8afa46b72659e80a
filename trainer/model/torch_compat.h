// model/torch_compat.h: every difference between Debian's libtorch 1.13 (CPU, CI) and libtorch
// 2.x (the GPU host) that trainer code must paper over, in one place.
//
// Add new differences here rather than scattering TORCH_VERSION_MAJOR checks through the code.
#pragma once

#include <ATen/ATen.h>
#include <torch/version.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if TORCH_VERSION_MAJOR >= 2
// 2.x: the collectives live on c10d::Backend (CommBackend below); nothing else here declares it
// when neither the gloo nor the NCCL header is included.
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

// gloo: Debian's libtorch-dev has its headers (libgloo-dev); a pip wheel's libtorch may not.
#if __has_include(<gloo/context.h>)
#define STRUN_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

// NCCL: only where the build asked for it (the GPU host) and the header exists.
#if defined(STRUN_WITH_NCCL) && __has_include(<nccl.h>)
#define STRUN_HAVE_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cmath>
#include <limits>

namespace strun::compat {

// ---- model: attention ------------------------------------------------------------------------

// Causal softmax(q k^T / sqrt(d)) v computed directly: the reference the tests compare against and
// what 1.13 uses (it has no public scaled_dot_product_attention). q, k, v: [B, H, S, D], the same
// number of heads. Low-precision inputs get their softmax in fp32, as the fused kernels do.
inline at::Tensor CausalAttentionMath(const at::Tensor& q, const at::Tensor& k,
                                      const at::Tensor& v) {
  const int64_t s_q = q.size(-2);
  const int64_t s_k = k.size(-2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul(scale);
  const bool low_precision = q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf;
  if (low_precision) scores = scores.to(at::kFloat);
  // Query i sees keys j <= i (top-left aligned, as flash-attn's causal for equal lengths).
  at::Tensor future = at::ones({s_q, s_k}, q.options().dtype(at::kBool)).triu(1);
  scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
  at::Tensor probs = at::softmax(scores, -1).to(q.scalar_type());
  return at::matmul(probs, v);
}

// Causal attention with PyTorch's fused kernels (flash, cuDNN, memory-efficient) where the
// libtorch has them. Same contract as CausalAttentionMath.
inline at::Tensor CausalAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                          /*is_causal=*/true);
#else
  return CausalAttentionMath(q, k, v);
#endif
}

inline constexpr bool kHasFusedAttention = TORCH_VERSION_MAJOR >= 2;

// ---- c10d (torch.distributed's C++ API) ------------------------------------------------------

// 1.13: ProcessGroupGloo/NCCL derive from c10d::ProcessGroup and carry the collectives.
// 2.x:  they derive from c10d::Backend (ProcessGroup became a dispatcher over backends); the
//       collectives have the same signatures on the Backend, so we call the backend directly.
#if TORCH_VERSION_MAJOR >= 2
using CommBackend = ::c10d::Backend;
#else
using CommBackend = ::c10d::ProcessGroup;
#endif

}  // namespace strun::compat

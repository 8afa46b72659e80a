// kernels/classifier.h: the loss side of the fused classifier (like llm.c's fused_classifier):
// per row of bf16 logits, the fp32 cross entropy against the label and, written over the logits
// in place, its gradient, so that fp32 logits never exist.
//   logits: [rows, ld] bf16, ld >= vocab (ld a multiple of 8: the GEMM's padded width); columns
//           >= vocab are padding: left out of the softmax, their gradient written as 0
//   labels: [rows] int64 in [0, vocab) (a label outside gives a NaN loss)
//   grad_weight: [rows] fp32, dloss/dloss_row (e.g. mask / number of unmasked tokens)
//   losses: [rows] fp32 = logsumexp(logits[row, :vocab]) - logits[row, label]
//   logits (out): grad_weight[row] * (softmax(logits[row, :vocab]) - onehot(label)), bf16
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strun::kernels {

cudaError_t SoftmaxCrossEntropyInPlace(__nv_bfloat16* logits, int64_t rows, int64_t ld,
                                       int64_t vocab, const int64_t* labels,
                                       const float* grad_weight, float* losses,
                                       cudaStream_t stream);

}  // namespace strun::kernels

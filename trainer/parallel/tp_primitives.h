// parallel/tp_primitives.h: the differentiable collectives of tensor parallelism, as nanotron's
// tensor_parallel/distributed_differentiable_primitives.py (and Megatron's mappings), as
// torch::autograd::Functions over a CommGroup (process_grid_groups.h).
//
// Activations are sequence-first, [S, B, hidden] as nanotron's Llama ("high TP with low batch
// size"), so the sequence dimension of sequence parallelism (tp_mode REDUCE_SCATTER) is dim 0.
// Each function keeps its group alive until its backward ran. With a group of one rank every
// function is the identity in both directions.
#pragma once

#include <ATen/core/Tensor.h>

#include "parallel/process_grid_groups.h"

namespace strun::parallel {

// nanotron's TensorParallelLinearMode (parallelism.tp_mode). The trainer maps
// config::TensorParallelLinearMode onto it (kept separate so this library does not depend on the
// config parser).
//   kAllReduce:     activations between TP regions are replicated on every TP rank.
//   kReduceScatter: they are sharded along the sequence (dim 0): sequence parallelism.
enum class TpMode { kAllReduce, kReduceScatter };

// Identity forward; all-reduce (sum) of the gradient backward. Enters a TP region whose input is
// replicated (nanotron's differentiable_identity, Megatron's copy_to_tensor_model_parallel_region).
at::Tensor CopyToTpRegion(const at::Tensor& x, const CommGroupPtr& group);

// All-reduce (sum) forward; identity backward. Leaves a TP region with partial sums
// (differentiable_all_reduce_sum, reduce_from_tensor_model_parallel_region). Returns a new tensor;
// x is left alone.
at::Tensor ReduceFromTpRegion(const at::Tensor& x, const CommGroupPtr& group);

// All-gather along dim 0 ([S/tp, ...] -> [S, ...], rank order) forward; reduce-scatter (sum) of
// the gradient backward (differentiable_all_gather).
at::Tensor AllGatherSequence(const at::Tensor& x, const CommGroupPtr& group);

// Reduce-scatter (sum) along dim 0 ([S, ...] -> [S/tp, ...], this rank's block) forward;
// all-gather of the gradient backward (differentiable_reduce_scatter_sum). S must divide by tp.
at::Tensor ReduceScatterSequence(const at::Tensor& x, const CommGroupPtr& group);

// All-gather along the last dim ([..., n/tp] -> [..., n], rank order) forward; this rank's slice of
// the gradient backward (gather_from_tensor_model_parallel_region: unsharded logits).
at::Tensor GatherLastDim(const at::Tensor& x, const CommGroupPtr& group);

// This rank's slice of the last dim forward; all-gather of the gradient backward
// (scatter_to_tensor_model_parallel_region). The last dim must divide by tp.
at::Tensor SplitLastDim(const at::Tensor& x, const CommGroupPtr& group);

// ---- blocking, non-differentiable helpers (the linear layers' building blocks)
// -------------------

// [size * x.size(0), ...]: the members' x concatenated along dim 0.
at::Tensor AllGatherDim0(const at::Tensor& x, CommGroup& group);
// [x.size(0) / size, ...]: this rank's dim-0 block of the sum over members.
at::Tensor ReduceScatterDim0(const at::Tensor& x, CommGroup& group);

}  // namespace strun::parallel

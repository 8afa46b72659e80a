// parallel/tp_linear.h: nanotron's TensorParallelColumnLinear and TensorParallelRowLinear
// (tensor_parallel/nn.py, functional.py) as functions of the activations and the rank's weight
// shard. The layers own no parameters: the model keeps its shards (tp_linear_sharding.h says which
// rows or columns of the full weight they are).
//
// Shapes, sequence-first as nanotron's Llama ([S, B, features]; any leading dims work):
//                       input                      weight shard      output
//   column, ALL_REDUCE  [S, B, in]  (replicated)   [out/tp, in]      [S, B, out/tp]
//   column, RS          [S/tp, B, in] (seq shard)  [out/tp, in]      [S, B, out/tp]
//   row,    ALL_REDUCE  [S, B, in/tp]              [out, in/tp]      [S, B, out] (replicated)
//   row,    RS          [S, B, in/tp]              [out, in/tp]      [S/tp, B, out] (seq shard)
// Column: input enters the TP region (identity / all-gather forward; all-reduce / reduce-scatter
// of its gradient backward). Row: partial products leave it (all-reduce / reduce-scatter).
//
// async_communication (parallelism.tp_linear_async_communication) overlaps communication with the
// GEMMs as nanotron's _ColumnLinearAsyncCommunication / _RowLinearAsyncCommunication:
//   column, RS forward: the all-gather of the input runs while this rank's own sequence block is
//     multiplied; the other blocks follow. Backward (both modes): the input gradient's all-reduce
//     or reduce-scatter runs while the weight gradient is computed.
//   row (RS only, as nanotron; ALL_REDUCE + async is an error): backward all-gathers the output
//     gradient while this rank's block of the input gradient is computed. nanotron 5f8a52b0
//     all-gathers each rank's grad_output @ W_rank there, which mixes other ranks' weight shards
//     into the input gradient; this follows later nanotron: total_grad_output @ W_rank.
// Results equal the synchronous path's up to fp32 summation order.
#pragma once

#include <ATen/core/Tensor.h>

#include "parallel/process_grid_groups.h"
#include "parallel/tp_primitives.h"
#include "strun/result.h"

namespace strun::parallel {

struct TpLinearOptions {
  TpMode mode = TpMode::kAllReduce;
  bool async_communication = false;
};

class ColumnParallelLinear {
 public:
  // in_features, out_features: the unsharded sizes; out_features must divide by the group size.
  static Result<ColumnParallelLinear> Create(int64_t in_features, int64_t out_features,
                                             CommGroupPtr group, TpLinearOptions options);

  // weight: [out/tp, in]; bias: [out/tp] or undefined.
  at::Tensor Forward(const at::Tensor& x, const at::Tensor& weight,
                     const at::Tensor& bias = {}) const;

  int64_t in_features() const { return in_; }
  int64_t local_out_features() const { return out_ / group_->size(); }
  const TpLinearOptions& options() const { return options_; }

 private:
  ColumnParallelLinear(int64_t in, int64_t out, CommGroupPtr group, TpLinearOptions options)
      : in_(in), out_(out), group_(std::move(group)), options_(options) {}
  int64_t in_, out_;
  CommGroupPtr group_;
  TpLinearOptions options_;
};

class RowParallelLinear {
 public:
  // in_features must divide by the group size. async_communication needs kReduceScatter.
  static Result<RowParallelLinear> Create(int64_t in_features, int64_t out_features,
                                          CommGroupPtr group, TpLinearOptions options);

  // weight: [out, in/tp]. bias: [out], given on TP rank 0 only (nanotron: the bias is not
  // sharded and lives on rank 0, added once before the reduction); undefined elsewhere.
  at::Tensor Forward(const at::Tensor& x, const at::Tensor& weight,
                     const at::Tensor& bias = {}) const;

  int64_t local_in_features() const { return in_ / group_->size(); }
  int64_t out_features() const { return out_; }
  const TpLinearOptions& options() const { return options_; }

 private:
  RowParallelLinear(int64_t in, int64_t out, CommGroupPtr group, TpLinearOptions options)
      : in_(in), out_(out), group_(std::move(group)), options_(options) {}
  int64_t in_, out_;
  CommGroupPtr group_;
  TpLinearOptions options_;
};

}  // namespace strun::parallel

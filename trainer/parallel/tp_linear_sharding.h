// parallel/tp_linear_sharding.h: which part of a full (unsharded) weight a TP rank holds, after
// nanotron's SplitConfig (parallel/sharded_parameters.py): pure functions for loading, saving and
// resharding checkpoints between tp sizes.
//
// A weight is split along one dim. With contiguous chunks (fused projections), each chunk is split
// on its own and the rank's shard is its slice of every chunk, concatenated in chunk order:
//   qkv_proj [(nq + 2 nkv) d, hidden], chunks (nq d, nkv d, nkv d): rank r holds
//     [q rows r*nq*d/tp ..) ++ [k rows ..) ++ [v rows ..), each a 1/tp slice of q, of k, of v.
//   gate_up_proj [2 I, hidden], chunks (I, I): rank r holds its slice of gate, then of up.
// Column-parallel weights and the vocabulary-parallel embedding split dim 0 (rows), row-parallel
// weights dim 1 (columns). Norms are replicated.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string_view>
#include <vector>

#include "strun/result.h"

namespace strun::parallel {

struct ShardSpec {
  int64_t dim = 0;
  std::vector<int64_t> chunks;  // sizes along `dim`, summing to its full size; empty: one chunk
  bool operator==(const ShardSpec&) const = default;
};

inline ShardSpec ColumnShardSpec() { return {0, {}}; }  // also the vocabulary embedding / lm_head
inline ShardSpec RowShardSpec() { return {1, {}}; }
inline ShardSpec QkvShardSpec(int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim) {
  return {0, {num_q_heads * head_dim, num_kv_heads * head_dim, num_kv_heads * head_dim}};
}
inline ShardSpec GateUpShardSpec(int64_t intermediate_size) {
  return {0, {intermediate_size, intermediate_size}};
}

// One contiguous piece of a shard: rows [local_start, +length) of the shard are rows
// [global_start, +length) of the full tensor (along the spec's dim).
struct ShardSlice {
  int64_t local_start = 0;
  int64_t global_start = 0;
  int64_t length = 0;
  bool operator==(const ShardSlice&) const = default;
};

// The pieces of rank `rank`'s shard of a dim of `full_size`. Fails when the chunks do not sum to
// full_size or a chunk does not divide by `size` (nanotron asserts the same), naming them.
Result<std::vector<ShardSlice>> ShardSlices(int64_t full_size, const ShardSpec& spec, int rank,
                                            int size);

// The rank's shard of `full` (a new contiguous tensor).
Result<at::Tensor> ShardTensor(const at::Tensor& full, const ShardSpec& spec, int rank, int size);

// The full tensor from every rank's shard (index = TP rank); inverse of ShardTensor.
Result<at::Tensor> UnshardTensor(const std::vector<at::Tensor>& shards, const ShardSpec& spec);

// The attention/MLP sizes the Llama's shard specs depend on.
struct LlamaShardShape {
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
};

// The spec of a Llama parameter by nanotron's name (model/llama.h lists them); std::nullopt for
// the replicated ones (norms). Unknown names: an error naming them.
Result<std::optional<ShardSpec>> LlamaParameterShardSpec(std::string_view name,
                                                         const LlamaShardShape& shape);

}  // namespace strun::parallel

// checkpoint/weight_sharding.h: which Llama parameters nanotron shards over tp, and the slices
// metadata their model files carry. Torch-free.
//
// A TP-sharded tensor is split along one dimension, per contiguous chunk where it fuses several
// projections (qkv_proj: q, k, v rows; gate_up_proj: gate, up rows), so that each TP rank holds
// its share of every chunk. Its file (checkpoint_paths.h) records which rows of the full tensor
// the shard is, as nanotron's "local_global_slices_pairs" and "unsharded_shape".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace strun::train {

// How a TP-sharded tensor is split (the ones that carry slices metadata and the rank suffix).
struct ShardInfo {
  int split_dim = 0;
  std::vector<int64_t> contiguous_chunks;  // empty: one chunk
};

// nanotron's sharding of a Llama parameter by name; nullopt for replicated ones (norms).
std::optional<ShardInfo> NanotronShardInfo(const std::string& name, int64_t q_rows, int64_t kv_rows,
                                           int64_t intermediate);

// The safetensors metadata of TP rank `tp_rank`'s shard (of shape `shape`) of a sharded tensor:
// nanotron's local/global slices, the unsharded shape and the checkpoint version.
std::map<std::string, std::string> ShardedTensorMetadata(const ShardInfo& info,
                                                         const std::vector<int64_t>& shape,
                                                         int tp_rank = 0, int tp = 1);

}  // namespace strun::train

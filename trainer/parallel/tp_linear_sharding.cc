#include "parallel/tp_linear_sharding.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <numeric>
#include <string>

namespace strun::parallel {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Result<std::vector<ShardSlice>> ShardSlices(int64_t full_size, const ShardSpec& spec, int rank,
                                            int size) {
  if (size < 1 || rank < 0 || rank >= size) {
    return MakeError(fmt::format("shard rank {} out of range for tp={}", rank, size));
  }
  const std::vector<int64_t> chunks =
      spec.chunks.empty() ? std::vector<int64_t>{full_size} : spec.chunks;
  const int64_t total = std::accumulate(chunks.begin(), chunks.end(), int64_t{0});
  if (total != full_size) {
    return MakeError(fmt::format("shard chunks sum to {} but the dim {} has {} elements", total,
                                 spec.dim, full_size));
  }
  std::vector<ShardSlice> slices;
  int64_t global = 0, local = 0;
  for (int64_t chunk : chunks) {
    if (chunk % size != 0) {
      return MakeError(fmt::format(
          "a chunk of {} elements along dim {} does not split over tp={} (full size {})", chunk,
          spec.dim, size, full_size));
    }
    const int64_t n = chunk / size;
    slices.push_back({local, global + rank * n, n});
    local += n;
    global += chunk;
  }
  return slices;
}

Result<at::Tensor> ShardTensor(const at::Tensor& full, const ShardSpec& spec, int rank, int size) {
  if (spec.dim < 0 || spec.dim >= full.dim()) {
    return MakeError(fmt::format("cannot shard dim {} of a {}-d tensor", spec.dim, full.dim()));
  }
  auto slices = ShardSlices(full.size(spec.dim), spec, rank, size);
  if (!slices) return slices.error();
  std::vector<at::Tensor> parts;
  for (const ShardSlice& s : *slices)
    parts.push_back(full.narrow(spec.dim, s.global_start, s.length));
  return at::cat(parts, spec.dim).contiguous();
}

Result<at::Tensor> UnshardTensor(const std::vector<at::Tensor>& shards, const ShardSpec& spec) {
  if (shards.empty()) return MakeError("no shards to unshard");
  const int size = static_cast<int>(shards.size());
  const at::Tensor& first = shards.front();
  if (spec.dim < 0 || spec.dim >= first.dim()) {
    return MakeError(fmt::format("cannot unshard dim {} of a {}-d tensor", spec.dim, first.dim()));
  }
  std::vector<int64_t> shape = first.sizes().vec();
  shape[spec.dim] *= size;
  at::Tensor full = at::empty(shape, first.options());
  for (int r = 0; r < size; ++r) {
    if (shards[r].sizes() != first.sizes()) {
      return MakeError(fmt::format("shard {} has shape [{}], shard 0 [{}]", r,
                                   fmt::join(shards[r].sizes(), ", "),
                                   fmt::join(first.sizes(), ", ")));
    }
    auto slices = ShardSlices(shape[spec.dim], spec, r, size);
    if (!slices) return slices.error();
    for (const ShardSlice& s : *slices) {
      full.narrow(spec.dim, s.global_start, s.length)
          .copy_(shards[r].narrow(spec.dim, s.local_start, s.length));
    }
  }
  return full;
}

Result<std::optional<ShardSpec>> LlamaParameterShardSpec(std::string_view name,
                                                         const LlamaShardShape& shape) {
  if (EndsWith(name, "attn.qkv_proj.weight")) {
    return std::optional<ShardSpec>(
        QkvShardSpec(shape.num_attention_heads, shape.num_key_value_heads, shape.head_dim));
  }
  if (EndsWith(name, "mlp.gate_up_proj.weight")) {
    return std::optional<ShardSpec>(GateUpShardSpec(shape.intermediate_size));
  }
  if (EndsWith(name, "attn.o_proj.weight") || EndsWith(name, "mlp.down_proj.weight")) {
    return std::optional<ShardSpec>(RowShardSpec());
  }
  if (EndsWith(name, "token_embedding.weight") || name == "model.lm_head.pp_block.weight") {
    return std::optional<ShardSpec>(ColumnShardSpec());
  }
  if (EndsWith(name, "layernorm.weight") || name == "model.final_layer_norm.pp_block.weight") {
    return std::optional<ShardSpec>();
  }
  return MakeError("no tensor-parallel layout for parameter '" + std::string(name) + "'");
}

}  // namespace strun::parallel

// weight_sharding.h: nanotron's TP sharding of Llama parameters and its slices metadata.
#include "checkpoint/weight_sharding.h"

#include "checkpoint/checkpoint_metadata.h"

namespace strun::train {

namespace {

std::string SliceStr(std::optional<int64_t> start, std::optional<int64_t> stop) {
  auto s = [](std::optional<int64_t> v) { return v ? std::to_string(*v) : std::string("None"); };
  return s(start) + "," + s(stop) + ",None";
}

}  // namespace

std::optional<ShardInfo> NanotronShardInfo(const std::string& name, int64_t q_rows, int64_t kv_rows,
                                           int64_t intermediate) {
  auto ends = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends("attn.qkv_proj.weight")) return ShardInfo{0, {q_rows, kv_rows, kv_rows}};
  if (ends("mlp.gate_up_proj.weight")) return ShardInfo{0, {intermediate, intermediate}};
  if (ends("attn.o_proj.weight") || ends("mlp.down_proj.weight")) return ShardInfo{1, {}};
  if (ends("token_embedding.weight") || ends("lm_head.pp_block.weight")) return ShardInfo{0, {}};
  return std::nullopt;
}

std::map<std::string, std::string> ShardedTensorMetadata(const ShardInfo& info,
                                                         const std::vector<int64_t>& local_shape,
                                                         int tp_rank, int tp) {
  // nanotron's create_sharded_parameter_from_config: per chunk, the shard's rows (local) and the
  // full tensor's rows they are (global); at tp = 1 each chunk maps to itself.
  std::vector<int64_t> shape = local_shape;
  shape[static_cast<size_t>(info.split_dim)] *= tp;  // the unsharded shape
  std::vector<std::string> pairs;
  auto slices = [&](std::optional<int64_t> a, std::optional<int64_t> b, bool whole) {
    std::string s;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (d) s += "|";
      s += (static_cast<int>(d) == info.split_dim && !whole) ? SliceStr(a, b)
                                                             : SliceStr(std::nullopt, std::nullopt);
    }
    return s;
  };
  if (info.contiguous_chunks.empty()) {
    const int64_t n = shape[info.split_dim] / tp;
    pairs.push_back(slices(std::nullopt, std::nullopt, true) + "#" +
                    slices(tp_rank * n, (tp_rank + 1) * n, false));
  } else {
    int64_t off = 0, local = 0;
    for (int64_t c : info.contiguous_chunks) {
      const int64_t n = c / tp;
      pairs.push_back(slices(local, local + n, false) + "#" +
                      slices(off + tp_rank * n, off + (tp_rank + 1) * n, false));
      off += c;
      local += n;
    }
  }
  std::string joined;
  for (std::size_t i = 0; i < pairs.size(); ++i) joined += (i ? ";" : "") + pairs[i];
  std::string unsharded = "(";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    unsharded += (d ? ", " : "") + std::to_string(shape[d]);
  }
  unsharded += shape.size() == 1 ? ",)" : ")";
  return {{"version", kCheckpointVersion},
          {"local_global_slices_pairs", joined},
          {"unsharded_shape", unsharded}};
}

}  // namespace strun::train

#include "checkpoint/reshard.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "checkpoint/checkpoint_manifest.h"
#include "checkpoint/safetensors.h"
#include "optim/flat_buffer.h"
#include "parallel/tp_linear_sharding.h"

namespace strun::train {
namespace fs = std::filesystem;

namespace {

std::string ShapeStr(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t NumelOf(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::optional<parallel::ShardSpec> SpecOf(const std::string& name, const FusedShapes& f) {
  auto info = NanotronShardInfo(name, f.q_rows, f.kv_rows, f.intermediate);
  if (!info) return std::nullopt;
  return parallel::ShardSpec{info->split_dim, info->contiguous_chunks};
}

// The safetensors metadata of `path` from its header alone (the tensors are not read), to choose
// the files a rank needs before reading them.
Result<std::map<std::string, std::string>> HeaderMetadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(path + ": cannot open");
  unsigned char len[8];
  if (!in.read(reinterpret_cast<char*>(len), 8)) {
    return MakeError(path + ": not a safetensors file (shorter than 8 bytes)");
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec || n > size - 8) {
    return MakeError(path + ": header length " + std::to_string(n) +
                     " runs past the end of the file (truncated or not safetensors)");
  }
  std::string header(n, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(n))) {
    return MakeError(path + ": cannot read its header");
  }
  std::map<std::string, std::string> out;
  try {
    const auto j = nlohmann::json::parse(header);
    if (j.contains("__metadata__")) {
      for (auto m = j["__metadata__"].begin(); m != j["__metadata__"].end(); ++m) {
        out[m.key()] = m->get<std::string>();
      }
    }
  } catch (const std::exception& e) {
    return MakeError(path + ": header is not valid safetensors JSON: " + e.what());
  }
  return out;
}

}  // namespace

OptimizerFileLayout DescribeOptimizerFile(const std::vector<ParameterShape>& params, bool zero,
                                          int dp_rank, int dp, int tp_rank, int tp, int pp_rank,
                                          int pp) {
  // optim::FlatLayout itself (over shape-only meta tensors), so that this is the trainer's layout.
  optim::NamedTensors shapes;
  for (const auto& p : params) {
    shapes.emplace_back(p.name, at::empty(p.shape, at::TensorOptions().device(at::kMeta)));
  }
  const optim::FlatLayout flat(shapes, zero ? dp : 1);
  OptimizerFileLayout l;
  l.pp_rank = pp_rank;
  l.pp = pp;
  l.dp_rank = zero ? dp_rank : 0;
  l.dp = dp;
  l.tp_rank = tp_rank;
  l.tp = tp;
  l.zero = zero;
  l.numel = flat.numel();
  std::tie(l.begin, l.end) =
      zero ? flat.ShardRange(dp_rank, dp) : std::pair<int64_t, int64_t>(0, flat.numel());
  for (const auto& s : flat.segments()) l.segments.push_back({s.name, s.shape, s.offset});
  return l;
}

Result<std::map<std::string, at::Tensor>> SplitFlat(const at::Tensor& flat,
                                                    const OptimizerFileLayout& layout) {
  if (flat.dim() != 1 || flat.numel() != layout.numel) {
    return MakeError("flat buffer of " + std::to_string(flat.numel()) +
                     " elements, its layout has " + std::to_string(layout.numel));
  }
  std::map<std::string, at::Tensor> out;
  for (const auto& s : layout.segments) {
    out[s.name] = flat.narrow(0, s.offset, NumelOf(s.shape)).view(s.shape);
  }
  return out;
}

Result<at::Tensor> JoinFlat(const std::map<std::string, at::Tensor>& tensors,
                            const OptimizerFileLayout& layout) {
  at::Tensor flat = at::zeros({layout.numel}, at::kFloat);
  for (const auto& s : layout.segments) {
    auto it = tensors.find(s.name);
    if (it == tensors.end()) return MakeError("no tensor for parameter " + s.name);
    if (it->second.sizes().vec() != s.shape) {
      return MakeError("parameter " + s.name + ": tensor of shape " +
                       ShapeStr(it->second.sizes().vec()) + ", the layout has " +
                       ShapeStr(s.shape));
    }
    flat.narrow(0, s.offset, NumelOf(s.shape)).copy_(it->second.reshape({-1}));
  }
  return flat;
}

Result<FullOptimizerState> ReadFullOptimizerState(
    const std::string& step_dir, const SavedLayout& saved, const FusedShapes& fused,
    const std::function<Status(const std::string&)>& verify, const std::set<std::string>& needed) {
  auto wanted = [&](const std::string& param) { return needed.empty() || needed.count(param); };
  bool first_file = true;
  const int pp = static_cast<int>(saved.pp), tp = static_cast<int>(saved.tp);
  const int dp = static_cast<int>(saved.dp), files_per_rank = saved.zero ? dp : 1;
  FullOptimizerState full;
  std::set<std::string> states;  // "flat.*" names, the same in every file
  // stage[pp][tp]: its parameters' shards per state.
  std::vector<std::vector<std::map<std::string, std::map<std::string, at::Tensor>>>> shards(
      pp, std::vector<std::map<std::string, std::map<std::string, at::Tensor>>>(tp));
  for (int r = 0; r < pp; ++r) {
    // Stages without a parameter this rank needs are skipped unread (their TP ranks hold the same
    // parameters, so TP rank 0's first file tells).
    if (!needed.empty()) {
      const std::string file =
          (fs::path(step_dir) / "optimizer" / OptimizerFileName(saved.zero, 0, dp, 0, tp, r, pp))
              .string();
      if (fs::exists(file)) {
        auto meta = HeaderMetadata(file);
        if (!meta) return meta.error();
        auto it = meta->find(kFlatLayoutKey);
        if (it != meta->end()) {
          auto layout = ParseFlatLayout(it->second, file);
          if (!layout) return layout.error();
          bool any = false;
          for (const auto& seg : layout->segments) any = any || wanted(seg.name);
          if (!any) continue;
        }
      }
    }
    for (int t = 0; t < tp; ++t) {
      OptimizerFileLayout first;
      std::map<std::string, std::vector<at::Tensor>> pieces;
      for (int d = 0; d < files_per_rank; ++d) {
        const std::string rel = "optimizer/" + OptimizerFileName(saved.zero, d, dp, t, tp, r, pp);
        const std::string file = (fs::path(step_dir) / rel).string();
        if (!fs::exists(file)) {
          return MakeError("checkpoint " + step_dir + " has no " + file +
                           " (its checkpoint_metadata.json says " + SavedLayoutString(saved) +
                           "); the checkpoint is incomplete: resume from an earlier one");
        }
        if (auto s = verify(rel); !s) return s.error();
        auto sf = SafetensorsFile::Read(file);
        if (!sf) return sf.error();
        auto meta = sf->metadata().find(kFlatLayoutKey);
        if (meta == sf->metadata().end()) {
          return MakeError("checkpoint " + step_dir + " was written by an older strun-train: " +
                           file + " does not describe its flat layout ('" + kFlatLayoutKey +
                           "'), so its optimizer states cannot be resharded; resume it at its "
                           "own layout (" +
                           SavedLayoutString(saved) + ") or set checkpoints.load_optimizer: false");
        }
        auto layout = ParseFlatLayout(meta->second, file);
        if (!layout) return layout.error();
        if (layout->pp_rank != r || layout->pp != pp || layout->tp_rank != t || layout->tp != tp ||
            layout->dp != dp || layout->zero != saved.zero ||
            (saved.zero && layout->dp_rank != d)) {
          return MakeError(file + ": its '" + kFlatLayoutKey + "' describes another rank (" +
                           meta->second.substr(0, 120) +
                           "...) than its name; resume from an intact checkpoint");
        }
        if (d == 0) {
          first = *layout;
        } else if (layout->numel != first.numel ||
                   layout->segments.size() != first.segments.size()) {
          return MakeError(file + ": its flat layout differs from that of DP rank 0's file (" +
                           std::to_string(layout->numel) + " vs " + std::to_string(first.numel) +
                           " elements); resume from an intact checkpoint");
        }
        const int64_t expected_begin = saved.zero ? d * (first.numel / dp) : 0;
        const int64_t expected_end = saved.zero ? expected_begin + first.numel / dp : first.numel;
        if (layout->begin != expected_begin || layout->end != expected_end) {
          return MakeError(file + ": holds [" + std::to_string(layout->begin) + ", " +
                           std::to_string(layout->end) + ") of its flat buffer, expected [" +
                           std::to_string(expected_begin) + ", " + std::to_string(expected_end) +
                           "); resume from an intact checkpoint");
        }
        auto tensors = TensorsOfSafetensors(*sf, file);
        if (!tensors) return tensors.error();
        std::set<std::string> here;
        for (auto& [name, tensor] : *tensors) {
          if (at::isFloatingType(tensor.scalar_type()) &&
              !at::isfinite(tensor).all().item<bool>()) {
            return MakeError("checkpoint file " + file + ": tensor '" + name +
                             "' holds NaN or infinite values; " +
                             EarlierCheckpointAdvice(step_dir));
          }
          if (name.rfind("flat.", 0) != 0) {
            if (first_file) full.scalars.emplace_back(name, tensor);
            continue;
          }
          if (tensor.dim() != 1 || tensor.numel() != layout->end - layout->begin) {
            return MakeError(file + ": tensor " + name + " has shape " +
                             ShapeStr(tensor.sizes().vec()) + " but the file's flat layout holds " +
                             std::to_string(layout->end - layout->begin) +
                             " elements; resume from an intact checkpoint");
          }
          here.insert(name);
          pieces[name].push_back(tensor.to(at::kFloat));
        }
        if (first_file) {
          first_file = false;
          states = here;
          auto step = sf->metadata().find("step");
          try {
            full.step = step == sf->metadata().end() ? 0 : std::stoll(step->second);
          } catch (const std::exception&) {
            return MakeError(file + ": metadata step '" + step->second + "' is not an integer");
          }
        } else if (here != states) {
          return MakeError(file + ": holds other optimizer states than " +
                           OptimizerFileName(saved.zero, 0, dp, 0, tp, 0, pp) +
                           "; resume from an intact checkpoint");
        }
      }
      for (auto& [name, list] : pieces) {
        auto split = SplitFlat(at::cat(list), first);
        if (!split)
          return MakeError(step_dir + ": optimizer state " + name + ": " + split.error().message);
        for (auto& [param, tensor] : *split) {
          // A view would keep the whole flat buffer alive: copies of the wanted ones only.
          if (wanted(param)) shards[r][t][name][param] = tensor.clone();
        }
      }
    }
  }
  // Each parameter from the first stage that holds it, merged over tp.
  for (const auto& state : states) {
    auto& out = full.flat[state];
    for (int r = 0; r < pp; ++r) {
      for (const auto& [param, first_shard] : shards[r][0][state]) {
        if (out.count(param)) continue;  // a tied copy on a later stage
        std::vector<at::Tensor> per_tp;
        for (int t = 0; t < tp; ++t) {
          auto it = shards[r][t][state].find(param);
          if (it == shards[r][t][state].end()) {
            return MakeError("checkpoint " + step_dir + ": optimizer state " + state +
                             " of parameter " + param + " is in TP rank 0's file of stage " +
                             std::to_string(r) + " but not in TP rank " + std::to_string(t) +
                             "'s; resume from an intact checkpoint");
          }
          per_tp.push_back(it->second);
        }
        auto spec = SpecOf(param, fused);
        if (!spec) {
          out[param] = per_tp[0].clone();
          continue;
        }
        auto merged = parallel::UnshardTensor(per_tp, *spec);
        if (!merged) {
          return MakeError("checkpoint " + step_dir + ": optimizer state " + state + " of " +
                           param + ": " + merged.error().message);
        }
        out[param] = *merged;
      }
    }
  }
  return full;
}

Result<NamedTensorList> ShardOptimizerState(const FullOptimizerState& full,
                                            const std::vector<ParameterShape>& params,
                                            const OptimizerFileLayout& target,
                                            const FusedShapes& fused) {
  NamedTensorList out = full.scalars;
  for (const auto& [state, by_param] : full.flat) {
    std::map<std::string, at::Tensor> mine;
    for (const auto& p : params) {
      auto it = by_param.find(p.name);
      if (it == by_param.end()) {
        return MakeError("the checkpoint has no optimizer state " + state + " for parameter " +
                         p.name + "; was it written for a different model config?");
      }
      at::Tensor t = it->second;
      if (auto spec = SpecOf(p.name, fused)) {
        auto shard = parallel::ShardTensor(t, *spec, target.tp_rank, target.tp);
        if (!shard) {
          return MakeError("optimizer state " + state + " of " + p.name + " (full shape " +
                           ShapeStr(t.sizes().vec()) + ") at tp=" + std::to_string(target.tp) +
                           ": " + shard.error().message);
        }
        t = *shard;
      }
      if (t.sizes().vec() != p.shape) {
        return MakeError("optimizer state " + state + " of " + p.name + ": the checkpoint's is " +
                         ShapeStr(t.sizes().vec()) + " at tp=" + std::to_string(target.tp) +
                         " but this run's model holds " + ShapeStr(p.shape) +
                         "; was it written for a different model config?");
      }
      mine[p.name] = t;
    }
    auto flat = JoinFlat(mine, target);
    if (!flat) return MakeError("optimizer state " + state + ": " + flat.error().message);
    out.emplace_back(state, flat->narrow(0, target.begin, target.end - target.begin).clone());
  }
  return out;
}

}  // namespace strun::train

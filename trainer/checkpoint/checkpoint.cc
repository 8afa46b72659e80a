#include "checkpoint/checkpoint.h"

#include <ATen/ATen.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "checkpoint/checkpoint_manifest.h"
#include "checkpoint/fault_injection.h"
#include "checkpoint/file_sync.h"
#include "checkpoint/reshard.h"
#include "checkpoint/safetensors.h"
#include "parallel/tp_linear_sharding.h"

namespace strun::train {
namespace fs = std::filesystem;

namespace {

Result<std::string> SafetensorsDtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return std::string("F32");
    case at::kBFloat16:
      return std::string("BF16");
    case at::kHalf:
      return std::string("F16");
    case at::kDouble:
      return std::string("F64");
    case at::kLong:
      return std::string("I64");
    case at::kInt:
      return std::string("I32");
    case at::kShort:
      return std::string("I16");
    case at::kChar:
      return std::string("I8");
    case at::kByte:
      return std::string("U8");
    case at::kBool:
      return std::string("BOOL");
    default:
      return MakeError(std::string("no safetensors dtype for ") + c10::toString(t));
  }
}

Result<at::ScalarType> ScalarTypeOf(const std::string& dtype) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"F32", at::kFloat}, {"BF16", at::kBFloat16}, {"F16", at::kHalf},  {"F64", at::kDouble},
      {"I64", at::kLong},  {"I32", at::kInt},       {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},   {"BOOL", at::kBool}};
  auto it = kTypes.find(dtype);
  if (it == kTypes.end()) return MakeError("unsupported safetensors dtype " + dtype);
  return it->second;
}

std::string SliceStr(std::optional<int64_t> start, std::optional<int64_t> stop) {
  auto s = [](std::optional<int64_t> v) { return v ? std::to_string(*v) : std::string("None"); };
  return s(start) + "," + s(stop) + ",None";
}

std::string OfStr(int rank, int size) {
  return std::to_string(rank) + "-of-" + std::to_string(size);
}

std::string LayoutStr(const SavedLayout& l) {
  return "dp=" + std::to_string(l.dp) + " tp=" + std::to_string(l.tp) +
         " pp=" + std::to_string(l.pp) + " zero_stage=" + (l.zero ? "1" : "0");
}

// Which tensors of state.model this rank writes: DP rank 0 of the first stage that holds a name
// (tied parameters are held by several), TP rank 0 only for replicated tensors. Collective when
// pp > 1: every rank's grid coordinates and names are gathered.
std::vector<bool> WeightsThisRankWrites(parallel::Communicator& comm, const SaveOptions& o,
                                        int dp_rank, const CheckpointState& state) {
  std::vector<bool> writes(state.model.size(), dp_rank == 0);
  for (std::size_t i = 0; i < state.model.size(); ++i) {
    const bool sharded =
        NanotronShardInfo(state.model[i].first, o.q_rows, o.kv_rows, o.intermediate).has_value();
    if (!sharded && o.tp_rank != 0) writes[i] = false;
  }
  if (o.pp <= 1) return writes;
  // Each rank's row: (pp_rank, dp_rank, tp_rank), then its names, each ended by '\n', packed into
  // int64s. A sum over ranks of rows that are zero but for one's own is a gather on any backend
  // (AllReduceSum stages host tensors through the device on NCCL; AllGather does not).
  std::string joined;
  for (const auto& [n, t] : state.model) joined += n + "\n";
  const int world = comm.size();
  at::Tensor lens = at::zeros({world}, at::kLong);
  lens[comm.rank()] = static_cast<int64_t>(joined.size());
  comm.AllReduceSum(lens);
  const int64_t coords[3] = {o.pp_rank, dp_rank, o.tp_rank};
  const int64_t width = 3 + (lens.max().item<int64_t>() + 7) / 8;  // int64s per row
  at::Tensor all = at::zeros({world, width}, at::kLong);
  char* mine = reinterpret_cast<char*>(all[comm.rank()].data_ptr<int64_t>());
  std::memcpy(mine, coords, sizeof coords);
  std::memcpy(mine + sizeof coords, joined.data(), joined.size());
  comm.AllReduceSum(all);
  std::set<std::string> held_earlier;  // names held by an earlier stage's peer of this rank
  for (int r = 0; r < world; ++r) {
    const char* base = reinterpret_cast<const char*>(all[r].data_ptr<int64_t>());
    int64_t c[3];
    std::memcpy(c, base, sizeof c);
    if (c[0] >= o.pp_rank || c[1] != 0 || c[2] != o.tp_rank) continue;
    const std::string names(base + sizeof c, static_cast<std::size_t>(lens[r].item<int64_t>()));
    for (std::size_t b = 0, e; (e = names.find('\n', b)) != std::string::npos; b = e + 1) {
      held_earlier.insert(names.substr(b, e - b));
    }
  }
  for (std::size_t i = 0; i < state.model.size(); ++i) {
    if (held_earlier.count(state.model[i].first)) writes[i] = false;
  }
  return writes;
}

nlohmann::json MetadataJson(const TrainingMetadata& m) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : m.data_stages) {
    stages.push_back({{"name", s.name},
                      {"start_training_step", s.start_training_step},
                      {"consumed_train_samples", s.consumed_train_samples}});
  }
  nlohmann::json j = {{"consumed_train_samples", m.consumed_train_samples},
                      {"last_train_step", m.last_train_step},
                      {"data_stages", stages}};
  j["last_stage_idx"] = m.last_stage_idx ? nlohmann::json(*m.last_stage_idx) : nlohmann::json();
  return j;
}

Status MkdirAll(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return MakeError("cannot create directory " + p.string() + ": " + ec.message());
  return {};
}

void MaybeInjectKill(int64_t step, const char* phase) {
  // Fault injection for tests: STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT=<step> kills this process
  // with SIGKILL half-way through writing that step's checkpoint.
  if (FaultDue("STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT", step)) {
    std::fprintf(stderr, "strun-train: fault injection: SIGKILL during checkpoint %lld (%s)\n",
                 static_cast<long long>(step), phase);
    std::fflush(stderr);
    ::kill(::getpid(), SIGKILL);
  }
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

std::string OptimizerFileName(bool zero, int dp_rank, int dp, int tp_rank, int tp, int pp_rank,
                              int pp) {
  const std::string dp_part = zero ? "_dp-" + OfStr(dp_rank, dp) : std::string();
  return "optimizer_pp-" + OfStr(pp_rank, pp) + dp_part + "_tp-" + OfStr(tp_rank, tp) +
         "_exp-0-of-1.safetensors";
}

std::string RandomFileName(int dp_rank, int dp, int tp_rank, int tp, int pp_rank, int pp) {
  return "tp-" + OfStr(tp_rank, tp) + "_dp-" + OfStr(dp_rank, dp) + "_pp-" + OfStr(pp_rank, pp) +
         ".safetensors";
}

std::string ModelWeightPath(const std::string& name, bool sharded, int tp_rank, int tp, int pp_rank,
                            int pp) {
  std::string path = "model/";
  std::size_t last = name.rfind('.');
  std::string dir = name.substr(0, last);
  std::string leaf = name.substr(last + 1);
  for (char& c : dir) c = c == '.' ? '/' : c;
  path += dir + "/model_" + leaf;
  path += sharded
              ? "_pp-rank-" + OfStr(pp_rank, pp) + "_tp-rank-" + OfStr(tp_rank, tp) + ".safetensors"
              : std::string(".safetensors");
  return path;
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

Status WriteTensorsSafetensors(const std::string& path, const NamedTensorList& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> keep;
  std::vector<TensorBytes> items;
  for (const auto& [name, t] : tensors) {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    keep.push_back(c);
    auto dtype = SafetensorsDtype(c.scalar_type());
    if (!dtype) return MakeError(path + ": tensor " + name + ": " + dtype.error().message);
    TensorBytes b;
    b.name = name;
    b.dtype = *dtype;
    b.shape = c.sizes().vec();
    b.data = c.data_ptr();
    b.nbytes = c.numel() * c.element_size();
    items.push_back(std::move(b));
  }
  return WriteSafetensors(path, items, metadata);
}

Result<NamedTensorList> TensorsOfSafetensors(const SafetensorsFile& file, const std::string& path) {
  NamedTensorList out;
  for (const auto& [name, e] : file.entries()) {
    auto st = ScalarTypeOf(e.dtype);
    if (!st) return MakeError(path + ": tensor " + name + ": " + st.error().message);
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(*st));
    std::memcpy(t.data_ptr(), file.data(e), e.nbytes);
    out.emplace_back(name, t);
  }
  return out;
}

namespace {
Result<NamedTensorList> ReadAllTensors(const std::string& path) {
  auto file = SafetensorsFile::Read(path);
  if (!file) return file.error();
  return TensorsOfSafetensors(*file, path);
}
// NaN or Inf in a saved weight or optimizer state would only make the resumed run train NaN.
Status CheckFinite(const std::string& step_dir, const std::string& path, const std::string& name,
                   const at::Tensor& t) {
  if (!at::isFloatingType(t.scalar_type()) || at::isfinite(t).all().item<bool>()) return {};
  return MakeError("checkpoint file " + path + ": tensor '" + name +
                   "' holds NaN or infinite values (the run that wrote it had diverged, or the "
                   "file was damaged); " +
                   EarlierCheckpointAdvice(step_dir));
}
}  // namespace

Result<at::Tensor> TensorFromSafetensors(const std::string& path, const std::string& name) {
  auto all = ReadAllTensors(path);
  if (!all) return all.error();
  for (auto& [n, t] : *all) {
    if (n == name) return t;
  }
  return MakeError(path + ": no tensor named '" + name + "'");
}

Status SaveCheckpoint(parallel::Communicator& comm, const SaveOptions& o,
                      const CheckpointState& state) {
  const int rank = comm.rank();
  const int world = comm.size();
  const int tp = o.tp, tp_rank = o.tp_rank;
  const int dp = o.dp > 0 ? o.dp : world;
  const int dp_rank = o.dp > 0 ? o.dp_rank : rank;
  const int pp = o.pp, pp_rank = o.pp_rank;
  // The optimizer file's layout (reshard.h): the flat buffers must be the trainer's layout of
  // state.model, or a resume at another layout would misplace them.
  std::vector<ParameterShape> shapes;
  for (const auto& [n, t] : state.model) shapes.push_back({n, t.sizes().vec()});
  const OptimizerFileLayout flat_layout = DescribeOptimizerFile(
      shapes, o.zero_sharded_optimizer, dp_rank, dp, tp_rank, tp, pp_rank, pp);
  Status layout_status;  // reported through write_all, so that every rank reaches the collectives
  for (const auto& [n, t] : state.optimizer) {
    if (n.rfind("flat.", 0) == 0 && t.numel() != flat_layout.end - flat_layout.begin) {
      layout_status =
          MakeError("checkpoint " + std::to_string(o.step) + ": optimizer tensor " + n + " has " +
                    std::to_string(t.numel()) +
                    " elements but the flat layout of this rank's parameters gives " +
                    std::to_string(flat_layout.end - flat_layout.begin) +
                    " (CheckpointState::model must list the optimizer's parameters in order)");
    }
  }
  const std::vector<bool> writes_weight = WeightsThisRankWrites(comm, o, dp_rank, state);
  const bool owner = o.shared_file_system ? rank == 0 : o.local_rank == 0;
  // Every rank must agree on the temporary directory's name.
  at::Tensor nonce = at::zeros({1}, at::kLong);
  if (rank == 0) {
    std::random_device rd;
    nonce.fill_(static_cast<int64_t>((static_cast<uint64_t>(rd()) << 20) ^ ::getpid()) &
                0xffffffffffff);
  }
  comm.Broadcast(nonce, 0);
  const fs::path root = o.checkpoints_path;
  const std::string step_name = std::to_string(o.step);
  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(nonce.item<int64_t>()));
  const fs::path tmp = root / (step_name + ".tmp-" + hex);
  const fs::path final_dir = root / step_name;

  Status status;
  if (owner) status = MkdirAll(tmp);
  comm.Barrier();
  if (!fs::is_directory(tmp)) {
    return MakeError("checkpoint directory " + tmp.string() + " is not visible from rank " +
                     std::to_string(rank) +
                     (o.shared_file_system
                          ? "; checkpoints.checkpoints_path_is_shared_file_system is true but the "
                            "path is not shared"
                          : ""));
  }
  // The files this rank wrote, relative to the step directory, with their checksums.
  ChecksumManifest manifest;
  auto write_all = [&]() -> Status {
    if (!layout_status) return layout_status;
    if (rank == 0) {
      // Not in the manifest: see checkpoint_manifest.h.
      if (auto s = WriteFileSynced((tmp / "config.yaml").string(), o.config_yaml); !s) return s;
      if (auto s = WriteFileSynced((tmp / "model_config.json").string(), o.model_config_json); !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), "model_config.json"); !s) return s;
      nlohmann::json meta = {{"version", kCheckpointVersion},
                             {"tp", tp},
                             {"dp", dp},
                             {"pp", pp},
                             {"metas", MetadataJson(state.metadata)},
                             {"custom_metas", nullptr}};
      if (auto s = WriteFileSynced((tmp / "checkpoint_metadata.json").string(), meta.dump(2)); !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), "checkpoint_metadata.json"); !s) return s;
      if (auto s = MkdirAll(tmp / "lr_scheduler"); !s) return s;
      nlohmann::json sched = {{"last_epoch", state.scheduler_step},
                              {"_step_count", state.scheduler_step + 1}};
      if (auto s =
              WriteFileSynced((tmp / "lr_scheduler" / "lr_scheduler.json").string(), sched.dump(2));
          !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), "lr_scheduler/lr_scheduler.json"); !s) return s;
    }
    // Model weights: one file per tensor, one writer each (WeightsThisRankWrites).
    if (dp_rank == 0) {
      for (std::size_t i = 0; i < state.model.size(); ++i) {
        const auto& [name, t] = state.model[i];
        if (!writes_weight[i]) continue;
        auto info = NanotronShardInfo(name, o.q_rows, o.kv_rows, o.intermediate);
        const std::string rel = ModelWeightPath(name, info.has_value(), tp_rank, tp, pp_rank, pp);
        fs::path p = tmp / rel;
        if (auto s = MkdirAll(p.parent_path()); !s) return s;
        auto meta_map = info ? ShardedTensorMetadata(*info, t.sizes().vec(), tp_rank, tp)
                             : std::map<std::string, std::string>{};
        if (auto s = WriteTensorsSafetensors(p.string(), {{"data", t}}, meta_map); !s) return s;
        if (auto s = manifest.Add(tmp.string(), rel); !s) return s;
      }
      if (rank == 0) MaybeInjectKill(o.step, "after the model weights");
    }
    if (o.zero_sharded_optimizer || dp_rank == 0) {
      if (auto s = MkdirAll(tmp / "optimizer"); !s) return s;
      if (rank == 0) {
        nlohmann::json cfg = {{"type", state.optimizer_type},
                              {"parallelism",
                               {{"tp_size", std::to_string(tp)},
                                {"dp_size", std::to_string(dp)},
                                {"pp_size", std::to_string(pp)},
                                {"expert_parallel_size", "1"}}},
                              {"configs", {{"step", std::to_string(state.optimizer_step)}}}};
        if (auto s =
                WriteFileSynced((tmp / "optimizer" / "optimizer_config.json").string(), cfg.dump());
            !s)
          return s;
        if (auto s = manifest.Add(tmp.string(), "optimizer/optimizer_config.json"); !s) return s;
      }
      const std::string rel = "optimizer/" + OptimizerFileName(o.zero_sharded_optimizer, dp_rank,
                                                               dp, tp_rank, tp, pp_rank, pp);
      if (auto s = WriteTensorsSafetensors((tmp / rel).string(), state.optimizer,
                                           {{"step", std::to_string(state.optimizer_step)},
                                            {kFlatLayoutKey, FlatLayoutJson(flat_layout)}});
          !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), rel); !s) return s;
    }
    if (auto s = MkdirAll(tmp / "random"); !s) return s;
    if (state.rng_state.defined()) {
      const std::string rel = "random/" + RandomFileName(dp_rank, dp, tp_rank, tp, pp_rank, pp);
      if (auto s = WriteTensorsSafetensors((tmp / rel).string(),
                                           {{"cpu_generator", state.rng_state}}, {});
          !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), rel); !s) return s;
    }
    return manifest.Write(tmp.string(), ManifestFileName(rank, world));
  };
  // A failed write must not leave its partial directory behind: on a nearly full disk it would
  // make every retry fail too. Called once every rank stopped writing into `tmp`.
  auto remove_partial = [&](const Error& cause) -> Error {
    std::error_code ec;
    if (owner) fs::remove_all(tmp, ec);
    std::string msg = "checkpoint " + final_dir.string() + " not written: " + cause.message;
    if (ec)
      msg += " (and its partial directory " + tmp.string() +
             " could not be removed: " + ec.message() + "; remove it by hand)";
    return MakeError(msg);
  };
  status = write_all();
  // Everyone's files are written and fsynced; a failure anywhere must stop the rename.
  at::Tensor failed = at::full({1}, status.ok() ? 0.0f : 1.0f, at::kFloat);
  comm.AllReduceSum(failed);
  if (failed.item<float>() > 0) {
    return remove_partial(status ? MakeError("another rank failed") : status.error());
  }
  auto commit = [&]() -> Status {
    MaybeInjectKill(o.step, "before the rename");
    Status s = FsyncTree(tmp.string());
    if (s) s = RenameDirectoryReplacing(tmp.string(), final_dir.string());
    if (s) s = WriteFileAtomic((root / "latest.txt").string(), step_name);
    if (s) {
      // Directories left by checkpoints that were killed half-way (best effort: the checkpoint is
      // complete, and the next run's start removes what remains).
      (void)RemoveStaleCheckpointTemporaries(root.string());
    } else if (fs::exists(tmp)) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
    }
    return s;
  };
  // Rank 0 commits first. Without a shared file system each node's local rank 0 then commits its
  // own copy; where the "unshared" path is in fact shared, rank 0 already renamed the temporary
  // directory away and there is nothing left to commit (two concurrent renames would race).
  if (owner && rank == 0) status = commit();
  at::Tensor failed_first = at::full({1}, status.ok() ? 0.0f : 1.0f, at::kFloat);
  comm.AllReduceSum(failed_first);
  if (failed_first.item<float>() > 0) {
    if (!status) return status;
    return MakeError("checkpoint " + final_dir.string() + " not committed: rank 0 failed");
  }
  if (owner && rank != 0 && fs::exists(tmp)) status = commit();
  at::Tensor failed2 = at::full({1}, status.ok() ? 0.0f : 1.0f, at::kFloat);
  comm.AllReduceSum(failed2);
  if (!status) return status;
  if (failed2.item<float>() > 0) {
    return MakeError("checkpoint " + final_dir.string() + " not committed: another rank failed");
  }
  return {};
}

Result<std::vector<std::string>> RemoveStaleCheckpointTemporaries(
    const std::string& checkpoints_path) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_path, ec)) return removed;
  for (const auto& entry : fs::directory_iterator(checkpoints_path, ec)) {
    // Only SaveCheckpoint's names, <digits>.tmp-<hex>: never a finished <step> or a user's file.
    const std::string n = entry.path().filename().string();
    const std::size_t dot = n.find(".tmp-");
    std::error_code kind;  // not `ec`: an entry another cleaner removed is no listing error
    if (dot == std::string::npos || dot == 0 || n.find_first_not_of("0123456789") != dot ||
        n.find_first_not_of("0123456789abcdef", dot + 5) != std::string::npos ||
        n.size() == dot + 5 || !entry.is_directory(kind)) {
      continue;
    }
    // Where nodes that do not declare a shared file system share this folder after all, each
    // node's cleaner removes the same folders at once: entries vanishing under remove_all
    // (ENOENT) are the other cleaner's work, which reports its own errors. The barrier after
    // the cleanup keeps writers out until both are done.
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
    if (rm == std::errc::no_such_file_or_directory) continue;
    if (rm) {
      return MakeError("cannot remove the stale temporary checkpoint directory " +
                       entry.path().string() + ": " + rm.message() + "; remove it by hand");
    }
    removed.push_back(n);
  }
  if (ec) return MakeError("cannot list " + checkpoints_path + ": " + ec.message());
  return removed;
}

Result<std::optional<std::string>> ResolveResumeDirectory(const std::string& resume) {
  fs::path p = resume;
  if (fs::exists(p / "latest.txt")) {
    auto text = ReadWholeFile((p / "latest.txt").string());
    if (!text) return text.error();
    std::string s = *text;
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
      return MakeError((p / "latest.txt").string() + ": expected a step number, found '" + s +
                       "'; point checkpoints.resume_checkpoint_path at a step directory instead");
    }
    fs::path dir = p / s;
    if (!fs::exists(dir / "checkpoint_metadata.json")) {
      return MakeError((p / "latest.txt").string() + " names step " + s + " but " + dir.string() +
                       "/checkpoint_metadata.json does not exist");
    }
    return std::optional<std::string>(dir.string());
  }
  if (fs::exists(p / "checkpoint_metadata.json")) return std::optional<std::string>(p.string());
  return std::optional<std::string>();
}

Result<TrainingMetadata> ReadTrainingMetadata(const std::string& step_dir, SavedLayout* layout) {
  std::string path = step_dir + "/checkpoint_metadata.json";
  auto manifest = ChecksumManifest::Read(step_dir);
  if (!manifest) return manifest.error();
  if (*manifest) {
    if (auto s = (*manifest)->Verify(step_dir, "checkpoint_metadata.json"); !s) return s.error();
  }
  auto text = ReadWholeFile(path);
  if (!text) return text.error();
  try {
    auto j = nlohmann::json::parse(*text);
    TrainingMetadata m;
    const auto& metas = j.at("metas");
    m.consumed_train_samples = metas.at("consumed_train_samples").get<int64_t>();
    m.last_train_step = metas.at("last_train_step").get<int64_t>();
    if (metas.contains("last_stage_idx") && !metas["last_stage_idx"].is_null()) {
      m.last_stage_idx = metas["last_stage_idx"].get<int64_t>();
    }
    if (metas.contains("data_stages") && metas["data_stages"].is_array()) {
      for (const auto& s : metas["data_stages"]) {
        m.data_stages.push_back({s.at("name").get<std::string>(),
                                 s.at("start_training_step").get<int64_t>(),
                                 s.at("consumed_train_samples").get<int64_t>()});
      }
    }
    if (layout) {
      layout->dp = j.at("dp").get<int64_t>();
      layout->tp = j.contains("tp") ? j.at("tp").get<int64_t>() : 1;
      layout->pp = j.contains("pp") ? j.at("pp").get<int64_t>() : 1;
      if (layout->dp < 1 || layout->tp < 1 || layout->pp < 1) {
        return MakeError(path + ": dp, tp and pp must be at least 1, found " + LayoutStr(*layout));
      }
      // ZeRO-1 checkpoints have one optimizer file per DP rank (the first one's name tells).
      layout->zero = fs::exists(fs::path(step_dir) / "optimizer" /
                                OptimizerFileName(true, 0, static_cast<int>(layout->dp), 0,
                                                  static_cast<int>(layout->tp), 0,
                                                  static_cast<int>(layout->pp)));
    }
    return m;
  } catch (const std::exception& e) {
    return MakeError(path + ": malformed checkpoint metadata: " + e.what());
  }
}

namespace {

// The saved weight of `name` as this rank's model holds it: its own TP shard where the saved tp is
// this run's, else the full tensor merged from every TP rank's shard; from whichever stage of the
// saved layout holds it.
Result<at::Tensor> ReadWeight(const std::string& step_dir, const SavedLayout& saved,
                              const CheckpointLoadOptions& o, const std::string& name,
                              const std::function<Result<at::Tensor>(const std::string&)>& read) {
  const auto info = NanotronShardInfo(name, o.q_rows, o.kv_rows, o.intermediate);
  const int tp = static_cast<int>(saved.tp), pp = static_cast<int>(saved.pp);
  auto exists = [&](const std::string& rel) { return fs::exists(fs::path(step_dir) / rel); };
  if (!info) {
    const std::string rel = ModelWeightPath(name, false);
    if (exists(rel)) return read(rel);
    return MakeError("checkpoint " + step_dir + " has no " + rel + " for parameter " + name +
                     "; was it written for a different model config?");
  }
  // The stage that holds it: this run's own where the pp is the same, else the first with a file.
  int stage = -1;
  if (saved.pp == o.pp && exists(ModelWeightPath(name, true, 0, tp, o.pp_rank, pp))) {
    stage = o.pp_rank;
  }
  for (int r = 0; r < pp && stage < 0; ++r) {
    if (exists(ModelWeightPath(name, true, 0, tp, r, pp))) stage = r;
  }
  if (stage < 0) {
    // A whole tensor under the unsuffixed name (written unsharded) is read as it is.
    if (exists(ModelWeightPath(name, false))) return read(ModelWeightPath(name, false));
    return MakeError("checkpoint " + step_dir + " has no " +
                     ModelWeightPath(name, true, 0, tp, 0, pp) + " for parameter " + name +
                     " (nor the file of another of its " + std::to_string(pp) +
                     " pipeline stages; its checkpoint_metadata.json says " + LayoutStr(saved) +
                     "); was it written for a different model config?");
  }
  if (saved.tp == o.tp) return read(ModelWeightPath(name, true, o.tp_rank, tp, stage, pp));
  std::vector<at::Tensor> shards;
  for (int r = 0; r < tp; ++r) {
    const std::string rel = ModelWeightPath(name, true, r, tp, stage, pp);
    if (!exists(rel)) {
      return MakeError("checkpoint " + step_dir + " has no " + rel + " for parameter " + name +
                       " (its checkpoint_metadata.json says " + LayoutStr(saved) +
                       "); was it written for a different model config?");
    }
    auto t = read(rel);
    if (!t) return t.error();
    shards.push_back(*t);
  }
  auto full = parallel::UnshardTensor(shards, {info->split_dim, info->contiguous_chunks});
  if (!full) return MakeError("checkpoint " + step_dir + ": " + name + ": " + full.error().message);
  return full;
}

}  // namespace

Result<CheckpointState> LoadCheckpoint(const std::string& step_dir, const CheckpointLoadOptions& o,
                                       const std::vector<ParameterShape>& params) {
  CheckpointState state;
  SavedLayout saved;
  auto meta = ReadTrainingMetadata(step_dir, &saved);
  if (!meta) return meta.error();
  state.metadata = *meta;
  auto manifest = ChecksumManifest::Read(step_dir);
  if (!manifest) return manifest.error();
  state.checksums_verified = manifest->has_value();
  // Every file read below is checked first (a no-op for a checkpoint without checksums/).
  auto verify = [&](const std::string& relative) -> Status {
    return *manifest ? (*manifest)->Verify(step_dir, relative) : Status{};
  };
  // One weight file: verified, finite.
  auto read_weight = [&](const std::string& rel) -> Result<at::Tensor> {
    const fs::path p = fs::path(step_dir) / rel;
    if (auto s = verify(rel); !s) return s.error();
    auto t = TensorFromSafetensors(p.string(), "data");
    if (!t) return t.error();
    if (auto s = CheckFinite(step_dir, p.string(), "data", *t); !s) return s.error();
    return t;
  };
  for (const auto& param : params) {
    auto t = ReadWeight(step_dir, saved, o, param.name, read_weight);
    if (!t) return t.error();
    state.model.emplace_back(param.name, *t);
  }
  if (auto s = verify("lr_scheduler/lr_scheduler.json"); !s) return s.error();
  auto sched_text = ReadWholeFile(step_dir + "/lr_scheduler/lr_scheduler.json");
  if (!sched_text) return sched_text.error();
  try {
    state.scheduler_step = nlohmann::json::parse(*sched_text).at("last_epoch").get<int64_t>();
  } catch (const std::exception& e) {
    return MakeError(step_dir + "/lr_scheduler/lr_scheduler.json: " + e.what());
  }
  if (o.load_optimizer) {
    const bool same_files = saved.tp == o.tp && saved.pp == o.pp &&
                            saved.zero == o.zero_sharded_optimizer &&
                            (!saved.zero || saved.dp == o.dp);
    const FusedShapes fused{o.q_rows, o.kv_rows, o.intermediate};
    const OptimizerFileLayout target = DescribeOptimizerFile(
        params, o.zero_sharded_optimizer, o.dp_rank, o.dp, o.tp_rank, o.tp, o.pp_rank, o.pp);
    if (same_files) {
      // This rank's own file, as saved (also checkpoints written before "flat_layout").
      const std::string opt_name = OptimizerFileName(o.zero_sharded_optimizer, o.dp_rank, o.dp,
                                                     o.tp_rank, o.tp, o.pp_rank, o.pp);
      const std::string rel = "optimizer/" + opt_name;
      const std::string file = step_dir + "/" + rel;
      if (!fs::exists(file)) {
        return MakeError("checkpoint " + step_dir + " has no " + file +
                         " (its checkpoint_metadata.json says " + LayoutStr(saved) + ")");
      }
      if (auto s = verify(rel); !s) return s.error();
      auto sf = SafetensorsFile::Read(file);
      if (!sf) return sf.error();
      auto it = sf->metadata().find("step");
      try {
        state.optimizer_step = it == sf->metadata().end() ? 0 : std::stoll(it->second);
      } catch (const std::exception&) {
        return MakeError(file + ": metadata step '" + it->second + "' is not an integer");
      }
      auto all = ReadAllTensors(file);
      if (!all) return all.error();
      for (const auto& [name, t] : *all) {
        if (auto s = CheckFinite(step_dir, file, name, t); !s) return s.error();
      }
      state.optimizer = std::move(*all);
    } else {
      std::set<std::string> needed;
      for (const auto& p : params) needed.insert(p.name);
      auto full = ReadFullOptimizerState(step_dir, saved, fused, verify, needed);
      if (!full) return full.error();
      auto mine = ShardOptimizerState(*full, params, target, fused);
      if (!mine) return mine.error();
      state.optimizer_step = full->step;
      state.optimizer = std::move(*mine);
    }
  }
  // The RNG state of the same grid position where the saved layout has one (the trainer draws
  // nothing from it that changes the losses; it keeps a same-layout resume bit-identical).
  const std::string rng_name = RandomFileName(o.dp_rank, o.dp, o.tp_rank, o.tp, o.pp_rank, o.pp);
  std::string rng = step_dir + "/random/" + rng_name;
  if (fs::exists(rng)) {
    if (auto s = verify("random/" + rng_name); !s) return s.error();
    auto t = TensorFromSafetensors(rng, "cpu_generator");
    if (!t) return t.error();
    state.rng_state = *t;
  }
  return state;
}

}  // namespace strun::train

#include "checkpoint/checkpoint.h"

#include <ATen/ATen.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "checkpoint/checkpoint_manifest.h"
#include "checkpoint/fault_injection.h"
#include "checkpoint/file_sync.h"
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

std::string OptimizerFileName(bool zero, int dp_rank, int dp, int tp_rank, int tp) {
  if (zero) {
    return "optimizer_pp-0-of-1_dp-" + OfStr(dp_rank, dp) + "_tp-" + OfStr(tp_rank, tp) +
           "_exp-0-of-1.safetensors";
  }
  return "optimizer_pp-0-of-1_tp-" + OfStr(tp_rank, tp) + "_exp-0-of-1.safetensors";
}

std::string RandomFileName(int dp_rank, int dp, int tp_rank, int tp) {
  return "tp-" + OfStr(tp_rank, tp) + "_dp-" + OfStr(dp_rank, dp) + "_pp-0-of-1.safetensors";
}

std::string LayoutStr(int64_t dp, int64_t tp) {
  return "dp=" + std::to_string(dp) + " tp=" + std::to_string(tp);
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

std::string ModelWeightPath(const std::string& name, bool sharded, int tp_rank, int tp) {
  std::string path = "model/";
  std::size_t last = name.rfind('.');
  std::string dir = name.substr(0, last);
  std::string leaf = name.substr(last + 1);
  for (char& c : dir) c = c == '.' ? '/' : c;
  path += dir + "/model_" + leaf;
  path += sharded ? "_pp-rank-0-of-1_tp-rank-" + OfStr(tp_rank, tp) + ".safetensors"
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

namespace {
Result<NamedTensorList> ReadAllTensors(const std::string& path) {
  auto file = SafetensorsFile::Read(path);
  if (!file) return file.error();
  NamedTensorList out;
  for (const auto& [name, e] : file->entries()) {
    auto st = ScalarTypeOf(e.dtype);
    if (!st) return MakeError(path + ": tensor " + name + ": " + st.error().message);
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(*st));
    std::memcpy(t.data_ptr(), file->data(e), e.nbytes);
    out.emplace_back(name, t);
  }
  return out;
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
    if (rank == 0) {
      // Not in the manifest: see checkpoint_manifest.h.
      if (auto s = WriteFileSynced((tmp / "config.yaml").string(), o.config_yaml); !s) return s;
      if (auto s = WriteFileSynced((tmp / "model_config.json").string(), o.model_config_json); !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), "model_config.json"); !s) return s;
      nlohmann::json meta = {{"version", kCheckpointVersion},
                             {"tp", tp},
                             {"dp", dp},
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
    // Model weights: the TP ranks of DP rank 0 write them, one file per tensor (replicated
    // tensors: TP rank 0 only).
    if (dp_rank == 0) {
      for (const auto& [name, t] : state.model) {
        auto info = NanotronShardInfo(name, o.q_rows, o.kv_rows, o.intermediate);
        if (!info && tp_rank != 0) continue;
        const std::string rel = ModelWeightPath(name, info.has_value(), tp_rank, tp);
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
                                {"pp_size", "1"},
                                {"expert_parallel_size", "1"}}},
                              {"configs", {{"step", std::to_string(state.optimizer_step)}}}};
        if (auto s =
                WriteFileSynced((tmp / "optimizer" / "optimizer_config.json").string(), cfg.dump());
            !s)
          return s;
        if (auto s = manifest.Add(tmp.string(), "optimizer/optimizer_config.json"); !s) return s;
      }
      const std::string rel =
          "optimizer/" + OptimizerFileName(o.zero_sharded_optimizer, dp_rank, dp, tp_rank, tp);
      if (auto s = WriteTensorsSafetensors((tmp / rel).string(), state.optimizer,
                                           {{"step", std::to_string(state.optimizer_step)}});
          !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), rel); !s) return s;
    }
    if (auto s = MkdirAll(tmp / "random"); !s) return s;
    if (state.rng_state.defined()) {
      const std::string rel = "random/" + RandomFileName(dp_rank, dp, tp_rank, tp);
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

Result<TrainingMetadata> ReadTrainingMetadata(const std::string& step_dir, int64_t* dp,
                                              int64_t* tp) {
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
    if (dp) *dp = j.at("dp").get<int64_t>();
    if (tp) *tp = j.contains("tp") ? j.at("tp").get<int64_t>() : 1;
    return m;
  } catch (const std::exception& e) {
    return MakeError(path + ": malformed checkpoint metadata: " + e.what());
  }
}

Result<CheckpointState> LoadCheckpoint(const std::string& step_dir, const CheckpointLoadOptions& o,
                                       const std::vector<std::string>& model_names) {
  CheckpointState state;
  int64_t saved_dp = 0, saved_tp = 1;
  auto meta = ReadTrainingMetadata(step_dir, &saved_dp, &saved_tp);
  if (!meta) return meta.error();
  if (o.same_tp_layout && saved_tp != o.tp) {
    return MakeError("checkpoint " + step_dir + " was written with " +
                     LayoutStr(saved_dp, saved_tp) + " but this run has parallelism " +
                     LayoutStr(o.dp, o.tp) +
                     "; resuming at another tensor-parallel layout is not supported yet: resume "
                     "with parallelism.tp: " +
                     std::to_string(saved_tp) + " (and dp: " + std::to_string(saved_dp) +
                     "), or start a new run from its weights with model.init_method.path");
  }
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
  for (const auto& name : model_names) {
    auto info = NanotronShardInfo(name, o.q_rows, o.kv_rows, o.intermediate);
    if (saved_tp != o.tp && info) {
      // Another layout: every TP rank's shard, merged into the full tensor.
      std::vector<at::Tensor> shards;
      for (int r = 0; r < saved_tp; ++r) {
        const std::string rel = ModelWeightPath(name, true, r, static_cast<int>(saved_tp));
        if (!fs::exists(fs::path(step_dir) / rel)) {
          return MakeError("checkpoint " + step_dir + " has no " + rel + " for parameter " + name +
                           " (its checkpoint_metadata.json says tp=" + std::to_string(saved_tp) +
                           "); was it written for a different model config?");
        }
        auto t = read_weight(rel);
        if (!t) return t.error();
        shards.push_back(*t);
      }
      auto full = parallel::UnshardTensor(shards, {info->split_dim, info->contiguous_chunks});
      if (!full)
        return MakeError("checkpoint " + step_dir + ": " + name + ": " + full.error().message);
      state.model.emplace_back(name, *full);
      continue;
    }
    const int tp_rank = saved_tp == o.tp ? o.tp_rank : 0;
    const fs::path sharded =
        fs::path(step_dir) / ModelWeightPath(name, true, tp_rank, static_cast<int>(saved_tp));
    const std::string rel =
        ModelWeightPath(name, fs::exists(sharded), tp_rank, static_cast<int>(saved_tp));
    fs::path p = fs::path(step_dir) / rel;
    if (!fs::exists(p)) {
      return MakeError("checkpoint " + step_dir + " has no weights for parameter " + name +
                       " (looked for " + sharded.string() + " and " + p.string() +
                       "); was it written for a different model config?");
    }
    if (auto s = verify(rel); !s) return s.error();
    auto t = TensorFromSafetensors(p.string(), "data");
    if (!t) return t.error();
    if (auto s = CheckFinite(step_dir, p.string(), "data", *t); !s) return s.error();
    state.model.emplace_back(name, *t);
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
    if (o.zero_sharded_optimizer && saved_dp != o.dp) {
      return MakeError("checkpoint " + step_dir +
                       " was written with dp=" + std::to_string(saved_dp) +
                       " but this run has parallelism.dp=" + std::to_string(o.dp) +
                       " and zero_stage=1 (sharded optimizer states); resume with dp=" +
                       std::to_string(saved_dp) + " or set checkpoints.load_optimizer: false");
    }
    std::string opt_dir = step_dir + "/optimizer/";
    if (saved_tp != o.tp) {
      return MakeError("checkpoint " + step_dir + " was written with " +
                       LayoutStr(saved_dp, saved_tp) + " but this run has parallelism " +
                       LayoutStr(o.dp, o.tp) +
                       ": its optimizer states are sharded for that layout; resume with "
                       "parallelism.tp: " +
                       std::to_string(saved_tp) + " or set checkpoints.load_optimizer: false");
    }
    const std::string opt_name =
        OptimizerFileName(o.zero_sharded_optimizer, o.dp_rank, o.dp, o.tp_rank, o.tp);
    std::string file = opt_dir + opt_name;
    if (!fs::exists(file) && !o.zero_sharded_optimizer) {
      return MakeError("checkpoint " + step_dir + " has no " + file +
                       " (was it written with zero_stage: 1? then resume with the same setting)");
    }
    if (!fs::exists(file)) {
      return MakeError("checkpoint " + step_dir + " has no " + file +
                       " (was it written with zero_stage: 0? then resume with the same setting)");
    }
    const std::string rel = "optimizer/" + opt_name;
    if (auto s = verify(rel); !s) return s.error();
    auto sf = SafetensorsFile::Read(file);
    if (!sf) return sf.error();
    auto it = sf->metadata().find("step");
    state.optimizer_step = it == sf->metadata().end() ? 0 : std::stoll(it->second);
    auto all = ReadAllTensors(file);
    if (!all) return all.error();
    for (const auto& [name, t] : *all) {
      if (auto s = CheckFinite(step_dir, file, name, t); !s) return s.error();
    }
    state.optimizer = std::move(*all);
  }
  const std::string rng_name = RandomFileName(o.dp_rank, o.dp, o.tp_rank, o.tp);
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

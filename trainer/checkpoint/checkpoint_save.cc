// checkpoint_save.h: SaveCheckpoint, every rank's files written into the temporary directory,
// then committed.
#include "checkpoint/checkpoint_save.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "checkpoint/checkpoint_commit.h"
#include "checkpoint/checkpoint_manifest.h"
#include "checkpoint/checkpoint_paths.h"
#include "checkpoint/fault_injection.h"
#include "checkpoint/file_sync.h"
#include "checkpoint/flat_layout.h"
#include "checkpoint/reshard.h"
#include "checkpoint/weight_sharding.h"

namespace strun::train {
namespace fs = std::filesystem;

namespace {

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

Status MkdirAll(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return MakeError("cannot create directory " + p.string() + ": " + ec.message());
  return {};
}

}  // namespace

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
  const fs::path tmp = root / CheckpointTemporaryName(o.step, nonce.item<int64_t>());
  const fs::path final_dir = root / std::to_string(o.step);

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
      if (auto s = WriteFileSynced((tmp / "checkpoint_metadata.json").string(),
                                   CheckpointMetadataJson(state.metadata, tp, dp, pp));
          !s)
        return s;
      if (auto s = manifest.Add(tmp.string(), "checkpoint_metadata.json"); !s) return s;
      if (auto s = MkdirAll(tmp / "lr_scheduler"); !s) return s;
      if (auto s = WriteFileSynced((tmp / "lr_scheduler" / "lr_scheduler.json").string(),
                                   SchedulerJson(state.scheduler_step));
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
      if (rank == 0) MaybeInjectCheckpointKill(o.step, "after the model weights");
    }
    if (o.zero_sharded_optimizer || dp_rank == 0) {
      if (auto s = MkdirAll(tmp / "optimizer"); !s) return s;
      if (rank == 0) {
        if (auto s = WriteFileSynced(
                (tmp / "optimizer" / "optimizer_config.json").string(),
                OptimizerConfigJson(state.optimizer_type, tp, dp, pp, state.optimizer_step));
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
  // Rank 0 commits first. Without a shared file system each node's local rank 0 then commits its
  // own copy; where the "unshared" path is in fact shared, rank 0 already renamed the temporary
  // directory away and there is nothing left to commit (two concurrent renames would race).
  if (owner && rank == 0) status = CommitCheckpointDirectory(root.string(), o.step, tmp.string());
  at::Tensor failed_first = at::full({1}, status.ok() ? 0.0f : 1.0f, at::kFloat);
  comm.AllReduceSum(failed_first);
  if (failed_first.item<float>() > 0) {
    if (!status) return status;
    return MakeError("checkpoint " + final_dir.string() + " not committed: rank 0 failed");
  }
  if (owner && rank != 0 && fs::exists(tmp)) {
    status = CommitCheckpointDirectory(root.string(), o.step, tmp.string());
  }
  at::Tensor failed2 = at::full({1}, status.ok() ? 0.0f : 1.0f, at::kFloat);
  comm.AllReduceSum(failed2);
  if (!status) return status;
  if (failed2.item<float>() > 0) {
    return MakeError("checkpoint " + final_dir.string() + " not committed: another rank failed");
  }
  return {};
}

}  // namespace strun::train

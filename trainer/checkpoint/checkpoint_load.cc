// checkpoint_load.h: LoadCheckpoint, one rank's weights, optimizer, scheduler and RNG state read
// back, verified.
#include "checkpoint/checkpoint_load.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <set>
#include <utility>

#include "checkpoint/checkpoint_manifest.h"
#include "checkpoint/checkpoint_metadata.h"
#include "checkpoint/checkpoint_paths.h"
#include "checkpoint/reshard.h"
#include "checkpoint/safetensors.h"
#include "checkpoint/safetensors_aten.h"
#include "checkpoint/weight_sharding.h"
#include "parallel/tp_linear_sharding.h"

namespace strun::train {
namespace fs = std::filesystem;

namespace {

// NaN or Inf in a saved weight or optimizer state would only make the resumed run train NaN.
Status CheckFinite(const std::string& step_dir, const std::string& path, const std::string& name,
                   const at::Tensor& t) {
  if (!at::isFloatingType(t.scalar_type()) || at::isfinite(t).all().item<bool>()) return {};
  return MakeError("checkpoint file " + path + ": tensor '" + name +
                   "' holds NaN or infinite values (the run that wrote it had diverged, or the "
                   "file was damaged); " +
                   EarlierCheckpointAdvice(step_dir));
}

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
                     " pipeline stages; its checkpoint_metadata.json says " +
                     SavedLayoutString(saved) + "); was it written for a different model config?");
  }
  if (saved.tp == o.tp) return read(ModelWeightPath(name, true, o.tp_rank, tp, stage, pp));
  std::vector<at::Tensor> shards;
  for (int r = 0; r < tp; ++r) {
    const std::string rel = ModelWeightPath(name, true, r, tp, stage, pp);
    if (!exists(rel)) {
      return MakeError("checkpoint " + step_dir + " has no " + rel + " for parameter " + name +
                       " (its checkpoint_metadata.json says " + SavedLayoutString(saved) +
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
  auto scheduler_step = ReadSchedulerStep(step_dir);
  if (!scheduler_step) return scheduler_step.error();
  state.scheduler_step = *scheduler_step;
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
                         " (its checkpoint_metadata.json says " + SavedLayoutString(saved) + ")");
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

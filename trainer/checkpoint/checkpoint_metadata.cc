// checkpoint_metadata.h: a checkpoint's metadata files, written and read.
#include "checkpoint/checkpoint_metadata.h"

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_manifest.h"
#include "checkpoint/checkpoint_paths.h"
#include "checkpoint/file_sync.h"

namespace strun::train {
namespace fs = std::filesystem;

namespace {

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

}  // namespace

std::string SavedLayoutString(const SavedLayout& l) {
  return "dp=" + std::to_string(l.dp) + " tp=" + std::to_string(l.tp) +
         " pp=" + std::to_string(l.pp) + " zero_stage=" + (l.zero ? "1" : "0");
}

std::string CheckpointMetadataJson(const TrainingMetadata& metadata, int tp, int dp, int pp) {
  nlohmann::json meta = {{"version", kCheckpointVersion},
                         {"tp", tp},
                         {"dp", dp},
                         {"pp", pp},
                         {"metas", MetadataJson(metadata)},
                         {"custom_metas", nullptr}};
  return meta.dump(2);
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
        return MakeError(path + ": dp, tp and pp must be at least 1, found " +
                         SavedLayoutString(*layout));
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

std::string SchedulerJson(int64_t scheduler_step) {
  nlohmann::json sched = {{"last_epoch", scheduler_step}, {"_step_count", scheduler_step + 1}};
  return sched.dump(2);
}

Result<int64_t> ReadSchedulerStep(const std::string& step_dir) {
  auto text = ReadWholeFile(step_dir + "/lr_scheduler/lr_scheduler.json");
  if (!text) return text.error();
  try {
    return nlohmann::json::parse(*text).at("last_epoch").get<int64_t>();
  } catch (const std::exception& e) {
    return MakeError(step_dir + "/lr_scheduler/lr_scheduler.json: " + e.what());
  }
}

std::string OptimizerConfigJson(const std::string& optimizer_type, int tp, int dp, int pp,
                                int64_t optimizer_step) {
  nlohmann::json cfg = {{"type", optimizer_type},
                        {"parallelism",
                         {{"tp_size", std::to_string(tp)},
                          {"dp_size", std::to_string(dp)},
                          {"pp_size", std::to_string(pp)},
                          {"expert_parallel_size", "1"}}},
                        {"configs", {{"step", std::to_string(optimizer_step)}}}};
  return cfg.dump();
}

}  // namespace strun::train
